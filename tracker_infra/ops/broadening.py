"""Whether a plan broadens security, judged by the review's rules: what `deploy` asks about.

Each stack's deployed template is compared with the rendered one by the review
(review.diff.diff_templates): IAM statements added or widened (review/security.py), security-group
rules added or widened, and the security widenings of review/widening.py (exposure, transport,
encryption, audit). The deployed template is CloudFormation's GetTemplate with TemplateStage
Original, the template as submitted, before transforms: the form rendered/ has. GetTemplate
returns Processed (after transforms) unless told (CloudFormation API Reference, GetTemplate,
TemplateStage).

Fail closed: it counts as broadening, and the question says why, when a security-bearing
property changed that no rule judges (the review's NOT JUDGED, review/unjudged.py), and for every
IAM, resource-policy or security-group resource the change set touches
(plan.ResourceChange.grants_access) when
  - it is in neither template (a transform made it): what it grants cannot be read;
  - its template is unchanged (a parameter or a resource it references changes it).
A stack the plan creates broadens by definition: everything it grants is new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cfn_yaml import load_template
from ..rendering import stacks
from ..review.diff import diff_templates
from ..review.report import Report, StackChanges, format_security
from .aws import Aws
from .plan import ResourceChange, StackPlan

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


# --- what the rules cannot judge --------------------------------------------------------------

def unjudged(change: ResourceChange, old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why the review cannot judge this change set's change to an IAM, policy or security-group
    resource from the two templates, or "" (a changed property no rule reads is the review's own
    NOT JUDGED, review/unjudged.py)."""
    a, b = old.get(change.logical_id), new.get(change.logical_id)
    if a is None and b is None:
        return "in neither template (a transform makes it): what it grants cannot be read"
    if a == b:
        causes = sorted({d.cause for d in change.details if d.cause}) or ["a parameter or a resource it uses"]
        return f"its template is unchanged; CloudFormation changes it because of {', '.join(causes)}"
    return ""


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
        verdict.unjudged += [f"{p.stack}: {u.logical_id} ({u.type}): {u.path} changed, which no rule judges"
                             for u in compared.unjudged]
    return verdict
