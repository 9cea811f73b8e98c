"""Security changes between two versions of a template: IAM policies and security-group rules,
compared by what they allow.

IAM (policy.py says the semantics): every policy document in a resource's properties, whatever
the property is called (``PolicyDocument``, ``AssumeRolePolicyDocument``, ``KeyPolicy``,
``RepositoryPolicyText``, a secret's or a log group's resource policy, one of a role's inline
``Policies``; as an object or as JSON text), and each function's ``AWS::Lambda::Permission``
resources read as the statements of the function's resource policy. An added Allow statement
widens when a request it allows was allowed by no Allow of the same document before: a new
action, a new or wider resource, a new principal, a condition removed or loosened, each said
with what it now allows. An old Deny that the document's Denies no longer cover widens too
("deny removed", "deny narrowed"). Besides the documents: a managed policy attached
(``ManagedPolicyArns``, or a policy's ``Roles``/``Users``/``Groups``), and a permissions boundary
changed or removed.

Security groups: every rule of every group (reachability.security_group_rules: inline and
standalone, ingress and egress) plus the allow-all egress AWS gives a group that declares no
egress, compared as (peer, protocol, ports). An added rule widens unless an old rule of the same
group and direction holds it: a CIDR inside the old CIDR, ports inside the old ports, the same
protocol or an old "all traffic". It is "open to the internet" (0.0.0.0/0, ::/0), "more ports" to
a peer the group had, or a "new peer".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .policy import Meaning, allow_widening, as_document, canonical, deny_widening, shown, statements_of
from .reachability import DEFAULT_EGRESS, Rule, cidr_within, default_egress, ports_label, security_group_rules
from .report import IamChange, RuleChange
from .template import Template
from .values import compact

# Where a document is, as the report names it: a property's own label, else the property's name.
POLICY_KEYS = {"PolicyDocument": "", "AssumeRolePolicyDocument": "trust policy", "KeyPolicy": "key policy"}
ANYWHERE = ("0.0.0.0/0", "::/0")
IDENTITIES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")
POLICIES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
# Lambda::Permission's properties as the conditions of its statement (Lambda Developer Guide,
# "Viewing resource-based IAM policies in Lambda": SourceArn becomes ArnLike AWS:SourceArn,
# SourceAccount StringEquals AWS:SourceAccount).
PERMISSION_CONDITIONS = {"SourceArn": ("ArnLike", "AWS:SourceArn"),
                         "SourceAccount": ("StringEquals", "AWS:SourceAccount"),
                         "PrincipalOrgID": ("StringEquals", "aws:PrincipalOrgID"),
                         "FunctionUrlAuthType": ("StringEquals", "lambda:FunctionUrlAuthType"),
                         "EventSourceToken": ("StringEquals", "EventSourceToken")}


@dataclass(frozen=True)
class _Statement:
    where: str  # resource and document, as shown
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principal: str
    condition: str
    document: str = ""  # the policy it is compared within (where, unless several resources make one)
    meaning: Meaning | None = field(default=None, compare=False)
    # the whole statement, as its identity: principal and condition above are cut for display, so
    # two statements that differ past the cut must still differ
    whole: str = ""

    def row(self, sign: str, widening: str = "") -> IamChange:
        return IamChange(sign, self.where, self.effect, ", ".join(self.actions),
                         ", ".join(self.resources), self.principal, self.condition, widening)


def _strings(value: Any, prefix: str = "") -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(prefix + (i if isinstance(i, str) else compact(i, 80)) for i in items)


def _label(where: str, key: str) -> str:
    return " ".join(filter(None, [where, POLICY_KEYS.get(key, key)]))


def documents(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, policy document) of every policy document anywhere under ``node``."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            doc = as_document(value)
            found += [(_label(where, key), doc)] if doc else documents(value, where)
    elif isinstance(node, list):
        for item in node:
            name = item.get("PolicyName") if isinstance(item, dict) else None
            found += documents(item, f"{where} {name}" if isinstance(name, str) else where)
    return found


def _statement(st: dict[str, Any], where: str, document: str) -> _Statement:
    actions = _strings(st["Action"]) if "Action" in st else _strings(st.get("NotAction", []), "not ")
    resources = (_strings(st["Resource"]) if "Resource" in st
                 else _strings(st.get("NotResource", []), "not "))
    principal = st.get("Principal", st.get("NotPrincipal"))
    shown_principal = compact(principal, 120) if principal is not None else ""
    return _Statement(where, str(st.get("Effect", "")), actions, resources,
                      ("not " if "NotPrincipal" in st else "") + shown_principal,
                      compact(st["Condition"], 120) if "Condition" in st else "", document or where,
                      Meaning.of(st), canonical(st))


def _permission(props: dict[str, Any]) -> dict[str, Any]:
    """An AWS::Lambda::Permission as the statement it adds to its function's policy."""
    principal = props.get("Principal")
    text = canonical(principal)
    kind = "Service" if text.endswith(".amazonaws.com") else "AWS"
    condition: dict[str, dict[str, Any]] = {}
    for key, (op, name) in PERMISSION_CONDITIONS.items():
        if key in props:
            condition.setdefault(op, {})[name] = props[key]
    st = {"Effect": "Allow", "Action": props.get("Action"), "Resource": props.get("FunctionName"),
          "Principal": "*" if text == "*" else {kind: principal}}
    return {**st, "Condition": condition} if condition else st


def statements(t: Template) -> set[_Statement]:
    out = set()
    for rid in t.resources:
        props = t.props(rid)
        if t.type(rid) == "AWS::Lambda::Permission":
            function = shown(canonical(props.get("FunctionName")))
            out.add(_statement(_permission(props), f"{rid} (permission)", f"{function} function policy"))
            continue
        for where, doc in documents(props, rid):
            out |= {_statement(st, where, where) for st in statements_of(doc)}
    return out


def _allow_row(s: _Statement, before: set[_Statement]) -> IamChange:
    old = [b.meaning for b in before if b.document == s.document and b.effect == "Allow" and b.meaning]
    return s.row("+", allow_widening(s.meaning, old) if s.meaning and s.effect == "Allow" else "")


def _deny_row(s: _Statement, after: set[_Statement]) -> IamChange:
    kept = [a.meaning for a in after if a.document == s.document and a.effect == "Deny" and a.meaning]
    return s.row("-", deny_widening(s.meaning, kept) if s.meaning and s.effect == "Deny" else "")


# --- attachments and boundaries ----------------------------------------------------------------


def _managed(arn: str) -> str:
    aws = re.search(r":iam::aws:policy/(.+)$", arn)
    return f"AWS managed policy {aws[1]} attached" if aws else f"managed policy {shown(arn)} attached"


def _listed(props: dict[str, Any], key: str) -> set[str]:
    value = props.get(key) or []
    return {canonical(v) for v in (value if isinstance(value, list) else [value])}


def _attachments(rid: str, type_: str, old: dict[str, Any], new: dict[str, Any]) -> list[IamChange]:
    """Managed policies attached to an identity, or identities a policy is attached to."""
    keys = ("ManagedPolicyArns",) if type_ in IDENTITIES else ("Roles", "Users", "Groups")
    rows = []
    for key in keys:
        before, after = _listed(old, key), _listed(new, key)
        for sign, items in (("-", before - after), ("+", after - before)):
            for item in sorted(items):
                widening = "" if sign == "-" else (
                    _managed(item) if key == "ManagedPolicyArns" else f"attached to {shown(item)}")
                label = "managed policies" if key == "ManagedPolicyArns" else key.lower()
                rows.append(IamChange(sign, f"{rid} {label}", "Allow", "what the policy allows",
                                      shown(item), "", "", widening))
    return rows


def _boundary(rid: str, old: dict[str, Any], new: dict[str, Any]) -> list[IamChange]:
    """A permissions boundary removed or changed widens (what it capped is no longer capped);
    one added narrows."""
    a, b = old.get("PermissionsBoundary"), new.get("PermissionsBoundary")
    if a is None or canonical(a) == canonical(b):
        return []
    where, was = f"{rid} permissions boundary", shown(canonical(a))
    if b is None:
        return [IamChange("-", where, "Allow", "", was, "", "", "permissions boundary removed")]
    return [IamChange("-", where, "Allow", "", was, "", ""),
            IamChange("+", where, "Allow", "", shown(canonical(b)), "", "",
                      f"permissions boundary changed (was {was})")]


def attachment_changes(old: Template, new: Template) -> list[IamChange]:
    rows = []
    for rid in sorted(set(old.resources) & set(new.resources)):
        type_ = new.type(rid)
        if type_ != old.type(rid) or type_ not in IDENTITIES + POLICIES:
            continue
        rows += _attachments(rid, type_, old.props(rid), new.props(rid))
        rows += _boundary(rid, old.props(rid), new.props(rid)) if type_ in IDENTITIES else []
    return rows


def iam_changes(old: Template, new: Template) -> list[IamChange]:
    before, after = statements(old), statements(new)
    rows = [_deny_row(s, after) for s in sorted(before - after, key=str)]
    rows += [_allow_row(s, before) for s in sorted(after - before, key=str)]
    rows += attachment_changes(old, new)
    return sorted(rows, key=lambda r: (r.resource, r.sign))


# --- security groups -----------------------------------------------------------------------------


def _rules(t: Template) -> dict[tuple[str, str, str, str], Rule]:
    return {(r.group, r.direction, ports_label([r.ports]), r.peer): r
            for r in [*security_group_rules(t), *default_egress(t)]}


def _rule_within(a: Rule, t: Rule) -> bool:
    """Whether every packet rule ``a`` allows, rule ``t`` allows (same group and direction)."""
    if (a.group, a.direction) != (t.group, t.direction):
        return False
    peer = (cidr_within(a.peer, t.peer) if a.peer_kind == t.peer_kind == "cidr"
            else (a.peer_kind, a.peer) == (t.peer_kind, t.peer))
    ports = t.ports.protocol == "all" or (a.ports.protocol == t.ports.protocol
                                          and t.ports.low <= a.ports.low and a.ports.high <= t.ports.high)
    return peer and ports


def _rule_widening(r: Rule, before: list[Rule]) -> str:
    if any(_rule_within(r, b) for b in before):
        return ""
    if r.source == DEFAULT_EGRESS:
        return "AWS's default allow-all egress (the group declares no egress rule)"
    if r.peer in ANYWHERE:
        return "open to the internet"
    same_peer = any((b.group, b.direction, b.peer) == (r.group, r.direction, r.peer) for b in before)
    return "more ports" if same_peer else "new peer"


def rule_changes(old: Template, new: Template) -> list[RuleChange]:
    before, after = _rules(old), _rules(new)
    rows = [RuleChange("-", *key) for key in sorted(set(before) - set(after))]
    rows += [RuleChange("+", *key, _rule_widening(after[key], list(before.values())))
             for key in sorted(set(after) - set(before))]
    return sorted(rows, key=lambda r: (r.group, r.direction, r.sign))
