"""IAM policy documents by meaning: each statement as the set of requests it allows or denies.

A statement is (effect, actions, resources, principals, conditions). Actions, resources and
principals are each a set: listed (``Action``) or everything but those listed (``NotAction``).
Statement S is *covered* by statement T when every request S matches, T matches too: S's
actions inside T's, its resources inside T's, its principals inside T's, and each condition T
sets implied by one S sets on the same key. An added Allow not covered by the Allows its
document had widens; so does an old Deny no longer covered by the Denies the document keeps.
This is the question IAM Access Analyzer's CheckNoNewAccess answers with AWS's own reasoner
(IAM Access Analyzer API Reference, CheckNoNewAccess); no machine here reaches it, so the review
answers it offline, erring towards "widens" where it cannot prove coverage.

Semantics, from the IAM User Guide ("IAM JSON policy elements": Action, Resource, Principal,
Condition operators):
- ``*`` matches any run of characters, ``?`` one, in Action (case-insensitive) and Resource and in
  the ``...Like`` condition operators. A wildcard action is expanded with the table of every
  service's actions (iam_actions.py), so ``s3:Get*`` is covered by its actions listed one by one.
- ``ArnEquals`` and ``ArnLike`` both match the six colon-separated parts of an ARN with
  wildcards: switching between them changes nothing; a wildcard added to a value does.
- ``...IfExists`` also matches a request without the key: adding it loosens; ``ForAllValues:`` and
  ``ForAnyValue:`` are compared only with the same qualifier.
- An account (``123456789012`` or its ``:root`` ARN) as principal covers that account's roles and
  users; ``"*"`` and ``{"AWS": "*"}`` are anyone.

Intrinsic functions (Ref, Fn::GetAtt, Fn::Sub, Fn::Join) are compared as canonical text: each
reference (``!Ref X``, ``!GetAtt X.Arn``, ``${X}`` in a Sub) becomes one opaque token that stands
for whatever it resolves to at deploy time. A token matches only the same token on the other side
(the same logical ID or parameter) or a ``*`` that may match any run of characters; never a literal
character, a ``?``, nor a ``*`` of an ARN condition (an ARN's value may hold colons). So an
unresolved value that differs from the old one counts as new: sound, if sometimes a widening is
said where the resolved values would have been the same. Any other intrinsic (Fn::If, ...) is
one token of its whole text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .iam_actions import service_actions
from .reachability import cidr_within
from .values import compact, is_intrinsic

OPEN, CLOSE = "\ue000", "\ue001"  # around an intrinsic's token in canonical text
STAR, ONE = "\ue002", "\ue003"  # wildcards, once a text is read as a pattern
NONE = "(none)"  # the principal of a statement that names none (an identity policy)
ANYONE = "*"
_PART = f"(?:{OPEN}[^{CLOSE}]*{CLOSE}|[^:{OPEN}])+"  # one part of an ARN, tokens whole
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


# --- canonical text ---------------------------------------------------------------------------


def _token(text: str) -> str:
    return OPEN + text + CLOSE


def _sub_text(text: str) -> str:
    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        return _token(f"GetAtt {name}" if "." in name else f"Ref {name}")

    return _SUB_VARIABLE.sub(variable, text).replace("${!", "${")


def _canonical_intrinsic(name: str, arg: Any) -> str | None:
    if name == "Ref" and isinstance(arg, str):
        return _token(f"Ref {arg}")
    if name == "Fn::GetAtt":
        return _token("GetAtt " + (".".join(map(str, arg)) if isinstance(arg, list) else str(arg)))
    if name == "Fn::Sub" and isinstance(arg, str):
        return _sub_text(arg)
    if name == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
        return str(arg[0]).join(canonical(part) for part in arg[1])
    return None


def canonical(value: Any) -> str:
    """A value as text, each reference an opaque token (see the module's docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    found = _canonical_intrinsic(*next(iter(value.items()))) if is_intrinsic(value) else None
    return found if found is not None else _token(compact(value, 10_000))


def shown(text: str) -> str:
    """Canonical text as the report shows it: tokens as ${...}."""
    return text.replace(OPEN, "${").replace(CLOSE, "}")


# --- patterns -----------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def symbols(text: str, wildcards: bool) -> tuple[str, ...]:
    """A text as a pattern: characters, STAR and ONE (when wildcards count), tokens whole."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == OPEN and CLOSE in text[i:]:
            end = text.index(CLOSE, i) + 1
            out.append(text[i:end])
            i = end
            continue
        char = text[i]
        out.append({"*": STAR, "?": ONE}.get(char, char) if wildcards else char)
        i += 1
    return tuple(out)


@lru_cache(maxsize=65536)
def included(a: tuple[str, ...], t: tuple[str, ...], stop: str = "", a_stops: bool = False) -> bool:
    """Whether every text pattern ``a`` matches, pattern ``t`` matches too. ``stop``: characters
    t's wildcards do not match (a colon, in an ARN condition); ``a_stops``: a's wildcards do not
    match them either. A token matches only itself, or a STAR of ``t`` that matches any character."""
    memo: dict[tuple[int, int], bool] = {}

    def absorbs(symbol: str, wildcard: str) -> bool:
        if symbol.startswith(OPEN):
            return wildcard == STAR and not stop
        if symbol in (STAR, ONE):
            return (wildcard == STAR or symbol == ONE) and (not stop or a_stops)
        return symbol not in stop

    def go(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if j == len(t):
                memo[(i, j)] = i == len(a)
            elif t[j] == STAR:
                memo[(i, j)] = go(i, j + 1) or (i < len(a) and absorbs(a[i], STAR) and go(i + 1, j))
            elif i == len(a):
                memo[(i, j)] = False
            elif t[j] == ONE:
                memo[(i, j)] = absorbs(a[i], ONE) and go(i + 1, j + 1)
            else:
                memo[(i, j)] = a[i] == t[j] and go(i + 1, j + 1)
        return memo[(i, j)]

    return go(0, 0)


def _literal(pattern: tuple[str, ...]) -> bool:
    return STAR not in pattern and ONE not in pattern


# --- the three sets: actions, resources, principals ------------------------------------------


@dataclass(frozen=True)
class Items:
    """A set of actions, resources or principals: ``items`` listed, or all but them (``negated``)."""

    negated: bool
    items: tuple[str, ...]

    def atoms(self) -> list[Items]:
        """Pieces whose coverage is checked one at a time: each listed item; an "all but" whole."""
        return [self] if self.negated else [Items(False, (i,)) for i in self.items]

    def text(self) -> str:
        body = ", ".join(shown(i) for i in self.items)
        return f"every one but {body}" if self.negated else body


class Domain:
    """Pattern matching for resources (case-sensitive, wildcards)."""

    def pattern(self, item: str) -> tuple[str, ...]:
        return symbols(item, True)

    def within(self, a: str, t: str) -> bool:
        return included(self.pattern(a), self.pattern(t))

    def everything(self, item: str) -> bool:
        return item == "*"

    def expand(self, item: str) -> tuple[str, ...] | None:
        """The concrete items a pattern stands for, where known."""
        return (item,) if _literal(self.pattern(item)) else None

    def covered(self, a: str, listed: tuple[str, ...]) -> bool:
        """Pattern ``a`` inside the union of ``listed``."""
        if any(self.within(a, t) for t in listed):
            return True
        concrete = self.expand(a)
        return bool(concrete) and all(any(self.within(c, t) for t in listed) for c in concrete)

    def disjoint(self, a: str, listed: tuple[str, ...]) -> bool:
        """Whether nothing ``a`` matches is in ``listed`` (provably; else False)."""
        concrete = self.expand(a)
        return concrete is not None and not any(self.within(c, t) for c in concrete for t in listed)


class ActionDomain(Domain):
    """Actions: case-insensitive; a wildcard expands to the service's actions it matches."""

    def pattern(self, item: str) -> tuple[str, ...]:
        return symbols(item.lower(), True)

    def expand(self, item: str) -> tuple[str, ...] | None:
        pattern = self.pattern(item)
        if _literal(pattern):
            return (item,)
        prefix, _, _ = item.partition(":")
        known = service_actions(prefix) if _literal(self.pattern(prefix)) and ":" in item else None
        return None if known is None else tuple(c for c in known if included(self.pattern(c), pattern))


class PrincipalDomain(Domain):
    """Principals ("AWS:<arn>", "Service:<name>", ...): no wildcards but anyone; an account
    covers what is in it."""

    def pattern(self, item: str) -> tuple[str, ...]:
        return symbols(item, False)

    def everything(self, item: str) -> bool:
        return item == ANYONE

    def within(self, a: str, t: str) -> bool:
        if a == t or t == ANYONE or (t == "AWS:*" and a.startswith("AWS:")):
            return True
        root = re.fullmatch(f"AWS:arn:({_PART}):iam::({_PART}):root", t)
        inside = tuple(f"AWS:arn:{root[1]}:{kind}::{root[2]}:" for kind in ("iam", "sts")) if root else ()
        return bool(inside) and a.startswith(inside)


ACTIONS, RESOURCES, PRINCIPALS = ActionDomain(), Domain(), PrincipalDomain()


def covers(t: Items, s: Items, domain: Domain) -> bool:
    """Whether set ``t`` holds everything in set ``s``."""
    if not t.negated and not s.negated:
        return all(domain.covered(a, t.items) for a in s.items)
    if t.negated and not s.negated:
        return all(domain.disjoint(a, t.items) for a in s.items)
    if not t.negated:
        return any(domain.everything(i) for i in t.items)
    return all(domain.covered(a, s.items) for a in t.items)


# --- conditions ---------------------------------------------------------------------------------

# Operator -> (kind of value, positive?, how values match). Kinds compare with each other only
# where one operator's values can be read under the other: string, ARN and case-insensitive
# string are all strings.
_OPERATORS: dict[str, tuple[str, bool, str]] = {
    "StringEquals": ("string", True, "literal"), "StringNotEquals": ("string", False, "literal"),
    "StringEqualsIgnoreCase": ("string", True, "ci"), "StringNotEqualsIgnoreCase": ("string", False, "ci"),
    "StringLike": ("string", True, "glob"), "StringNotLike": ("string", False, "glob"),
    "ArnEquals": ("string", True, "arn"), "ArnLike": ("string", True, "arn"),
    "ArnNotEquals": ("string", False, "arn"), "ArnNotLike": ("string", False, "arn"),
    "IpAddress": ("ip", True, "cidr"), "NotIpAddress": ("ip", False, "cidr"),
    "Bool": ("bool", True, "literal"), "Null": ("null", True, "literal"),
    "NumericEquals": ("number", True, "literal"), "NumericNotEquals": ("number", False, "literal"),
    "DateEquals": ("date", True, "literal"), "DateNotEquals": ("date", False, "literal"),
    "BinaryEquals": ("binary", True, "literal"),
}


@dataclass(frozen=True, order=True)
class Constraint:
    """One condition: key (lower case, as IAM reads keys), operator and values."""

    qualifier: str  # "", "ForAllValues:", "ForAnyValue:"
    operator: str  # without IfExists
    if_exists: bool
    key: str
    values: tuple[str, ...]
    name: str = field(default="", compare=False)  # the key as written

    def text(self) -> str:
        op = f"{self.qualifier}{self.operator}{'IfExists' if self.if_exists else ''}"
        return f"{op} {self.name or self.key} {', '.join(shown(v) for v in self.values)}"


def _constraint(op: str, key: str, values: Any) -> Constraint:
    qualifier = next((q for q in ("ForAllValues:", "ForAnyValue:") if op.startswith(q)), "")
    bare = op.removeprefix(qualifier)
    if_exists = bare.endswith("IfExists")
    items = values if isinstance(values, list) else [values]
    return Constraint(qualifier, bare.removesuffix("IfExists"), if_exists, key.lower(),
                      tuple(sorted({canonical(v) for v in items})), key)


def constraints(condition: Any) -> tuple[Constraint, ...]:
    """A statement's Condition as constraints; an unreadable one (an intrinsic) as one opaque
    constraint that only the same text implies."""
    if condition is None:
        return ()
    if not isinstance(condition, dict) or is_intrinsic(condition) or not all(
            isinstance(keys, dict) and not is_intrinsic(keys) for keys in condition.values()):
        return (Constraint("", "(unread)", False, "(whole condition)", (canonical(condition),)),)
    return tuple(sorted(_constraint(str(op), str(k), v) for op, keys in condition.items()
                        for k, v in keys.items()))


def _value_within(a: str, a_mode: str, t: str, t_mode: str) -> bool:
    """Whether every request value ``a`` (read under a_mode) matches, ``t`` matches too."""
    if "cidr" in (a_mode, t_mode):
        return a_mode == t_mode and cidr_within(a, t)
    a_pattern = symbols(a, a_mode in ("glob", "arn"))
    if t_mode == "ci":
        return _literal(a_pattern) and a.lower() == t.lower()
    if a_mode == "ci" and a.lower() != a.upper():
        return False  # any case of it matches; a case-sensitive value matches one
    if t_mode == "arn" and t == "*":
        return True
    stop = ":" if t_mode == "arn" else ""
    return included(a_pattern, symbols(t, t_mode != "literal"), stop, a_mode == "arn")


def implies(s: Constraint, t: Constraint) -> bool:
    """Whether a request meeting ``s`` meets ``t`` (same key)."""
    if s == t:
        return True
    if s.key != t.key or s.qualifier != t.qualifier or (s.if_exists and not t.if_exists):
        return False
    fs, ft = _OPERATORS.get(s.operator), _OPERATORS.get(t.operator)
    if fs is None or ft is None or fs[:2] != ft[:2]:
        return s.operator == t.operator and s.values == t.values
    if fs[1]:  # positive: each value s accepts, t accepts
        return all(any(_value_within(a, fs[2], b, ft[2]) for b in t.values) for a in s.values)
    return all(any(_value_within(b, ft[2], a, fs[2]) for a in s.values) for b in t.values)


def loosened(s: tuple[Constraint, ...], t: tuple[Constraint, ...]) -> str:
    """How conditions ``s`` fail to imply conditions ``t`` ("" when they imply them)."""
    for want in t:
        if any(implies(have, want) for have in s):
            continue
        same_key = [c for c in s if c.key == want.key]
        if not same_key:
            return f"condition removed: {want.text()}"
        return f"condition loosened: {want.text()} -> {' and '.join(c.text() for c in same_key)}"
    return ""


# --- statements and documents -----------------------------------------------------------------


def _listed(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(sorted({canonical(i) for i in items}))


def _principals(value: Any) -> tuple[str, ...]:
    if value is None:
        return (NONE,)
    if value == "*" or (isinstance(value, dict) and value.get("AWS") == "*"):
        return (ANYONE,)
    if not isinstance(value, dict) or is_intrinsic(value):
        return (f"AWS:{canonical(value)}",)
    found = set()
    for kind, names in value.items():
        for name in _listed(names):
            account = re.fullmatch(r"\d{12}", name)
            found.add(f"{kind}:arn:aws:iam::{name}:root" if account and kind == "AWS" else f"{kind}:{name}")
    return tuple(sorted(found))


def _items(st: dict[str, Any], key: str, read: Any = _listed) -> Items:
    if f"Not{key}" in st:
        return Items(True, read(st[f"Not{key}"]))
    return Items(False, read(st.get(key)) if key in st or key == "Principal" else ("*",))


@dataclass(frozen=True)
class Meaning:
    """What one statement allows or denies."""

    effect: str
    actions: Items
    resources: Items
    principals: Items
    conditions: tuple[Constraint, ...]

    @classmethod
    def of(cls, st: dict[str, Any]) -> Meaning:
        return cls(str(st.get("Effect", "")), _items(st, "Action"), _items(st, "Resource"),
                   _items(st, "Principal", _principals), constraints(st.get("Condition")))

    def covered_by(self, t: Meaning) -> bool:
        return (covers(t.actions, self.actions, ACTIONS) and covers(t.resources, self.resources, RESOURCES)
                and covers(t.principals, self.principals, PRINCIPALS)
                and not loosened(self.conditions, t.conditions))

    def atoms(self) -> list[Meaning]:
        return [Meaning(self.effect, a, r, p, self.conditions) for a in self.actions.atoms()
                for r in self.resources.atoms() for p in self.principals.atoms()]


def is_document(value: Any) -> bool:
    """An IAM policy document: a Statement (one or a list) of items with Effect and Action or
    NotAction."""
    if not isinstance(value, dict) or "Statement" not in value:
        return False
    items = value["Statement"]
    items = items if isinstance(items, list) else [items]
    return bool(items) and all(isinstance(s, dict) and "Effect" in s and ("Action" in s or "NotAction" in s)
                               for s in items)


def as_document(value: Any) -> dict[str, Any] | None:
    """The policy document a property value holds (as an object, or as JSON text), or None."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if is_document(value) else None


def statements_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    items = doc["Statement"]
    return [s for s in (items if isinstance(items, list) else [items]) if isinstance(s, dict)]


# --- what an uncovered statement now allows ------------------------------------------------


def _new_actions(atom: Items, old: list[Meaning]) -> str:
    if atom.negated:
        return f"new action: NotAction allows every action but {atom.text()}"
    item = atom.items[0]
    concrete = ACTIONS.expand(item)
    if concrete is None or concrete == (item,):
        return f"new action {shown(item)}"
    allowed = [m.actions for m in old]
    new = [c for c in concrete if not any(covers(t, Items(False, (c,)), ACTIONS) for t in allowed)]
    more = f" and {len(new) - 3} more" if len(new) > 3 else ""
    return f"new action {item} (now allows {', '.join(new[:3])}{more})"


def _reason(atom: Meaning, old: list[Meaning]) -> str:
    """Why one piece of an added Allow is not covered by the old Allows ("" when it is)."""
    same = [m for m in old if covers(m.actions, atom.actions, ACTIONS)]
    if not same:
        return _new_actions(atom.actions, old)
    narrowed = [m for m in same if covers(m.resources, atom.resources, RESOURCES)]
    if not narrowed:
        wider = any(covers(atom.resources, m.resources, RESOURCES) for m in same)
        return f"{'wider' if wider else 'new'} resource {atom.resources.text()}"
    narrowed = [m for m in narrowed if covers(m.principals, atom.principals, PRINCIPALS)]
    if not narrowed:
        return f"new principal {atom.principals.text()}"
    reasons = [loosened(atom.conditions, m.conditions) for m in narrowed]
    return "" if "" in reasons else min(reasons, key=len)


def allow_widening(new: Meaning, old: list[Meaning]) -> str:
    """How an added Allow widens what the document's old Allows allowed ("" when it does not)."""
    for atom in new.atoms():
        reason = _reason(atom, old)
        if reason:
            return reason
    return ""


def deny_widening(old: Meaning, new: list[Meaning]) -> str:
    """How the document's Denies no longer deny what ``old`` (a Deny it had) denied."""
    lost = [a for a in old.atoms() if not any(a.covered_by(d) for d in new)]
    if not lost:
        return ""
    if not any(_overlap(a.actions, d.actions) for a in old.atoms() for d in new):
        return "deny removed"
    first = lost[0]
    part = "all of " if any(covers(first.actions, d.actions, ACTIONS) for d in new) else ""
    return (f"deny narrowed: no longer denies {part}{first.actions.text()} on {first.resources.text()}"
            + (f" to {first.principals.text()}" if first.principals.items != (NONE,) else ""))


def _overlap(a: Items, b: Items) -> bool:
    """Whether two sets of actions provably share one: either holds the other (s3:* and
    s3:PutObject), as a Deny narrowed to some of its actions does."""
    return covers(a, b, ACTIONS) or covers(b, a, ACTIONS)
