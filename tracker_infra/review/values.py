"""Value comparison: every difference between two parsed values (templates, JSON files) as a
property path with old and new, and values shown short on one line.

Paths: ``.`` for mapping keys, ``[0]`` for list positions, ``[Key=Owner]`` for list items matched
by an identity key (IDENTITY_KEYS), so reordering such a list is not a change. A string holding
JSON (a dashboard body, also inside ``!Sub``) is compared key by key. Intrinsic functions are
compared whole and shown short: ``!Ref X``, ``!GetAtt X.Arn``, ``!Sub "..."``.
"""

from __future__ import annotations

import json
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "(none)"})()

# Keys that identify an item in a list of mappings (matched by key instead of position).
IDENTITY_KEYS = ("Key", "Sid", "Id", "Name", "PolicyName", "DeviceName", "ContainerPort",
                 "TargetOriginId", "PathPattern", "ErrorCode", "Field")


def is_intrinsic(node: Any) -> bool:
    if not isinstance(node, dict) or len(node) != 1:
        return False
    key = next(iter(node))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def json_body(value: Any) -> Any:
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


Differences = list[tuple[tuple[Any, ...], Any, Any]]


def _mappings(old: Any, new: Any) -> bool:
    return isinstance(old, dict) and isinstance(new, dict) and not (is_intrinsic(old) or is_intrinsic(new))


def _json_bodies(old: Any, new: Any) -> tuple[Any, Any, str] | None:
    """Both sides as parsed JSON when both hold a JSON document (a string, or !Sub of one): the
    bodies and the path step that says which; None otherwise."""
    if (isinstance(old, dict) and isinstance(new, dict) and is_intrinsic(old) and is_intrinsic(new)
            and next(iter(old)) == next(iter(new)) == "Fn::Sub"):
        old, new, step = old["Fn::Sub"], new["Fn::Sub"], "!Sub(json)"
    elif isinstance(old, str) and isinstance(new, str):
        step = "(json)"
    else:
        return None
    a, b = json_body(old), json_body(new)
    return (a, b, step) if a is not None and b is not None else None


def _by_name(old: list[Any], new: list[Any], key: str, path: tuple[Any, ...]) -> Differences:
    """Lists of named items (tags by Key, ...) compared item by item, by that name."""
    before = {_label(i[key]): i for i in old}
    after = {_label(i[key]): i for i in new}
    out = []
    for name in dict.fromkeys([*before, *after]):
        out += diff_values(before.get(name, MISSING), after.get(name, MISSING), (*path, (key, name)))
    return out


def _lists(old: list[Any], new: list[Any], path: tuple[Any, ...]) -> Differences | None:
    key = _identity_key(old, new)
    if key is not None:
        return _by_name(old, new, key, path)
    if len(old) == len(new) and all(isinstance(i, (dict, list)) for i in old + new):
        out = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            out += diff_values(a, b, (*path, index))
        return out
    return None


def diff_values(old: Any, new: Any, path: tuple[Any, ...] = ()) -> Differences:
    """Every difference between two parsed values as (path, old, new); MISSING for absent."""
    if old == new:
        return []
    if _mappings(old, new):
        out = []
        for key in dict.fromkeys([*old, *new]):
            out += diff_values(old.get(key, MISSING), new.get(key, MISSING), (*path, key))
        return out
    bodies = _json_bodies(old, new)
    if bodies is not None:
        return diff_values(bodies[0], bodies[1], (*path, bodies[2]))
    if isinstance(old, list) and isinstance(new, list):
        found = _lists(old, new, path)
        if found is not None:
            return found
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


def _compact_intrinsic(name: str, arg: Any) -> str:
    if name == "Ref" and isinstance(arg, str):
        return f"!Ref {arg}"
    if name == "Fn::GetAtt" and isinstance(arg, list) and all(isinstance(a, str) for a in arg):
        return f"!GetAtt {'.'.join(arg)}"
    return f"!{name.removeprefix('Fn::')} {_compact(arg)}"


SCALARS = {True: "true", False: "false", None: "null"}


def _compact(value: Any) -> str:
    if value is MISSING:
        return "(none)"
    if is_intrinsic(value):
        return _compact_intrinsic(*next(iter(value.items())))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return SCALARS[value]
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
