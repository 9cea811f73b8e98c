"""Security changes between two versions of a template: IAM statements and security-group rules,
each added one checked for widening.

IAM: every statement of every policy document in a resource's properties (``PolicyDocument``,
``AssumeRolePolicyDocument``, ``KeyPolicy``), compared as a whole (effect, actions, resources,
principal, condition). An added Allow statement widens access when one of its (action, resource,
principal) combinations is not covered by an Allow statement the same document had before (``*``
wildcards honoured): "new action", "wider resource", "new principal". A removed Deny widens too.

Security groups: every rule of every group (reachability.security_group_rules: inline and
standalone, ingress and egress). An added rule widens: "open to the internet" (0.0.0.0/0, ::/0),
"new peer", or "more ports" to a peer it already had.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from .reachability import Rule, ports_label, security_group_rules
from .report import IamChange, RuleChange
from .template import Template
from .values import compact

POLICY_KEYS = {"PolicyDocument": "", "AssumeRolePolicyDocument": "trust policy", "KeyPolicy": "key policy"}
ANYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class _Statement:
    where: str  # resource and document
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principal: str
    condition: str

    def row(self, sign: str, widening: str = "") -> IamChange:
        return IamChange(sign, self.where, self.effect, ", ".join(self.actions),
                         ", ".join(self.resources), self.principal, self.condition, widening)


def _strings(value: Any, prefix: str = "") -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(prefix + (i if isinstance(i, str) else compact(i, 80)) for i in items)


def _documents(node: Any, where: str) -> list[tuple[str, Any]]:
    """(label, policy document) found anywhere under ``node``."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in POLICY_KEYS and isinstance(value, dict):
                found.append((" ".join(filter(None, [where, POLICY_KEYS[key]])), value))
            else:
                found += _documents(value, where)
    elif isinstance(node, list):
        for item in node:
            name = item.get("PolicyName") if isinstance(item, dict) else None
            found += _documents(item, f"{where} {name}" if isinstance(name, str) else where)
    return found


def statements(t: Template) -> set[_Statement]:
    out = set()
    for rid in t.resources:
        for where, doc in _documents(t.props(rid), rid):
            items = doc.get("Statement")
            for st in items if isinstance(items, list) else [items]:
                if not isinstance(st, dict):
                    continue
                actions = (_strings(st["Action"]) if "Action" in st
                           else _strings(st.get("NotAction", []), "not "))
                resources = (_strings(st["Resource"]) if "Resource" in st
                             else _strings(st.get("NotResource", []), "not "))
                principal = st.get("Principal", st.get("NotPrincipal"))
                out.add(_Statement(where, str(st.get("Effect", "")), actions, resources,
                                   compact(principal, 120) if principal is not None else "",
                                   compact(st["Condition"], 120) if "Condition" in st else ""))
    return out


def _covers(pattern: str, value: str) -> bool:
    return pattern == value or (not pattern.startswith("not ") and fnmatchcase(value, pattern))


def _resource_widening(st: _Statement, resource: str, same_action: list[_Statement]) -> str:
    """How one resource of a statement widens what the statements allowing its action allowed."""
    same = [b for b in same_action if any(_covers(r, resource) for r in b.resources)]
    if not same:
        wider = any(_covers(resource, r) for b in same_action for r in b.resources)
        return f"{'wider' if wider else 'new'} resource {resource}"
    if st.principal and not any(b.principal == st.principal for b in same):
        return "new principal"
    if not st.condition and all(b.condition for b in same):
        return "condition removed"
    return ""


def _widening(st: _Statement, before: set[_Statement]) -> str:
    """How an added Allow statement widens what its policy allowed before ("" if it does not):
    a new action, a new or wider resource, a new principal, a condition removed."""
    allowed = [b for b in before if b.where == st.where and b.effect == "Allow"]
    for action in st.actions:
        same_action = [b for b in allowed if any(_covers(a, action) for a in b.actions)]
        if not same_action:
            return f"new action {action}"
        for resource in st.resources:
            found = _resource_widening(st, resource, same_action)
            if found:
                return found
    return ""


def iam_changes(old: Template, new: Template) -> list[IamChange]:
    before, after = statements(old), statements(new)
    rows = [s.row("-", "deny removed" if s.effect == "Deny" else "")
            for s in sorted(before - after, key=str)]
    rows += [s.row("+", _widening(s, before) if s.effect == "Allow" else "")
             for s in sorted(after - before, key=str)]
    return sorted(rows, key=lambda r: (r.resource, r.sign))


def _rule_key(r: Rule) -> tuple[str, str, str, str]:
    return r.group, r.direction, ports_label([r.ports]), r.peer


def rule_changes(old: Template, new: Template) -> list[RuleChange]:
    before = {_rule_key(r) for r in security_group_rules(old)}
    after = {_rule_key(r) for r in security_group_rules(new)}
    peers = {(g, d, p) for g, d, _, p in before}
    rows = [RuleChange("-", *key) for key in sorted(before - after)]
    for key in sorted(after - before):
        group, direction, _, peer = key
        widening = ("open to the internet" if peer in ANYWHERE else
                    "more ports" if (group, direction, peer) in peers else "new peer")
        rows.append(RuleChange("+", *key, widening))
    return sorted(rows, key=lambda r: (r.group, r.direction, r.sign))
