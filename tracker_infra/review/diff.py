"""What a change does to the rendered CloudFormation: dangers and security changes first.

  python render.py diff                      rendered/ committed at HEAD -> fresh render of the
                                             working tree (the same report before and after
                                             render.py rewrites rendered/)
  python render.py diff --base origin/main   rendered/ committed at a git revision -> fresh render
  python render.py diff staging production   what differs between two environments besides
                                             their names
  --env ENV (repeatable) limits the first two forms; --format markdown writes GitHub markdown
  (PR comment, job summary; kept under GitHub's comment limit).

Outside a git checkout the baseline is rendered/ as it is on disk (the first line says so).

How each verdict is made: replacement.py (create-only properties from schema_table, propagation,
network moves, custom names, engine major versions), security.py (IAM and security-group
rules), report.py (the report's layout). Package files of a stack (rendered/<env>/edge/, the
``CodeUri`` of the edge function) are compared with that stack: a change there publishes a new
Lambda@Edge version and updates the distribution.

Environment diff (``diff A B``): both are rendered fresh; in each, the environment's own names
(account id, CIDRs, domains, certificate ARNs, stack names, the environment's name) are replaced
by placeholders before comparing (baseline.normaliser). Region is not normalised.

The cost estimate (``render.py cost``) of every environment the diff touches is computed before
and after; when it moves, the changed line items are shown.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EXIT_BROADENING, EXIT_OK, EXIT_REPLACE, EXIT_UNJUDGED, EXIT_USER, UserError
from .baseline import (
    BOOTSTRAP,
    Side,
    at_revision,
    bootstrap_at,
    bootstrap_on_disk,
    fresh,
    in_git,
    normaliser,
    on_disk,
)
from .cleartext import cleartext
from .replacement import analyse
from .report import Change, Report, ResourceChange, StackChanges, Unjudged, format_report
from .security import iam_changes, rule_changes
from .template import Template
from .unjudged import unjudged
from .values import MISSING, diff_values, format_path, json_body
from .widening import Widening, widenings

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "",
    EXIT_USER: "",
    EXIT_REPLACE: ("with --fail-on-replace: data at risk: a stateful resource replaced, deleted or "
                   "moved to a replaced network, an update CloudFormation would refuse (a fixed custom "
                   "name), or data protection loosened (deletion protection, retention, backups, "
                   "versioning); wins over the next"),
    EXIT_BROADENING: ("with --fail-on-broadening: security widened: exposure, transport, encryption "
                      "or audit loosened, an IAM statement or a security-group rule widens access, "
                      "a secret in the clear, the edge's security headers weakened; wins over the next"),
    EXIT_UNJUDGED: ("with --fail-on-unjudged: a security-bearing property changed that no rule "
                    "judges (the head lists each as NOT JUDGED)"),
}


EDGE_NOTE = ("edge function code changed: a new Lambda@Edge version is published and the "
             "distribution updated to use it (minutes of propagation to every edge location)")


def _removed_env_note(env: str) -> str:
    return (f"environment {env} is removed from vars/: its stacks are not deleted by anything "
            "(not by this repository, not by CI). Save their data, then delete them by hand "
            "(sam delete), or they keep running and billing.")


def _sections(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The differences of every section besides Resources."""
    found = []
    for section in dict.fromkeys([*old, *new]):
        if section == "Resources":
            continue
        a, b = old.get(section, MISSING), new.get(section, MISSING)
        if isinstance(a, dict) and b is MISSING:
            b = {}  # a whole section added or removed: list its entries one by one
        elif isinstance(b, dict) and a is MISSING:
            a = {}
        found += [Change(format_path(p), x, y) for p, x, y in diff_values(a, b, (section,))]
    return found


def diff_templates(old: dict[str, Any], new: dict[str, Any], name: str = "", label: str = "") -> StackChanges:
    """The resource, section and security differences between two parsed templates."""
    result = StackChanges(name, label)
    result.resources = analyse(old.get("Resources") or {}, new.get("Resources") or {})
    result.other = _sections(old, new)
    before, after = Template(old), Template(new)
    result.iam = iam_changes(before, after)
    result.rules = rule_changes(before, after)
    result.widenings = widenings(old.get("Resources") or {}, new.get("Resources") or {}) + cleartext(old, new)
    result.unjudged = unjudged(old.get("Resources") or {}, new.get("Resources") or {}, result.iam,
                               result.rules)
    _renames(result.resources, old.get("Resources") or {}, new.get("Resources") or {})
    return result


RENAME_SIMILARITY = 0.75  # share of properties equal on both sides for "likely the same resource"


def _similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    pa, pb = a.get("Properties") or {}, b.get("Properties") or {}
    keys = set(pa) | set(pb)
    if not keys:
        return 1.0
    return sum(1 for k in keys if pa.get(k, MISSING) == pb.get(k, MISSING)) / len(keys)


def _renames(resources: list[ResourceChange], old: dict[str, Any], new: dict[str, Any]) -> None:
    """A resource removed and one of the same type added with nearly the same properties: most
    likely a logical ID renamed (CloudFormation sees a delete and a create)."""
    removed = [r for r in resources if r.kind == "removed"]
    for added in (r for r in resources if r.kind == "added"):
        candidates = [(round(_similarity(old[r.logical_id], new[added.logical_id]), 3), r.logical_id)
                      for r in removed if r.type == added.type]
        best = max(candidates, default=(0.0, ""))
        if best[0] >= RENAME_SIMILARITY:
            added.renamed_from = best[1]
            removed = [r for r in removed if r.logical_id != best[1]]


def _file_changes(name: str, old: bytes | None, new: bytes | None) -> list[Change]:
    """A package file: JSON compared as JSON, anything else by line count."""
    if old is None or new is None:
        return [Change(name, "(none)" if old is None else "present", "(none)" if new is None else "present")]
    a, b = json_body(old.decode("utf-8", "replace")), json_body(new.decode("utf-8", "replace"))
    if a is not None and b is not None:
        return [Change(format_path((name, *p)), x, y) for p, x, y in diff_values(a, b)]
    import difflib

    lines = list(difflib.unified_diff(old.decode("utf-8", "replace").splitlines(),
                                      new.decode("utf-8", "replace").splitlines(), n=0, lineterm=""))
    added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
    removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
    return [Change(name, f"{removed} line(s) removed", f"{added} line(s) added")]


# Parsed templates by their bytes: a report reads each template up to three times (the render's
# parse-back, the comparison, the cost), and unchanged ones are the same bytes on both sides.
# Nothing here changes a parsed template.
_PARSED: dict[bytes, dict[str, Any]] = {}


def _load(content: bytes | None, name: str) -> dict[str, Any]:
    import yaml

    from ..cfn_yaml import load_template

    if content is None:
        return {}
    if content not in _PARSED:
        try:
            doc = load_template(content.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise UserError(name, "", f"is not a readable template ({str(exc).splitlines()[0]}); "
                            "allowed: YAML as render.py writes it") from None
        if len(_PARSED) >= 256:
            _PARSED.clear()
        _PARSED[content] = doc if isinstance(doc, dict) else {}
    return _PARSED[content]


def _package_owner(templates: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Package folder (``edge``) -> (template file, logical ID of the function whose CodeUri it is)."""
    owner = {}
    for fname, doc in templates.items():
        for rid, props in Template(doc).of_type().items():
            uri = props.get("CodeUri")
            if isinstance(uri, str) and uri.strip("/") and "/" not in uri.strip("/"):
                owner[uri.strip("/")] = (fname, rid)
    return owner


def _new_code(stack: StackChanges, doc: dict[str, Any], function: str, changes: list[Change]) -> None:
    """The function whose package changed publishes a new version; what uses its version moves to
    the new one (the distribution, for Lambda@Edge)."""
    view = Template(doc)
    by_id = {r.logical_id: r for r in stack.resources}
    if function not in by_id:
        by_id[function] = ResourceChange(function, "changed", view.type(function))
        stack.resources.append(by_id[function])
    by_id[function].changes += changes
    by_id[function].effect = "new code: a new version is published"
    for rid in view.resources:
        if rid != function and _uses_version(view.props(rid), function):
            if rid not in by_id:
                by_id[rid] = ResourceChange(rid, "changed", view.type(rid))
                stack.resources.append(by_id[rid])
            by_id[rid].effect = f"updated to {function}'s new version"
    if EDGE_NOTE not in stack.notes:
        stack.notes.append(EDGE_NOTE)


HEADERS_FILE = "headers.json"  # the edge function's headers (edge/handler.py reads it)


def _headers(content: bytes | None) -> dict[str, str]:
    body = json_body(content.decode("utf-8", "replace")) if content else None
    found = body.get("headers") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _judge_package(stack: StackChanges, type_: str, function: str, fname: str,
                   contents: tuple[bytes | None, bytes | None]) -> None:
    """A package file judged: the headers the edge function sends by the rule verify grades them
    by (header_grading), any other file (its code) is not judged."""
    from ..header_grading import configuration_changes

    a, b = contents
    if fname.rsplit("/", 1)[-1] != HEADERS_FILE:
        for c in _file_changes(fname, a, b):
            stack.unjudged.append(Unjudged(function, type_, f"code {c.path}", c.old, c.new))
        return
    weakened, unknown = configuration_changes(_headers(a), _headers(b))
    stack.widenings += [Widening("headers", "edge-headers", function, type_, f"{fname}: {w}")
                        for w in weakened]
    stack.unjudged += [Unjudged(function, type_, f"{fname}: {name}", x or MISSING, y)
                       for name, x, y in unknown]


def _uses_version(node: Any, function: str) -> bool:
    if isinstance(node, dict):
        if node.get("Ref") in (f"{function}.Version", f"{function}.Alias"):
            return True
        return any(_uses_version(v, function) for v in node.values())
    return isinstance(node, list) and any(_uses_version(v, function) for v in node)


Labels = dict[tuple[str, str], tuple[str, str]]  # (env, file) -> (stack name, region)


@dataclass
class _EnvPair:
    """One environment's files on both sides (or two environments', for the environment diff)."""

    env_a: str
    env_b: str
    files_a: dict[str, bytes]
    files_b: dict[str, bytes]
    labels: Labels
    transform: dict[str, Any] | None
    stacks: dict[str, StackChanges] = field(default_factory=dict)
    parsed_b: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        return self.env_b if self.env_a == self.env_b else f"{self.env_a} -> {self.env_b}"

    def label(self, fname: str) -> str:
        found = self.labels.get((self.env_b, fname)) or self.labels.get((self.env_a, fname))
        stack, region = found or ("", "")
        return f"{stack}, {region}" if stack else ""

    def names(self) -> list[str]:
        return sorted(set(self.files_a) | set(self.files_b))

    def templates(self) -> list[str]:
        return [f for f in self.names() if "/" not in f and f.endswith((".yaml", ".yml"))]

    def template(self, fname: str) -> None:
        """One stack template compared; a stack no longer rendered is not deleted by anything."""
        a, b = self.files_a.get(fname), self.files_b.get(fname)
        self.parsed_b[fname] = doc_b = _load(b, f"{self.env_b}/{fname}")
        if a == b and not self.transform:
            return
        doc_a = _load(a, f"{self.env_a}/{fname}")
        if self.transform:
            doc_a, doc_b = self.transform[self.env_a](doc_a), self.transform[self.env_b](doc_b)
        stack = self.stacks[fname] = diff_templates(doc_a, doc_b, f"{self.shown}/{fname}", self.label(fname))
        stack.status = "added" if a is None else "removed" if b is None else "changed"
        if b is None:
            stack.resources, stack.widenings, stack.unjudged = [], [], []
            stack.notes.append("no longer rendered: the deployed stack is not deleted by anything; "
                               "delete it by hand once its data is safe")

    def _normalised(self, a: bytes | None, b: bytes | None) -> tuple[bytes | None, bytes | None]:
        if not (self.transform and a is not None and b is not None):
            return a, b
        ja, jb = json_body(a.decode("utf-8", "replace")), json_body(b.decode("utf-8", "replace"))
        if ja is None or jb is None:
            return a, b
        return (json.dumps(self.transform[self.env_a](ja), sort_keys=True).encode(),
                json.dumps(self.transform[self.env_b](jb), sort_keys=True).encode())

    def package_file(self, fname: str, owners: dict[str, tuple[str, str]]) -> None:
        """A file of a stack's package (the edge function's): compared with its stack."""
        a, b = self._normalised(self.files_a.get(fname), self.files_b.get(fname))
        if a == b:
            return
        owner, function = owners.get(fname.split("/", 1)[0], (fname, ""))
        if owner not in self.stacks:
            stack, region = self.labels.get((self.env_b, owner)) or ("", "")
            self.stacks[owner] = StackChanges(f"{self.shown}/{owner}", f"{stack}, {region}" if stack else "")
        if function:
            _new_code(self.stacks[owner], self.parsed_b[owner], function, _file_changes(fname, a, b))
            _judge_package(self.stacks[owner], Template(self.parsed_b[owner]).type(function), function,
                           fname, (a, b))
        else:
            self.stacks[owner].other += _file_changes(fname, a, b)

    def compare(self) -> list[StackChanges]:
        templates = self.templates()
        for fname in templates:
            self.template(fname)
        owners = _package_owner(self.parsed_b)
        for fname in self.names():
            if fname not in templates:
                self.package_file(fname, owners)
        return [s for _, s in sorted(self.stacks.items()) if not s.empty]


def compare(old: Side, new: Side, labels: Labels, transform: dict[str, Any] | None = None,
            pair: tuple[str, str] | None = None,
            removed_envs: frozenset[str] = frozenset()) -> tuple[list[StackChanges], list[str]]:
    """Every file of every environment on either side, compared: the stacks that changed, and
    notes about environments that disappeared.

    ``pair`` compares old env pair[0] with new env pair[1] (the environment diff); ``transform``
    maps env -> a normaliser applied to that env's parsed files.
    """
    envs = [pair] if pair else [(e, e) for e in sorted(set(old.files) | set(new.files))]
    results, notes = [], []
    for env_a, env_b in envs:
        if env_a in removed_envs and env_b not in new.files:
            notes.append(_removed_env_note(env_a))
            continue
        results += _EnvPair(env_a, env_b, old.files.get(env_a, {}), new.files.get(env_b, {}), labels,
                            transform).compare()
    return results, notes


def _cost_lines(old: Side, new: Side, markdown: bool, pair: tuple[str, str] | None,
                labels: dict[tuple[str, str], tuple[str, str]],
                removed: frozenset[str] = frozenset()) -> list[str]:
    from .cost import estimate, format_delta, load_prices

    prices = load_prices()

    def docs(side: Side, env: str) -> tuple[list[dict[str, Any]], set[str]]:
        found, regions = [], set()
        for fname, content in sorted(side.files.get(env, {}).items()):
            if "/" in fname or not fname.endswith((".yaml", ".yml")):
                continue
            found.append(_load(content, f"{env}/{fname}"))
            regions.add(labels.get((env, fname), ("", "us-east-1"))[1])
        return found, regions

    out = []
    envs = [pair] if pair else [(e, e) for e in sorted((set(old.files) | set(new.files)) - removed)]
    for env_a, env_b in envs:
        before = estimate(*docs(old, env_a), prices=prices)
        after = estimate(*docs(new, env_b), prices=prices)
        text = format_delta(env_b if env_a == env_b else f"{env_a} -> {env_b}", before, after, markdown)
        if text:
            out.append(text)
    return out


def _stack_labels(cfgs: list[Any]) -> dict[tuple[str, str], tuple[str, str]]:
    from ..rendering import EDGE_REGION, stacks

    labels = {(cfg.environment, s.output): (s.name, s.region) for cfg in cfgs for s in stacks(cfg)}
    labels.update({(BOOTSTRAP, f"{cfg.account}.yaml"): (f"bootstrap stack of {cfg.account}", EDGE_REGION)
                   for cfg in cfgs})
    return labels


def _whole_accounts(vars_dir: Path, cfgs: list[Any]) -> frozenset[str]:
    """The accounts whose every environment is among ``cfgs``: their bootstrap files are compared
    (docs/reviewing.md)."""
    from ..config import load_all

    chosen = {cfg.environment for cfg in cfgs}
    every = load_all(vars_dir, None)
    partial = {cfg.account for cfg in every if cfg.environment not in chosen}
    return frozenset(cfg.account for cfg in cfgs if cfg.account not in partial)


def _environment_report(args: argparse.Namespace, envs: list[str], markdown: bool) -> Report:
    """diff A B: two environments rendered fresh, their own names normalised."""
    from ..config import load_all

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
    side = fresh(cfgs, args.out)
    _PARSED.update(side.parsed)
    labels = _stack_labels(cfgs)
    pair = (envs[0], envs[1])
    report = Report(f"Template review: {envs[0]} -> {envs[1]} (names, CIDRs, account ids "
                    "normalised)")
    report.stacks, _ = compare(side, side, labels, {c.environment: normaliser(c) for c in cfgs}, pair)
    report.costs = _cost_lines(side, side, markdown, pair, labels)
    return report


def _baseline(args: argparse.Namespace, known: list[str], accounts: frozenset[str]) -> tuple[Side, str]:
    """The old side and the report's first line: rendered/ (and bootstrap/) at a revision, or on
    disk outside a git checkout."""
    if args.base or in_git(args.out):
        rev = args.base or "HEAD"
        old = at_revision(args.out, rev, args.env)
        old.files[BOOTSTRAP] = bootstrap_at(args.out, rev, accounts)
        return old, (f"Template review: {args.out}/ committed at {rev} ({old.commit}) -> fresh render "
                     "of the working tree")
    present = sorted(d.name for d in args.out.iterdir() if d.is_dir()) if args.out.is_dir() else []
    old = on_disk(args.out, args.env or sorted(set(known) | set(present)))
    old.files[BOOTSTRAP] = bootstrap_on_disk(args.out, accounts)
    return old, (f"Template review: {args.out}/ on disk (not a git checkout) -> fresh render of "
                 f"{args.vars}/")


def build_report(args: argparse.Namespace) -> Report:
    from ..config import environments, load_all

    envs: list[str] = list(args.environments or [])
    markdown = args.format == "markdown"
    if envs:
        return _environment_report(args, envs, markdown)
    known = environments(args.vars)
    cfgs = load_all(args.vars, args.env)
    accounts = _whole_accounts(args.vars, cfgs) if args.env else frozenset(c.account for c in cfgs)
    new = fresh(cfgs, args.out, accounts)
    _PARSED.update(new.parsed)
    labels = _stack_labels(cfgs)
    old, title = _baseline(args, known, accounts)
    report = Report(title)
    removed = frozenset(set(old.files) - set(known) - {BOOTSTRAP})  # its stacks keep running
    report.stacks, report.notes = compare(old, new, labels, removed_envs=removed)
    report.costs = _cost_lines(old, new, markdown, None, labels, removed | {BOOTSTRAP})
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..rendering import ROOT

    parser.add_argument("environments", nargs="*", metavar="ENV",
                        help="two environments to compare (diff staging production)")
    parser.add_argument("--base", metavar="REV",
                        help="compare with rendered/ as committed at this git revision (default: HEAD)")
    parser.add_argument("--env", action="append", metavar="ENV",
                        help="only this environment (repeatable); default: all")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    parser.add_argument("--fail-on-replace", action="store_true",
                        help=f"exit {EXIT_REPLACE} when data is at risk: a stateful resource replaced, "
                        "deleted or moved, an update CloudFormation would refuse, data protection loosened")
    parser.add_argument("--fail-on-broadening", action="store_true",
                        help=f"exit {EXIT_BROADENING} when security widens: exposure, transport, "
                        "encryption, audit, IAM, security groups, secrets, headers")
    parser.add_argument("--fail-on-unjudged", action="store_true",
                        help=f"exit {EXIT_UNJUDGED} when a security-bearing property changed that no rule "
                        "judges (NOT JUDGED in the head)")
    parser.add_argument("--vars", type=Path, default=Path(os.path.relpath(ROOT / "vars")),
                        metavar="DIR", help="variables folder (default: vars/)")
    parser.add_argument("--out", type=Path, default=Path(os.path.relpath(ROOT / "rendered")),
                        metavar="DIR", help="rendered folder (default: rendered/)")


def run(args: argparse.Namespace) -> int:
    report = build_report(args)
    from ..terminal import paint, width

    markdown = args.format == "markdown"
    text = format_report(report, markdown, columns=width())
    print(text if markdown else paint(text), end="")
    if args.fail_on_replace and (report.data_at_risk or report.refused or report.data_widenings):
        return EXIT_REPLACE
    if args.fail_on_broadening and report.security_widenings:
        return EXIT_BROADENING
    if args.fail_on_unjudged and report.unjudged:
        return EXIT_UNJUDGED
    return EXIT_OK
