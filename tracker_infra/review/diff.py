"""Resource- and property-level diff of rendered CloudFormation, with stateful-resource warnings.

  python render.py diff                      committed rendered/ -> fresh render of vars/
                                             (what this change does to the templates)
  python render.py diff --base origin/main   rendered/ as committed at a git revision -> fresh
                                             render of the working tree's vars/ and templates
  python render.py diff staging production   what differs between two environments besides
                                             their names
  --env ENV (repeatable) limits the first two forms; --format markdown writes GitHub markdown
  (PR comment, job summary); --fail-on-replace exits 4 when a stateful resource would be
  replaced or deleted.

What is compared: each template's Resources (added, removed, changed: Type, Properties,
DeletionPolicy, UpdateReplacePolicy, DependsOn, Condition, Metadata), Parameters, Outputs,
Conditions, Mappings and top-level keys, each change with its property path and old -> new
value (intrinsic functions shown short: ``!Ref X``, ``!GetAtt X.Arn``, ``!Sub "..."``). Lists of
mappings that carry an identity key (Tags by Key, policy statements by Sid, ...) are matched by
that key, so reordering is not a change. JSON held in a string (dashboard bodies) is compared as
JSON. Other files of the environment (the edge function's package) are compared as text or JSON.

Replacement: a changed resource is replaced when one of its create-only properties changes, as
CloudFormation's own resource provider schemas declare them (``createOnlyProperties``; the
schemas ship with cfn-lint, pinned in requirements-dev.txt, and are read as JSON without
importing cfn-lint). ``conditionalCreateOnlyProperties`` give "may be replaced". A changed Type
replaces; a resource whose create-only property references a replaced resource is replaced too.
SAM types are looked up through the type they expand to (AWS::Serverless::Function ->
AWS::Lambda::Function); a type without a schema is "replacement unknown".

Stateful types (their data dies with them: databases, buckets, secrets, keys, log groups, ...)
are listed in STATEFUL_TYPES. Removing one, or changing it in a way that may replace it, is
flagged at the top of the output, with its DeletionPolicy/UpdateReplacePolicy; --fail-on-replace
turns those flags into exit code 4.

Environment diff (``diff A B``): both are rendered fresh; in each, the environment's own names
are replaced by placeholders before comparing: its account id -> <account>, VPC and subnet
CIDRs -> <vpc-cidr>, <PublicSubnet1-cidr>..., site and API domains -> <domain>, <api-domain>,
certificate ARNs -> <frontend-certificate>, <api-certificate>, stack names -> <stack>,
<stack>-edge, and the environment name as a whole word -> <env>. Region is not normalised:
different regions are a real difference. What remains is sizing, policy and shape.

The cost estimate (see ``render.py cost``) of every environment the diff touches is computed
before and after; when it moves, the changed line items are shown.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess  # noqa: S404 - git, with fixed arguments and no shell
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import UserError

EXIT_REPLACE = 4

# Types that hold data which does not survive a delete or replacement.
STATEFUL_TYPES = frozenset({
    "AWS::RDS::DBCluster", "AWS::RDS::DBInstance", "AWS::RDS::GlobalCluster",
    "AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::KMS::Key", "AWS::Logs::LogGroup",
    "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable", "AWS::Serverless::SimpleTable",
    "AWS::EFS::FileSystem", "AWS::ECR::Repository", "AWS::Cognito::UserPool",
    "AWS::Backup::BackupVault", "AWS::ElastiCache::ReplicationGroup", "AWS::SQS::Queue",
    "AWS::Kinesis::Stream", "AWS::OpenSearchService::Domain",
})

# SAM resource types -> the CloudFormation type whose schema describes their create-only
# properties (property names shared by both).
SAM_TYPES = {
    "AWS::Serverless::Function": "AWS::Lambda::Function",
    "AWS::Serverless::LayerVersion": "AWS::Lambda::LayerVersion",
    "AWS::Serverless::StateMachine": "AWS::StepFunctions::StateMachine",
}

# Keys that identify an item in a list of mappings (matched by key instead of position).
IDENTITY_KEYS = ("Key", "Sid", "Id", "Name", "PolicyName", "DeviceName", "ContainerPort",
                 "TargetOriginId", "PathPattern", "ErrorCode", "Field")

RESOURCE_ATTRIBUTES = ("Type", "Condition", "DependsOn", "DeletionPolicy", "UpdateReplacePolicy",
                       "UpdatePolicy", "CreationPolicy", "Metadata", "Properties")

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "(none)"})()

# Replacement verdicts, weakest to strongest.
NO, UNKNOWN, MAY, YES = "", "unknown", "may", "yes"


# --- model -------------------------------------------------------------------------------------


@dataclass
class Change:
    path: str
    old: Any
    new: Any
    replaces: str = NO  # YES / MAY when this path is (conditionally) create-only


@dataclass
class ResourceDiff:
    logical_id: str
    kind: str  # added, removed, changed
    type: str
    old_type: str = ""
    changes: list[Change] = field(default_factory=list)
    replacement: str = NO
    reason: str = ""
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL_TYPES or self.old_type in STATEFUL_TYPES

    @property
    def dangerous(self) -> bool:
        """Data at risk: a stateful resource removed, or replaced (possibly)."""
        return self.stateful and (self.kind == "removed" or self.replacement in (YES, MAY, UNKNOWN))


@dataclass
class FileDiff:
    name: str  # e.g. production/app.yaml
    label: str = ""  # stack name and region, when known
    status: str = "changed"  # added, removed, changed
    resources: list[ResourceDiff] = field(default_factory=list)
    other: list[Change] = field(default_factory=list)  # sections besides Resources, other files

    @property
    def empty(self) -> bool:
        return self.status == "changed" and not self.resources and not self.other


@dataclass
class Report:
    title: str
    files: list[FileDiff] = field(default_factory=list)
    costs: list[str] = field(default_factory=list)  # formatted cost deltas (markdown or text)
    notes: list[str] = field(default_factory=list)

    @property
    def dangers(self) -> list[tuple[FileDiff, ResourceDiff]]:
        return [(f, r) for f in self.files for r in f.resources if r.dangerous]


# --- resource provider schemas (create-only properties) ---------------------------------------


@lru_cache(maxsize=1)
def _schema_dir() -> Path | None:
    spec = importlib.util.find_spec("cfnlint")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "schemas"
    return path if (path / "providers").is_dir() else None


@lru_cache(maxsize=8)
def _providers(region: str) -> dict[str, str]:
    base = _schema_dir()
    if base is None:
        return {}
    path = base / "providers" / f"{region}.json"
    if not path.is_file():
        path = base / "providers" / "us-east-1.json"
    return json.loads(path.read_text())


@lru_cache(maxsize=256)
def create_only(type_: str, region: str = "us-east-1") -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(create-only, conditionally create-only) property pointers of a type, or None if unknown.

    Pointers are JSON pointers below /properties, e.g. ``("KmsKeyId",)`` or ``("A", "*", "B")``.
    """
    type_ = SAM_TYPES.get(type_, type_)
    digest = _providers(region).get(type_)
    base = _schema_dir()
    if not digest or base is None:
        return None
    schema = json.loads((base / "resources" / f"{digest}.json").read_text())

    def pointers(key: str) -> tuple[str, ...]:
        return tuple(p.removeprefix("/properties/") for p in schema.get(key, [])
                     if p.startswith("/properties/"))

    return pointers("createOnlyProperties"), pointers("conditionalCreateOnlyProperties")


def schemas_available() -> bool:
    return _schema_dir() is not None


def _values_at(node: Any, parts: list[str]) -> list[Any]:
    """Every value at a pointer (``*`` walks each list item); MISSING where nothing is."""
    if not parts:
        return [node]
    head, rest = parts[0], parts[1:]
    if _is_intrinsic(node):
        return [node]  # a computed value: compare it whole
    if head == "*":
        return [v for item in node for v in _values_at(item, rest)] if isinstance(node, list) else [MISSING]
    if isinstance(node, dict) and head in node:
        return _values_at(node[head], rest)
    return [MISSING]


def _pointer_matches(pointer: str, path: tuple[Any, ...]) -> bool:
    """Whether a change at ``path`` (below Properties) touches the create-only ``pointer``."""
    for want, have in zip(pointer.split("/"), path, strict=False):
        if want == "*":
            if isinstance(have, str):
                return False
            continue
        if want != have:
            return False
    return True


# --- comparing values --------------------------------------------------------------------------


def _is_intrinsic(node: Any) -> bool:
    if not isinstance(node, dict) or len(node) != 1:
        return False
    key = next(iter(node))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _json_body(value: Any) -> Any:
    """A string holding a JSON object or array, parsed; else None."""
    if isinstance(value, str) and value[:1] in "{[" and len(value) > 2:
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, (dict, list)) else None
    return None


def _identity_key(old: list[Any], new: list[Any]) -> str | None:
    items = old + new
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in IDENTITY_KEYS:
        for side in (old, new):
            values = [json.dumps(i.get(key, MISSING) if key in i else None, sort_keys=True, default=str)
                      for i in side]
            if any(key not in i for i in side) or len(set(values)) != len(values):
                break
        else:
            return key
    return None


def _label(value: Any) -> str:
    return value if isinstance(value, str) and len(value) <= 60 else compact(value, 60)


def diff_values(old: Any, new: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any, Any]]:
    """Every difference between two parsed values as (path, old, new); MISSING for absent."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict) and not (_is_intrinsic(old) or _is_intrinsic(new)):
        out = []
        for key in dict.fromkeys([*old, *new]):
            out += diff_values(old.get(key, MISSING), new.get(key, MISSING), (*path, key))
        return out
    if (isinstance(old, dict) and isinstance(new, dict) and _is_intrinsic(old) and _is_intrinsic(new)
            and next(iter(old)) == next(iter(new)) == "Fn::Sub"):
        a, b = _json_body(old["Fn::Sub"]), _json_body(new["Fn::Sub"])
        if a is not None and b is not None:
            return diff_values(a, b, (*path, "!Sub(json)"))
    if isinstance(old, str) and isinstance(new, str):
        a, b = _json_body(old), _json_body(new)
        if a is not None and b is not None:
            return diff_values(a, b, (*path, "(json)"))
    if isinstance(old, list) and isinstance(new, list):
        key = _identity_key(old, new)
        if key is not None:
            before = {_label(i[key]): i for i in old}
            after = {_label(i[key]): i for i in new}
            out = []
            for name in dict.fromkeys([*before, *after]):
                out += diff_values(before.get(name, MISSING), after.get(name, MISSING),
                                   (*path, (key, name)))
            return out
        if len(old) == len(new) and all(isinstance(i, (dict, list)) for i in old + new):
            out = []
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                out += diff_values(a, b, (*path, index))
            return out
    return [(path, old, new)]


def format_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, tuple):
            text += f"[{part[0]}={part[1]}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def compact(value: Any, limit: int = 160) -> str:
    """A value on one line: YAML-ish flow style, intrinsic functions in their short form."""
    text = _compact(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: Any) -> str:
    if value is MISSING:
        return "(none)"
    if _is_intrinsic(value):
        name, arg = next(iter(value.items()))
        short = name.removeprefix("Fn::")
        if name == "Ref" and isinstance(arg, str):
            return f"!Ref {arg}"
        if name == "Fn::GetAtt" and isinstance(arg, list) and all(isinstance(a, str) for a in arg):
            return f"!GetAtt {'.'.join(arg)}"
        return f"!{short} {_compact(arg)}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _focus(old: str, new: str, width: int = 70) -> tuple[str, str]:
    """Two long strings cut to the part around their first difference."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    lo = max(0, start - 30)

    def cut(text: str) -> str:
        middle = text[lo: max(len(text) - end + 30, lo)]
        middle = middle if len(middle) <= width else middle[:width] + "…"
        return ("…" if lo else "") + middle + ("…" if len(text) - end + 30 < len(text) else "")

    return cut(old), cut(new)


def show_change(old: Any, new: Any) -> tuple[str, str]:
    """Old and new as short one-line strings, focused on the difference when both are long."""
    if isinstance(old, str) and isinstance(new, str) and max(len(old), len(new)) > 100:
        a, b = _focus(old, new)
        return json.dumps(a, ensure_ascii=False), json.dumps(b, ensure_ascii=False)
    if (isinstance(old, list) and isinstance(new, list) and len(_compact(old)) + len(_compact(new)) > 160):
        gone = [_compact(v) for v in old if v not in new]
        came = [_compact(v) for v in new if v not in old]
        return (f"{len(old)} items, without: [{', '.join(gone)}]" if gone else f"{len(old)} items",
                f"{len(new)} items, with: [{', '.join(came)}]" if came else f"{len(new)} items")
    return compact(old), compact(new)


# --- comparing templates -----------------------------------------------------------------------


def _policy(resource: dict[str, Any], key: str) -> str:
    value = resource.get(key, "Delete")
    return value if isinstance(value, str) else compact(value)


def diff_templates(old: dict[str, Any], new: dict[str, Any], region: str = "us-east-1",
                   name: str = "", label: str = "") -> FileDiff:
    """The resource-level and section-level differences between two parsed templates."""
    result = FileDiff(name, label)
    old_res = old.get("Resources") or {}
    new_res = new.get("Resources") or {}
    for logical_id in dict.fromkeys([*old_res, *new_res]):
        a, b = old_res.get(logical_id), new_res.get(logical_id)
        if a == b:
            continue
        if a is None or b is None:
            resource = a if b is None else b
            result.resources.append(ResourceDiff(
                logical_id, "removed" if b is None else "added", str(resource.get("Type", "?")),
                deletion_policy=_policy(resource, "DeletionPolicy"),
                update_replace_policy=_policy(resource, "UpdateReplacePolicy")))
            continue
        result.resources.append(_changed_resource(logical_id, a, b, region))
    _propagate(result.resources, old_res, new_res, region)
    for section in dict.fromkeys([*old, *new]):
        if section == "Resources":
            continue
        a_sec, b_sec = old.get(section, MISSING), new.get(section, MISSING)
        if isinstance(a_sec, dict) and b_sec is MISSING:
            b_sec = {}  # a whole section added or removed: list its entries one by one
        elif isinstance(b_sec, dict) and a_sec is MISSING:
            a_sec = {}
        for path, a, b in diff_values(a_sec, b_sec, (section,)):
            result.other.append(Change(format_path(path), a, b))
    return result


def _changed_resource(logical_id: str, a: dict[str, Any], b: dict[str, Any], region: str) -> ResourceDiff:
    type_old, type_new = str(a.get("Type", "?")), str(b.get("Type", "?"))
    diff = ResourceDiff(logical_id, "changed", type_new, type_old if type_old != type_new else "",
                        deletion_policy=_policy(b, "DeletionPolicy"),
                        update_replace_policy=_policy(b, "UpdateReplacePolicy"))
    raw = []
    for key in dict.fromkeys([*RESOURCE_ATTRIBUTES, *a, *b]):
        raw += diff_values(a.get(key, MISSING), b.get(key, MISSING), (key,))
    if type_old != type_new:
        diff.replacement, diff.reason = YES, "Type changed"
        diff.changes = [Change(format_path(p), x, y) for p, x, y in raw]
        return diff
    props_old = a.get("Properties") if isinstance(a.get("Properties"), dict) else {}
    props_new = b.get("Properties") if isinstance(b.get("Properties"), dict) else {}
    pointers = create_only(type_new, region)
    hits: dict[str, str] = {}  # pointer -> YES/MAY when its value differs
    if pointers is not None:
        for verdict, group in ((YES, pointers[0]), (MAY, pointers[1])):
            for pointer in group:
                parts = pointer.split("/")
                if _values_at(props_old, parts) != _values_at(props_new, parts):
                    hits.setdefault(pointer, verdict)
    for path, x, y in raw:
        replaces = NO
        if path[:1] == ("Properties",):
            for pointer, verdict in hits.items():
                if _pointer_matches(pointer, path[1:]):
                    replaces = YES if YES in (replaces, verdict) else verdict
        diff.changes.append(Change(format_path(path), x, y, replaces))
    if hits:
        strongest = YES if YES in hits.values() else MAY
        names = sorted(p.replace("/", ".") for p, v in hits.items() if v == strongest)
        diff.replacement = strongest
        diff.reason = (f"create-only {'property' if len(names) == 1 else 'properties'} "
                       f"{', '.join(names)} changed" + ("" if strongest == YES else
                                                       " (replacement depends on the change)"))
    elif pointers is None and any(p[:1] == ("Properties",) for p, _, _ in raw):
        diff.replacement, diff.reason = UNKNOWN, f"no provider schema for {type_new}"
    return diff


def _propagate(diffs: list[ResourceDiff], old_res: dict[str, Any], new_res: dict[str, Any],
               region: str) -> None:
    """A resource whose create-only property references a replaced resource is replaced too."""
    from ..cfn_yaml import references

    by_id = {d.logical_id: d for d in diffs}
    replaced = {d.logical_id: d.replacement for d in diffs if d.replacement in (YES, MAY)}
    while True:
        grew = False
        for logical_id, resource in new_res.items():
            if logical_id in replaced or logical_id not in old_res or not isinstance(resource, dict):
                continue
            if old_res[logical_id].get("Type") != resource.get("Type"):
                continue
            pointers = create_only(str(resource.get("Type")), region)
            if pointers is None:
                continue
            props = resource.get("Properties") if isinstance(resource.get("Properties"), dict) else {}
            for verdict, group in ((YES, pointers[0]), (MAY, pointers[1])):
                for pointer in group:
                    for value in _values_at(props, pointer.split("/")):
                        causes = (sorted(set(references(value)) & set(replaced))
                                  if value is not MISSING else [])
                        if not causes:
                            continue
                        strength = YES if verdict == YES and replaced[causes[0]] == YES else MAY
                        diff = by_id.get(logical_id)
                        if diff is None:
                            diff = ResourceDiff(
                                logical_id, "changed", str(resource.get("Type")),
                                deletion_policy=_policy(resource, "DeletionPolicy"),
                                update_replace_policy=_policy(resource, "UpdateReplacePolicy"))
                            diffs.append(diff)
                            by_id[logical_id] = diff
                        if diff.replacement not in (YES, MAY) or strength == YES:
                            diff.replacement = strength
                            diff.reason = (f"{pointer.replace('/', '.')} references {causes[0]}, "
                                           "which is replaced")
                        replaced[logical_id] = diff.replacement
                        grew = True
                        break
                    if logical_id in replaced:
                        break
                if logical_id in replaced:
                    break
        if not grew:
            return


def diff_other_file(name: str, old: bytes | None, new: bytes | None) -> FileDiff:
    """A file that is not a template: JSON compared as JSON, anything else as lines."""
    result = FileDiff(name, status="added" if old is None else "removed" if new is None else "changed")
    if old is None or new is None or old == new:
        return result
    a, b = _json_body(old.decode("utf-8", "replace")), _json_body(new.decode("utf-8", "replace"))
    if a is not None and b is not None:
        result.other = [Change(format_path(p) or "(file)", x, y) for p, x, y in diff_values(a, b)]
    else:
        import difflib

        lines = list(difflib.unified_diff(old.decode("utf-8", "replace").splitlines(),
                                          new.decode("utf-8", "replace").splitlines(), n=0, lineterm=""))
        added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
        result.other = [Change("(text)", f"{removed} line(s) removed", f"{added} line(s) added")]
    return result


# --- where the two sides come from -------------------------------------------------------------


@dataclass
class Side:
    """One side of a comparison: env -> {file name within rendered/<env>/: bytes}."""

    files: dict[str, dict[str, bytes]] = field(default_factory=dict)


def _fresh(cfgs: list[Any], out_dir: Path) -> Side:
    from ..output import render_files

    side = Side()
    for cfg in cfgs:
        files, _ = render_files(cfg, out_dir)
        env_dir = out_dir / cfg.environment
        side.files[cfg.environment] = {p.relative_to(env_dir).as_posix(): b for p, b in files.items()
                                       if p.is_relative_to(env_dir)}
    return side


def _on_disk(out_dir: Path, envs: list[str]) -> Side:
    side = Side()
    for env in envs:
        env_dir = out_dir / env
        if env_dir.is_dir():
            side.files[env] = {p.relative_to(env_dir).as_posix(): p.read_bytes()
                               for p in sorted(env_dir.rglob("*")) if p.is_file()
                               and not p.name.startswith(".")}
    return side


def _git(cwd: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=False,  # noqa: S603, S607
                              timeout=60)
    except FileNotFoundError:
        raise UserError("--base", "", "git is not installed (allowed: run inside a git checkout "
                        "with git on PATH)") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError("--base", "", f"git {' '.join(args[:2])} failed: "
                        f"{message[-1] if message else 'exit ' + str(done.returncode)}")
    return done.stdout


def _at_revision(out_dir: Path, rev: str, envs: list[str] | None) -> Side:
    """rendered/<env>/ files as committed at ``rev`` (git show REV:./<path>, from out_dir)."""
    cwd = out_dir if out_dir.is_dir() else out_dir.parent
    prefix = "./" if cwd == out_dir else f"./{out_dir.name}/"
    if not rev or rev.startswith("-"):
        raise UserError("--base", "", f"{rev!r} is not a git revision (allowed: a branch, tag or commit)")
    try:
        _git(cwd, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except UserError:
        raise UserError("--base", "", f"{rev!r} is not a commit in this repository (allowed: a "
                        "branch, tag or commit; in CI fetch the base branch with full history)") from None
    listing = _git(cwd, "ls-tree", "-r", "--name-only", rev, "--", prefix).decode("utf-8")
    side = Side()
    for line in listing.splitlines():
        rel = line.removeprefix(f"{out_dir.name}/") if cwd != out_dir else line
        env, _, name = rel.partition("/")
        if not name or (envs is not None and env not in envs):
            continue
        side.files.setdefault(env, {})[name] = _git(cwd, "show", f"{rev}:{prefix}{rel}")
    return side


# --- environment normalisation -----------------------------------------------------------------


def normaliser(cfg: Any) -> Any:
    """A function that replaces an environment's own names in every string of a value."""
    from ..rendering import subnets

    tokens: list[tuple[str, str, str]] = [  # (text, placeholder, boundary kind)
        (cfg.frontend.certificate_arn, "<frontend-certificate>", "exact"),
        (cfg.api.certificate_arn, "<api-certificate>", "exact"),
        (cfg.api.domain, "<api-domain>", "domain"),
        (cfg.frontend.domain, "<domain>", "domain"),
        (cfg.edge_stack_name, "<stack>-edge", "word"),
        (cfg.stack_name, "<stack>", "word"),
        (cfg.account, "<account>", "digits"),
        (cfg.network.vpc_cidr, "<vpc-cidr>", "digits"),
        *[(s.cidr, f"<{s.logical_id}-cidr>", "digits") for s in subnets(cfg.network.vpc_cidr)],
        (cfg.environment, "<env>", "word"),
    ]
    bounds = {"exact": ("", ""), "domain": (r"(?<![A-Za-z0-9.@-])", r"(?![A-Za-z0-9-])"),
              "word": (r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"), "digits": (r"(?<![\d.])", r"(?![\d/])")}
    patterns = [(re.compile(bounds[kind][0] + re.escape(text) + bounds[kind][1]), placeholder)
                for text, placeholder, kind in sorted(tokens, key=lambda t: -len(t[0]))]

    def text(value: str) -> str:
        for pattern, placeholder in patterns:
            value = pattern.sub(placeholder, value)
        return value

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, dict):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk


# --- building the report -----------------------------------------------------------------------


def _stack_labels(cfgs: list[Any]) -> dict[tuple[str, str], tuple[str, str]]:
    from ..rendering import stacks

    return {(cfg.environment, s.output): (s.name, s.region) for cfg in cfgs for s in stacks(cfg)}


def compare(old: Side, new: Side, labels: dict[tuple[str, str], tuple[str, str]],
            transform: dict[str, Any] | None = None, pair: tuple[str, str] | None = None) -> list[FileDiff]:
    """Every file of every environment on either side, compared.

    ``pair`` compares old env pair[0] with new env pair[1] (the environment diff); ``transform``
    maps env -> a normaliser applied to that env's parsed files.
    """
    from ..cfn_yaml import load_template

    envs = [pair] if pair else [(e, e) for e in sorted(set(old.files) | set(new.files))]
    results = []
    for env_a, env_b in envs:
        files_a, files_b = old.files.get(env_a, {}), new.files.get(env_b, {})
        shown_env = env_b if env_a == env_b else f"{env_a} -> {env_b}"
        for fname in sorted(set(files_a) | set(files_b)):
            a, b = files_a.get(fname), files_b.get(fname)
            name = f"{shown_env}/{fname}"
            stack, region = labels.get((env_b, fname)) or labels.get((env_a, fname)) or ("", "us-east-1")
            label = f"{stack}, {region}" if stack else ""
            if a == b and not transform:
                continue
            template = "/" not in fname and fname.endswith((".yaml", ".yml"))
            if template:
                try:
                    doc_a = load_template(a.decode("utf-8")) if a is not None else {}
                    doc_b = load_template(b.decode("utf-8")) if b is not None else {}
                except Exception as exc:  # noqa: BLE001 - a broken committed file is reported, not fatal
                    results.append(FileDiff(name, label, other=[Change("(parse)", "unreadable YAML",
                                                                       str(exc).splitlines()[0])]))
                    continue
                if transform:
                    doc_a, doc_b = transform[env_a](doc_a or {}), transform[env_b](doc_b or {})
                file_diff = diff_templates(doc_a or {}, doc_b or {}, region, name, label)
                file_diff.status = "added" if a is None else "removed" if b is None else "changed"
            else:
                if transform and a is not None and b is not None:
                    ja = _json_body(a.decode("utf-8", "replace"))
                    jb = _json_body(b.decode("utf-8", "replace"))
                    if ja is not None and jb is not None:
                        a = json.dumps(transform[env_a](ja), sort_keys=True).encode()
                        b = json.dumps(transform[env_b](jb), sort_keys=True).encode()
                if a == b:
                    continue
                file_diff = diff_other_file(name, a, b)
                file_diff.label = label
            if not file_diff.empty:
                results.append(file_diff)
    return results


def _cost_lines(old: Side, new: Side, markdown: bool, pair: tuple[str, str] | None,
                labels: dict[tuple[str, str], tuple[str, str]]) -> list[str]:
    from ..cfn_yaml import load_template
    from .cost import estimate, format_delta, load_prices

    prices = load_prices()

    def docs(side: Side, env: str) -> tuple[list[dict[str, Any]], set[str]]:
        found, regions = [], set()
        for fname, content in sorted(side.files.get(env, {}).items()):
            if "/" in fname or not fname.endswith((".yaml", ".yml")):
                continue
            try:
                doc = load_template(content.decode("utf-8"))
            except Exception:  # noqa: BLE001, S112 - unreadable files are reported by the diff itself
                continue
            if isinstance(doc, dict):
                found.append(doc)
                regions.add(labels.get((env, fname), ("", "us-east-1"))[1])
        return found, regions

    out = []
    envs = [pair] if pair else [(e, e) for e in sorted(set(old.files) | set(new.files))]
    for env_a, env_b in envs:
        before = estimate(*docs(old, env_a), prices=prices)
        after = estimate(*docs(new, env_b), prices=prices)
        text = format_delta(env_b if env_a == env_b else f"{env_a} -> {env_b}", before, after, markdown)
        if text:
            out.append(text)
    return out


def build_report(args: argparse.Namespace) -> Report:
    from ..config import environments, load_all

    envs: list[str] = list(args.environments or [])
    markdown = args.format == "markdown"
    if envs:
        if len(envs) != 2:
            raise UserError("diff", "environments", f"got {len(envs)} (allowed: none, or exactly "
                            "two environments to compare, e.g. diff staging production)")
        if args.base or args.env:
            raise UserError("diff", "environments", "cannot be combined with --base or --env "
                            "(allowed: diff A B, or diff [--base REV] [--env ENV])")
        if envs[0] == envs[1]:
            raise UserError("diff", "environments", f"{envs[0]} twice (allowed: two different "
                            "environments)")
        cfgs = load_all(args.vars, envs)
        side = _fresh(cfgs, args.out)
        transform = {cfg.environment: normaliser(cfg) for cfg in cfgs}
        labels = _stack_labels(cfgs)
        pair = (envs[0], envs[1])
        report = Report(f"Template diff: {envs[0]} -> {envs[1]} (names, CIDRs, account ids "
                        "normalised)")
        report.files = compare(side, side, labels, transform, pair)
        report.costs = _cost_lines(side, side, markdown, pair, labels)
        return report
    known = environments(args.vars)
    chosen = args.env
    cfgs = load_all(args.vars, chosen)
    new = _fresh(cfgs, args.out)
    labels = _stack_labels(cfgs)
    if args.base:
        old = _at_revision(args.out, args.base, chosen)
        title = f"Template diff: {args.base} -> working tree"
    else:
        present = sorted(d.name for d in args.out.iterdir() if d.is_dir()) if args.out.is_dir() else []
        old = _on_disk(args.out, chosen or sorted(set(known) | set(present)))
        title = f"Template diff: committed {args.out}/ -> fresh render of {args.vars}/"
    report = Report(title)
    report.files = compare(old, new, labels)
    report.costs = _cost_lines(old, new, markdown, None, labels)
    return report


# --- presentation ------------------------------------------------------------------------------


_MARK = {"added": "+", "removed": "-", "changed": "~"}


def _danger_text(r: ResourceDiff) -> str:
    if r.kind == "removed":
        return (f"REMOVED: CloudFormation deletes it (DeletionPolicy: {r.deletion_policy})"
                if r.deletion_policy not in ("Retain", "RetainExceptOnCreate")
                else f"REMOVED from the stack; kept in the account by DeletionPolicy: {r.deletion_policy}")
    verdict = {YES: "REPLACED", MAY: "MAY BE REPLACED", UNKNOWN: "REPLACEMENT UNKNOWN"}[r.replacement]
    return f"{verdict}: {r.reason} (UpdateReplacePolicy: {r.update_replace_policy})"


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def format_report(report: Report, markdown: bool) -> str:
    lines: list[str] = []
    dangers = report.dangers
    if markdown:
        lines += [f"### {report.title}", ""]
        if dangers:
            lines += ["> [!CAUTION]", f"> **{len(dangers)} stateful resource(s) would be deleted or "
                      "replaced: CloudFormation destroys their data.**"]
            lines += [f"> - `{f.name}` **{r.logical_id}** ({r.type}): {_danger_text(r)}"
                      for f, r in dangers]
            lines.append("")
    else:
        lines.append(report.title)
        if dangers:
            lines.append(f"!! {len(dangers)} STATEFUL RESOURCE(S) WOULD BE DELETED OR REPLACED:")
            lines += [f"!!   {f.name} {r.logical_id} ({r.type}): {_danger_text(r)}" for f, r in dangers]
        lines.append("")
    if not report.files:
        lines.append("No changes.")
    for f in report.files:
        counts = {k: sum(1 for r in f.resources if r.kind == k) for k in ("added", "removed", "changed")}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no resource changes"
        status = "" if f.status == "changed" else f" (file {f.status})"
        label = f" ({f.label})" if f.label else ""
        lines.append(f"#### `{f.name}`{label}{status}: {summary}" if markdown
                     else f"{f.name}{label}{status}: {summary}")
        for r in f.resources:
            type_text = f"{r.old_type} -> {r.type}" if r.old_type else r.type
            flag = ""
            if r.dangerous:
                flag = f" — 🛑 **{_danger_text(r)}**" if markdown else f"  !! {_danger_text(r)}"
            elif r.replacement in (YES, MAY):
                flag = (f" — replaced ({r.reason})" if r.replacement == YES else
                        f" — may be replaced ({r.reason})")
                flag = flag if markdown else flag.replace(" — ", "  ")
            elif r.replacement == UNKNOWN:
                flag = " — replacement unknown" if markdown else "  replacement unknown"
            if markdown:
                lines.append(f"- {_MARK[r.kind]} **{r.logical_id}** `{type_text}`{flag}")
            else:
                lines.append(f"  {_MARK[r.kind]} {r.logical_id}  {type_text}{flag}")
            for c in r.changes:
                lines.append(_change_line(c, markdown, "  " if markdown else "      "))
        if f.other:
            if markdown and f.resources:
                lines.append("")
            for c in f.other:
                lines.append(_change_line(c, markdown, "" if markdown else "    "))
        lines.append("")
    if report.costs:
        lines += [c.rstrip("\n") + "\n" for c in report.costs]
    elif report.files:
        lines.append("Estimated monthly cost: unchanged." if not markdown
                     else "_Estimated monthly cost: unchanged._")
    lines += report.notes
    return "\n".join(lines).rstrip("\n") + "\n"


def _change_line(c: Change, markdown: bool, indent: str) -> str:
    old, new = show_change(c.old, c.new)
    tag = {YES: " (requires replacement)", MAY: " (may require replacement)"}.get(c.replaces, "")
    if markdown:
        tag = f" **{tag.strip()}**" if tag else ""
        return f"{indent}- {_code(c.path)}: {_code(old)} → {_code(new)}{tag}"
    return f"{indent}{c.path}: {old} -> {new}{tag}"


# --- command -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..rendering import ROOT

    parser.add_argument("environments", nargs="*", metavar="ENV",
                        help="two environments to compare (diff staging production)")
    parser.add_argument("--base", metavar="REV",
                        help="compare rendered/ as committed at this git revision (e.g. origin/main)")
    parser.add_argument("--env", action="append", metavar="ENV",
                        help="only this environment (repeatable); default: all")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    parser.add_argument("--fail-on-replace", action="store_true",
                        help=f"exit {EXIT_REPLACE} when a stateful resource would be deleted or replaced")
    parser.add_argument("--vars", type=Path, default=Path(os.path.relpath(ROOT / "vars")),
                        metavar="DIR", help="variables folder (default: vars/)")
    parser.add_argument("--out", type=Path, default=Path(os.path.relpath(ROOT / "rendered")),
                        metavar="DIR", help="rendered folder (default: rendered/)")


def run(args: argparse.Namespace) -> int:
    if args.fail_on_replace and not schemas_available():
        raise UserError("--fail-on-replace", "", "CloudFormation resource schemas not found "
                        "(allowed: install requirements-dev.txt, which brings cfn-lint and them)")
    report = build_report(args)
    if not schemas_available():
        report.notes.append("Note: cfn-lint is not installed, so replacements are not detected.")
    print(format_report(report, args.format == "markdown"), end="")
    if args.fail_on_replace and report.dangers:
        return EXIT_REPLACE
    return 0
