"""Whether a plan broadens security, judged by the review's rules: what `deploy` asks about.

Each stack's deployed template is compared with the rendered one by the review
(review.diff.diff_templates): IAM statements added or widened (review/security.py), security-group
rules added or widened, and the security widenings of review/widening.py (exposure, transport,
encryption, audit). The deployed template is CloudFormation's GetTemplate with TemplateStage
Original, the template as submitted, before transforms: the form rendered/ has. GetTemplate
returns Processed (after transforms) unless told (CloudFormation API Reference, GetTemplate,
TemplateStage).

Fail closed, for every IAM, resource-policy or security-group resource the change set touches
(plan.ResourceChange.grants_access): it counts as broadening, and the question says why, when
  - it is in neither template (a transform made it): what it grants cannot be read;
  - its template is unchanged (a parameter or a resource it references changes it);
  - a property the rules do not read changed: anything but policy documents the review reads
    (``Statement`` of plain Allow/Deny statements), security-group rules it reads (a referenced
    group, a CIDR or a prefix list as peer) and Tags/Description.
A stack the plan creates broadens by definition: everything it grants is new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cfn_yaml import load_template
from ..rendering import stacks
from ..review.diff import diff_templates
from ..review.reachability import NO_MATCH_CIDR, _peer
from ..review.report import Report, StackChanges, format_security
from ..review.security import POLICY_KEYS
from ..review.template import ref_target
from ..review.values import diff_values, format_path, is_intrinsic
from .aws import Aws
from .plan import ResourceChange, StackPlan

SECURITY_GROUP = "AWS::EC2::SecurityGroup"
STANDALONE_RULES = {"AWS::EC2::SecurityGroupIngress": "ingress", "AWS::EC2::SecurityGroupEgress": "egress"}
# Properties that describe, place or keep a resource, and grant nothing.
NEUTRAL = ("Tags", "Description", "GroupDescription", "VpcId", "EnableKeyRotation", "PendingWindowInDays",
           "RotationPeriodInDays")
DOCUMENT_KEYS = {"Version", "Id", "Statement"}
STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
                  "NotPrincipal", "Condition"}
RULE_KEYS = {"IpProtocol", "FromPort", "ToPort", "CidrIp", "CidrIpv6", "SourceSecurityGroupId",
             "DestinationSecurityGroupId", "SourcePrefixListId", "DestinationPrefixListId", "Description"}
READ = object()  # what remains of a node the rules read whole
CREATED = ("new", "REVIEW_IN_PROGRESS")  # a stack's status before a plan that creates it


@dataclass
class Verdict:
    """The review's security comparison of each stack, and what it could not judge."""

    stacks: list[StackChanges] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # stacks this plan creates
    unjudged: list[str] = field(default_factory=list)  # "stack: resource (type): why"

    @property
    def widenings(self) -> list[Any]:
        return Report("", self.stacks).security_widenings

    @property
    def broadens(self) -> bool:
        return bool(self.created or self.unjudged or self.widenings)

    def text(self) -> str:
        """What broadens: the stacks created, what could not be judged, then the review's security
        part (the statements and rules, each widening marked)."""
        lines = ["Security: these change sets broaden access (deploy asks before it widens):"]
        lines += [f"!!   {name}: a first create: everything it grants is new" for name in self.created]
        lines += [f"!!   could not judge, counted as broadening: {item}" for item in self.unjudged]
        from ..terminal import width

        return "\n".join(lines) + "\n" + format_security(Report("", self.stacks), columns=width())


# --- what the rules read, and what they do not -------------------------------------------------

def _readable_document(doc: Any) -> bool:
    """A policy document review/security.py reads whole: plain Allow/Deny statements."""
    if not isinstance(doc, dict) or is_intrinsic(doc) or not set(doc) <= DOCUMENT_KEYS:
        return False
    items = doc.get("Statement")
    items = items if isinstance(items, list) else [items]
    return all(isinstance(st, dict) and set(st) <= STATEMENT_KEYS and st.get("Effect") in ("Allow", "Deny")
               for st in items)


def _unread_policies(node: Any) -> Any:
    """``node`` without the policy documents the rules read (an inline policy that is only its
    name and its document goes whole: its name is part of where its statements are)."""
    if isinstance(node, list):
        return [kept for kept in map(_unread_policies, node) if kept is not READ]
    if not isinstance(node, dict) or is_intrinsic(node):
        return node
    kept = {k: _unread_policies(v) for k, v in node.items()
            if not (k in POLICY_KEYS and _readable_document(v))}
    kept = {k: v for k, v in kept.items() if v is not READ}
    return READ if len(kept) < len(node) and set(kept) <= {"PolicyName"} else kept


def _readable_rule(rule: Any, direction: str) -> bool:
    """A rule review/reachability.py reads: known keys, and a peer it understands."""
    return (isinstance(rule, dict) and set(rule) <= RULE_KEYS
            and (_peer(rule, direction) is not None or rule.get("CidrIp") == NO_MATCH_CIDR))


def _unread_rules(type_: Any, props: dict[str, Any]) -> dict[str, Any]:
    """A security group's or a standalone rule's properties without the rules the rules read."""
    if type_ in STANDALONE_RULES:
        rule = {k: v for k, v in props.items() if k != "GroupId"}
        readable = ref_target(props.get("GroupId")) and _readable_rule(rule, STANDALONE_RULES[type_])
        return {} if readable else props
    if type_ == SECURITY_GROUP:
        for key, direction in (("SecurityGroupIngress", "ingress"), ("SecurityGroupEgress", "egress")):
            rules = props.get(key)
            if isinstance(rules, list):
                props[key] = [r for r in rules if not _readable_rule(r, direction)]
    return props


def _unread(resource: dict[str, Any] | None) -> dict[str, Any]:
    """The resource's properties the review's rules do not judge."""
    props = (resource or {}).get("Properties") or {}
    if not isinstance(props, dict):
        return {"Properties": props}
    type_ = (resource or {}).get("Type")
    kept = {k: v for k, v in props.items() if k not in NEUTRAL or type_ in STANDALONE_RULES}
    found = _unread_policies(_unread_rules(type_, kept))
    if found is READ:  # nothing but policy documents the rules read
        return {}
    return {k: v for k, v in found.items() if v not in ([], {})}  # emptied by what the rules read


def unjudged(change: ResourceChange, old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why the rules cannot judge this change to an IAM or security-group resource, or ""."""
    a, b = old.get(change.logical_id), new.get(change.logical_id)
    if a is None and b is None:
        return "in neither template (a transform makes it): what it grants cannot be read"
    if a == b:
        causes = sorted({d.cause for d in change.details if d.cause}) or ["a parameter or a resource it uses"]
        return f"its template is unchanged; CloudFormation changes it because of {', '.join(causes)}"
    paths = [format_path(p) for p, _, _ in diff_values(_unread(a), _unread(b), ("Properties",))]
    return f"{', '.join(paths)} changed, which the rules do not read" if paths else ""


# --- the verdict -------------------------------------------------------------------------------

def deployed_template(aws: Aws, p: StackPlan) -> dict[str, Any]:
    """The stack's template as submitted (Original); {} for a stack this plan creates. botocore
    hands a JSON template back parsed, a YAML one as text."""
    if p.status in CREATED:
        return {}
    body = aws.client("cloudformation", p.region).get_template(
        StackName=p.stack, TemplateStage="Original")["TemplateBody"]
    doc = body if isinstance(body, dict) else load_template(body)
    return doc if isinstance(doc, dict) else {}


def judge(aws: Aws, plans: list[StackPlan], rendered: Path) -> Verdict:
    """The plan's stacks with a change set, each deployed template compared with its rendered one."""
    files = {s.name: rendered / aws.cfg.environment / s.output for s in stacks(aws.cfg)}
    verdict = Verdict()
    for p in (p for p in plans if p.change_set):
        old, new = deployed_template(aws, p), load_template(files[p.stack].read_text())
        compared = diff_templates(old, new, p.stack, p.region)
        compared.widenings = [w for w in compared.widenings if w.security]
        verdict.stacks.append(compared)
        if p.status in CREATED:
            verdict.created.append(p.stack)
        before, after = old.get("Resources") or {}, new.get("Resources") or {}
        for c in (c for c in p.changes if c.grants_access):
            why = unjudged(c, before, after)
            if why:
                verdict.unjudged.append(f"{p.stack}: {c.logical_id} ({c.type}, {c.action}): {why}")
    return verdict
