"""Replacement analysis: the resources of two versions of a template, compared, with what
CloudFormation will do to each.

- A changed create-only property (schema_table: ``always``) replaces the resource; a changed
  conditionally create-only one (``conditional``) may replace it; a changed Type replaces it.
- Propagation: a resource whose create-only property references a replaced resource is replaced
  too (VPC -> subnets, security groups, target group; cluster -> instances, ...).
- Network moves: a resource that stays but references a replaced VPC, subnet, security group
  or a subnet group that must move (the database cluster, its subnet group, the ECS service, the
  load balancer) must move to the new network; RDS cannot move a cluster between VPCs.
- Custom names: a replaced resource whose name property (``names``) keeps its value cannot be
  replaced (the new resource would need the old one's name): CloudFormation refuses the update.
- An engine major version change is an irreversible upgrade.
- A type the table does not know (custom resources, SAM types without a CloudFormation
  counterpart) with changed properties is "unknown", with that cause.
SAM types are looked up through the type they expand to (AWS::Serverless::Function ->
AWS::Lambda::Function).
"""

from __future__ import annotations

from typing import Any

from ..cfn_yaml import references
from .report import FOLLOWS, MAY, NO, UNKNOWN, YES, Change, ResourceChange
from .schema_table import table
from .values import MISSING, compact, diff_values, format_path, is_intrinsic

SAM_TYPES = {
    "AWS::Serverless::Function": "AWS::Lambda::Function",
    "AWS::Serverless::LayerVersion": "AWS::Lambda::LayerVersion",
    "AWS::Serverless::StateMachine": "AWS::StepFunctions::StateMachine",
}

# Where a resource's network comes from: replacing one of these moves whatever references it.
NETWORK_TYPES = frozenset({"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::SecurityGroup",
                           "AWS::RDS::DBSubnetGroup"})

ENGINE_TYPES = frozenset({"AWS::RDS::DBCluster", "AWS::RDS::DBInstance"})

RESOURCE_ATTRIBUTES = ("Type", "Condition", "DependsOn", "DeletionPolicy", "UpdateReplacePolicy",
                       "UpdatePolicy", "CreationPolicy", "Metadata", "Properties")


def create_only(type_: str) -> dict[str, list[str]] | None:
    """{"always": [...], "conditional": [...], "names": [...]} of a type, or None if unknown.

    Pointers are below /properties, e.g. ``KmsKeyId`` or ``A/*/B``.
    """
    return table().get(SAM_TYPES.get(type_, type_))


def _values_at(node: Any, parts: list[str]) -> list[Any]:
    """Every value at a pointer (``*`` walks each list item); MISSING where nothing is."""
    if not parts:
        return [node]
    head, rest = parts[0], parts[1:]
    if is_intrinsic(node):
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


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    props = resource.get("Properties")
    return props if isinstance(props, dict) else {}


def _policy(resource: dict[str, Any], key: str) -> str:
    value = resource.get(key, "Delete")
    return value if isinstance(value, str) else compact(value)


def _new(logical_id: str, kind: str, resource: dict[str, Any], old_type: str = "") -> ResourceChange:
    return ResourceChange(logical_id, kind, str(resource.get("Type", "?")), old_type,
                          deletion_policy=_policy(resource, "DeletionPolicy"),
                          update_replace_policy=_policy(resource, "UpdateReplacePolicy"))


def analyse(old: dict[str, Any], new: dict[str, Any]) -> list[ResourceChange]:
    """Every added, removed and changed resource between two ``Resources`` mappings."""
    out = []
    for logical_id in dict.fromkeys([*old, *new]):
        a, b = old.get(logical_id), new.get(logical_id)
        if a == b:
            continue
        if a is None or b is None:
            out.append(_new(logical_id, "removed" if b is None else "added", a if b is None else b))
        else:
            out.append(_changed(logical_id, a, b))
    _propagate(out, old, new)
    _network_moves(out, old, new)
    for r in out:
        if r.kind == "changed" and r.replaced:
            _custom_name(r, _props(old[r.logical_id]), _props(new[r.logical_id]))
    return out


def _create_only_hits(entry: dict[str, Any] | None, old: dict[str, Any],
                      new: dict[str, Any]) -> dict[str, str]:
    """pointer -> YES (always) or MAY (conditional) for each create-only property whose value
    differs between the two resources' properties."""
    hits: dict[str, str] = {}
    for verdict, key in ((YES, "always"), (MAY, "conditional")):
        for pointer in (entry or {}).get(key, []):
            parts = pointer.split("/")
            if _values_at(old, parts) != _values_at(new, parts):
                hits.setdefault(pointer, verdict)
    return hits


def _replaces(path: tuple[Any, ...], hits: dict[str, str]) -> str:
    """Whether a change at ``path`` replaces the resource: YES, MAY or NO."""
    replaces = NO
    if path[:1] == ("Properties",):
        for pointer, verdict in hits.items():
            if _pointer_matches(pointer, path[1:]):
                replaces = YES if YES in (replaces, verdict) else verdict
    return replaces


def _verdict(diff: ResourceChange, hits: dict[str, str], entry: dict[str, Any] | None,
             raw: list[tuple[tuple[Any, ...], Any, Any]], type_: str) -> None:
    """The resource's replacement verdict and its reason."""
    if hits:
        strongest = YES if YES in hits.values() else MAY
        names = sorted(p.replace("/", ".") for p, v in hits.items() if v == strongest)
        diff.replacement = strongest
        diff.reason = (f"create-only {'property' if len(names) == 1 else 'properties'} "
                       f"{', '.join(names)} changed" + ("" if strongest == YES else
                                                       " (replacement depends on the change)"))
    elif entry is None and any(p[:1] == ("Properties",) for p, _, _ in raw):
        diff.replacement, diff.reason = UNKNOWN, f"no resource schema for {type_}"


def _engine_upgrade(diff: ResourceChange, old: dict[str, Any], new: dict[str, Any]) -> None:
    if diff.type in ENGINE_TYPES:
        before, after = (_major(p.get("EngineVersion")) for p in (old, new))
        if before and after and before != after:
            diff.irreversible = (f"engine major version {before} -> {after}: an upgrade with no "
                                 "way back (a downgrade is a restore from a snapshot)")


def _changed(logical_id: str, a: dict[str, Any], b: dict[str, Any]) -> ResourceChange:
    type_old, type_new = str(a.get("Type", "?")), str(b.get("Type", "?"))
    diff = _new(logical_id, "changed", b, type_old if type_old != type_new else "")
    raw = []
    for key in dict.fromkeys([*RESOURCE_ATTRIBUTES, *a, *b]):
        raw += diff_values(a.get(key, MISSING), b.get(key, MISSING), (key,))
    if type_old != type_new:
        diff.replacement, diff.reason = YES, "Type changed"
        diff.changes = [Change(format_path(p), x, y) for p, x, y in raw]
        return diff
    props_old, props_new = _props(a), _props(b)
    entry = create_only(type_new)
    hits = _create_only_hits(entry, props_old, props_new)
    diff.changes = [Change(format_path(path), x, y, _replaces(path, hits)) for path, x, y in raw]
    _verdict(diff, hits, entry, raw, type_new)
    _engine_upgrade(diff, props_old, props_new)
    return diff


def _major(version: Any) -> str:
    return version.split(".", 1)[0] if isinstance(version, str) else ""


def _propagate(diffs: list[ResourceChange], old: dict[str, Any], new: dict[str, Any]) -> None:
    """A resource whose create-only property references a replaced resource is replaced too."""
    by_id = {d.logical_id: d for d in diffs}
    replaced = {d.logical_id: d.replacement for d in diffs if d.replaced}
    grew = True
    while grew:
        grew = False
        for logical_id, resource in new.items():
            if (logical_id in replaced or logical_id not in old or not isinstance(resource, dict)
                    or old[logical_id].get("Type") != resource.get("Type")):
                continue
            cause = _replaced_reference(resource, replaced)
            if cause is None:
                continue
            pointer, target, strength = cause
            diff = by_id.get(logical_id)
            if diff is None:
                diff = by_id[logical_id] = _new(logical_id, "changed", resource)
                diffs.append(diff)
            if not diff.replaced or strength == YES:
                diff.replacement = strength
                diff.reason = f"{pointer.replace('/', '.')} references {target}{FOLLOWS}"
            replaced[logical_id] = diff.replacement
            grew = True


def _replaced_reference(resource: dict[str, Any], replaced: dict[str, str]) -> tuple[str, str, str] | None:
    """(pointer, replaced target, YES/MAY) for the first create-only property naming a replaced
    resource, or None."""
    entry = create_only(str(resource.get("Type")))
    for verdict, key in ((YES, "always"), (MAY, "conditional")):
        for pointer in (entry or {}).get(key, []):
            for value in _values_at(_props(resource), pointer.split("/")):
                causes = sorted(set(references(value)) & set(replaced)) if value is not MISSING else []
                if causes:
                    return pointer, causes[0], YES if verdict == YES and replaced[causes[0]] == YES else MAY
    return None


def _stays(logical_id: str, resource: Any, old: dict[str, Any], moving: dict[str, str],
           diff: ResourceChange | None) -> bool:
    """A resource that exists on both sides, is not itself replaced or moving, and so may have to
    follow a network that moves."""
    return (logical_id in old and logical_id not in moving and isinstance(resource, dict)
            and not (diff is not None and (diff.replaced or diff.moves or diff.kind != "changed")))


def _network_moves(diffs: list[ResourceChange], old: dict[str, Any], new: dict[str, Any]) -> None:
    """Resources that stay but reference a replaced (or moving) network resource."""
    by_id = {d.logical_id: d for d in diffs}
    moving = {d.logical_id: "is replaced" for d in diffs if d.replaced and d.type in NETWORK_TYPES}
    grew = bool(moving)
    while grew:
        grew = False
        for logical_id, resource in new.items():
            diff = by_id.get(logical_id)
            targets = (sorted(set(references(_props(resource))) & set(moving))
                       if _stays(logical_id, resource, old, moving, diff) else [])
            if not targets:
                continue
            if diff is None:
                diff = by_id[logical_id] = _new(logical_id, "changed", resource)
                diffs.append(diff)
            diff.moves = f"references {targets[0]}, which {moving[targets[0]]}"
            if diff.type in NETWORK_TYPES:
                moving[logical_id] = "must move"
            grew = True


def _custom_name(diff: ResourceChange, old: dict[str, Any], new: dict[str, Any]) -> None:
    for prop in (create_only(diff.type) or {}).get("names", []):
        before, after = old.get(prop, MISSING), new.get(prop, MISSING)
        if after is not MISSING and before == after:
            maybe = "" if diff.replacement == YES else "may "
            diff.refused = (f"{prop} is fixed ({compact(after, 80)}) and a replacement needs a new "
                            f"name: CloudFormation {maybe}refuses this update")
            return
