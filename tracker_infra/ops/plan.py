"""Plan a deployment of both stacks as CloudFormation change sets, show them, run them on request.

  python render.py plan --env staging                       create and show the change sets
  python render.py plan --env staging --save plan.json      ...and record them for --execute
  python render.py plan --env staging --execute plan.json   plan again from this checkout, and run
                                                            the new change sets only if they make
                                                            the same changes as the recorded ones
  python render.py plan --env dev --execute                 plan, show, then run (disposable envs;
                                                            a protected one asks on a terminal, or
                                                            takes --yes)
  python render.py plan --env staging --discard plan.json   delete a saved plan's change sets

A plan that is neither saved nor executed deletes what it made: its change sets, and a stack that
did not exist before (CloudFormation makes it to hold the change set, in REVIEW_IN_PROGRESS).

Each stack's change set is made by the SAM CLI (`sam deploy --no-execute-changeset` with the
stack's config-env), which packages the functions' code and sends UsePreviousValue for the
parameters it is not given, exactly as a deploy does. The report is CloudFormation's own
verdict: actions, `Replacement: True | Conditional`, the deletion policy it applies, drift where
the change set reports it; stateful resources first, then IAM and security-group changes.

Artifacts: a plan that runs its own change sets (`plan --execute`, `deploy`) packages under the
stacks' own prefixes (samconfig.toml's s3_prefix), which only the deploy role and people write and
the execution role reads. A plan only shown or saved (`plan`, `plan --save`: the unapproved plan
job) packages under plan/<stack> (samconfig.plan_prefix), which is all its role may write, and its
change sets name the keys the same content has under the stack's prefix (the SAM CLI keys an
artifact by its content's checksum, and the SAM transform names a function's versions after its
code's location), so that they make what a run's re-plan of the same checkout makes. They are never
executed: `plan --execute FILE` plans again as itself and runs its own change sets only if they make
the same changes, so what the unapproved job uploaded, or could overwrite later, is never deployed.

Deletion protection (protected environments, whose regional template has the parameter
DeletionProtection): a first create passes DeletionProtection=false, so a failed create can roll
back; every later plan passes DeletionProtection=true. Leaving it out would not do: the SAM CLI
sends UsePreviousValue for a parameter it is not given, so the first create's "false" would
stay. Protection is therefore on from the second deploy.

Regional stack first, then the edge stack; a failed regional change stops before the edge.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cfn_yaml import load_template
from ..errors import EXIT_AWS, EXIT_OK, EXIT_USER, AwsFailure, Refusal, UserError, UserErrors
from ..rendering import ROOT, Stack, stacks
from ..review.report import STATEFUL_TYPES
from ..samconfig import config_env, plan_prefix
from .aws import Aws, add_env_arguments, add_rendered_argument, connect, load_config

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "",
    EXIT_USER: "also a refused or unconfirmed plan, and a saved plan whose re-plan makes other "
               "changes (one line per difference)",
    EXIT_AWS: "",
}

SAMCONFIG = ROOT / "samconfig.toml"
CHANGE_SET_ARN = re.compile(r"arn:aws[\w-]*:cloudformation:[\w-]+:\d{12}:changeSet/[\w-]+/[\w-]+")
NO_CHANGES = "No changes to deploy"
NOT_CONFIRMED = "not confirmed; nothing was executed (the change sets were deleted)"
# Resource types whose changes grant or take away access: shown in their own table.
IAM_TYPES = ("AWS::IAM::", "AWS::KMS::Key", "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy",
             "AWS::Lambda::Permission", "AWS::SecretsManager::ResourcePolicy")
SECURITY_GROUP_TYPES = ("AWS::EC2::SecurityGroup",)  # and its -Ingress/-Egress rules


@dataclass
class Detail:
    """One property change CloudFormation reports for a resource."""

    path: str
    recreation: str  # Never | Conditionally | Always
    cause: str  # DirectModification, a parameter, a resource attribute, ...
    before: str = ""
    after: str = ""
    drift: str = ""  # the live value when the resource drifted from the template


@dataclass
class ResourceChange:
    logical_id: str
    type: str
    action: str  # Add | Modify | Remove | Import | Dynamic
    replacement: str = ""  # True | False | Conditional (Modify only)
    policy: str = ""  # Delete | Retain | Snapshot | ReplaceAndDelete | ...
    drift: str = ""  # the resource's drift status, when the change set reports it
    details: list[Detail] = field(default_factory=list)

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL_TYPES

    @property
    def dangerous(self) -> bool:
        """A stateful resource removed or possibly replaced."""
        return self.stateful and (self.action == "Remove" or self.replacement in ("True", "Conditional"))

    @property
    def grants_access(self) -> bool:
        """An IAM, resource-policy or security-group resource (what `deploy` judges before it runs)."""
        return self.type.startswith(IAM_TYPES + SECURITY_GROUP_TYPES)


@dataclass
class StackPlan:
    stack: str
    region: str
    change_set: str | None  # ARN; None when there is nothing to change
    status: str = ""  # of the stack before the change: a status, or "new"
    changes: list[ResourceChange] = field(default_factory=list)
    drifted: bool = False  # the stack's last drift detection found drift


# --- change sets: made by the SAM CLI, read back from CloudFormation ---------------------------

def sam_command() -> list[str]:
    local = Path(sys.executable).parent / "sam"
    return [os.environ.get("SAM") or (str(local) if local.exists() else "sam")]


def protection_overrides(template: dict[str, Any], exists: bool) -> list[str]:
    """DeletionProtection=false for a first create, =true for every later change; nothing for a
    template without the parameter (a disposable environment)."""
    if "DeletionProtection" not in template.get("Parameters", {}):
        return []
    return [f"DeletionProtection={'true' if exists else 'false'}"]


def _sam(config_env: str, template_file: Path, step: str, arguments: list[str]) -> str:
    """Run one SAM CLI command; its output, or an AwsFailure naming the step and its last line."""
    from . import timing

    started = time.perf_counter()
    done = subprocess.run([*sam_command(), *arguments], cwd=ROOT, capture_output=True,  # noqa: S603
                          text=True, stdin=subprocess.DEVNULL, check=False)
    timing.sam_ran(time.perf_counter() - started)
    if done.returncode == 0:
        return done.stdout
    tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
    from .sam_failures import explain

    raise AwsFailure(explain(SAMCONFIG, config_env, tail[0]) or f"{config_env}: {step} of {template_file} "
                     f"failed (exit {done.returncode}): {tail[0]}")


def _change_set(config_env: str, template_file: Path, overrides: list[str],
                prefix: str | None = None) -> str | None:
    """The change set `sam deploy --no-execute-changeset` makes (None: nothing to change);
    ``prefix`` in place of samconfig.toml's s3_prefix for what it uploads."""
    command = ["deploy", "--config-env", config_env, "--config-file", str(SAMCONFIG),
               "--template-file", str(template_file.resolve()), "--no-execute-changeset"]
    if prefix:
        command += ["--s3-prefix", prefix]
    if overrides:
        command += ["--parameter-overrides", *overrides]
    out = _sam(config_env, template_file, "sam deploy --no-execute-changeset", command)
    found = CHANGE_SET_ARN.search(out)
    if found:
        return found.group()
    if NO_CHANGES in out:
        return None
    raise AwsFailure(f"{config_env}: sam deploy --no-execute-changeset of {template_file} named no "
                     f"change set and did not say {NO_CHANGES!r}")


def stack_keys(node: Any, bucket: str, stack: str) -> Any:
    """A packaged template's artifact locations under plan/<stack> (an S3Key, an s3:// URI of
    ``bucket``) moved to the stack's own prefix, where the same content has the same key."""
    if isinstance(node, dict):
        return {k: stack_keys(v, bucket, stack) for k, v in node.items()}
    if isinstance(node, list):
        return [stack_keys(v, bucket, stack) for v in node]
    if isinstance(node, str):
        at = re.match(rf"(s3://{re.escape(bucket)}/)?{re.escape(plan_prefix(stack))}/", node)
        return f"{at.group(1) or ''}{stack}/{node[at.end():]}" if at else node
    return node


def _packaged_for_review(cfg: Any, stack: Stack, template_file: Path, folder: Path) -> Path:
    """The template as `sam package` makes it with its artifacts uploaded under plan/<stack>,
    naming the keys they have under the stack's own prefix (stack_keys); refused when a location
    of another form still names plan/<stack> (the plan could not make what a run makes)."""
    packaged = folder / f"{stack.key}.packaged.yaml"
    name = config_env(cfg, stack.key)
    _sam(name, template_file, "sam package", [
        "package", "--template-file", str(template_file.resolve()), "--s3-bucket", cfg.artifact_bucket,
        "--s3-prefix", plan_prefix(stack.name), "--region", stack.region,
        "--output-template-file", str(packaged)])
    moved = json.dumps(stack_keys(load_template(packaged.read_text()), cfg.artifact_bucket, stack.name))
    if plan_prefix(stack.name) + "/" in moved:
        raise AwsFailure(f"{name}: sam package of {template_file} names {plan_prefix(stack.name)}/ "
                         "elsewhere than an S3Key or an s3:// URI, which the plan cannot move to the "
                         "stack's own prefix; nothing was planned (plan with the deploy role: "
                         "`render.py plan --execute`)")
    review = folder / f"{stack.key}.json"
    review.write_text(moved)
    return review


def _details(change: dict[str, Any]) -> list[Detail]:
    found = []
    for detail in change.get("Details", []):
        target = detail.get("Target", {})
        path = target.get("Path") or ".".join(x for x in (target.get("Attribute"), target.get("Name")) if x)
        drift = target.get("Drift", {})
        found.append(Detail(path, target.get("RequiresRecreation", ""),
                            detail.get("CausingEntity") or detail.get("ChangeSource", ""),
                            str(target.get("BeforeValue", "")), str(target.get("AfterValue", "")),
                            str(drift.get("ActualValue", "")) if drift else ""))
    return found


def describe_changes(client: Any, arn: str) -> list[ResourceChange]:
    """Every resource change of a change set (all pages)."""
    changes, token = [], None
    while True:
        page = client.describe_change_set(ChangeSetName=arn, IncludePropertyValues=True,
                                          **({"NextToken": token} if token else {}))
        for change in page.get("Changes", []):
            c = change.get("ResourceChange", {})
            changes.append(ResourceChange(
                c["LogicalResourceId"], c["ResourceType"], c["Action"], c.get("Replacement", ""),
                c.get("PolicyAction", ""), c.get("ResourceDriftStatus", ""), _details(c)))
        token = page.get("NextToken")
        if not token:
            return changes


def _stack_change_set(aws: Aws, stack: Stack, template_file: Path, exists: bool,
                      review: str | None) -> str | None:
    """The stack's change set: packaged under its own prefix, or with ``review`` (a folder for
    the packaged template) under plan/<stack> for a plan only shown or saved."""
    overrides = protection_overrides(load_template(template_file.read_text()), exists)
    name = config_env(aws.cfg, stack.key)
    if review is None:
        return _change_set(name, template_file, overrides)
    packaged = _packaged_for_review(aws.cfg, stack, template_file, Path(review))
    return _change_set(name, packaged, overrides, plan_prefix(stack.name))


def make_plan(aws: Aws, rendered: Path, review: bool = False) -> list[StackPlan]:
    """Each stack's change set, read back. ``review``: a plan only shown or saved, whose artifacts
    go under plan/<stack> (the module's docstring)."""
    plans = []
    with tempfile.TemporaryDirectory(prefix="tracker-plan-") as folder:
        for stack in stacks(aws.cfg):
            template_file = rendered / aws.cfg.environment / stack.output
            if not template_file.is_file():
                raise UserError(str(template_file), "", "is missing (allowed: a rendered template; run "
                                f"`python render.py --env {aws.cfg.environment}`)")
            existing = aws.describe_stack(stack.name, stack.region)
            status = existing["StackStatus"] if existing else "new"
            if status == "ROLLBACK_COMPLETE":
                raise UserError(f"stack {stack.name}", "StackStatus", "is ROLLBACK_COMPLETE, a failed "
                                "first create (allowed: a stack that can be updated; delete it, then plan "
                                "again)")
            exists = status not in ("new", "REVIEW_IN_PROGRESS")
            arn = _stack_change_set(aws, stack, template_file, exists, folder if review else None)
            changes = describe_changes(aws.client("cloudformation", stack.region), arn) if arn else []
            drifted = (existing or {}).get("DriftInformation", {}).get("StackDriftStatus") == "DRIFTED"
            plans.append(StackPlan(stack.name, stack.region, arn, status, changes, drifted))
    return plans


# --- the report ----------------------------------------------------------------------------------

def _verdict(c: ResourceChange) -> str:
    parts = [c.action]
    if c.replacement and c.replacement != "False":
        parts.append(f"Replacement: {c.replacement}")
    if c.policy:
        parts.append(f"policy: {c.policy}")
    if c.drift and c.drift not in ("IN_SYNC", "NOT_CHECKED"):
        parts.append(f"drift: {c.drift}")
    return ", ".join(parts)


def _detail_text(d: Detail) -> str:
    text = d.path or "(resource)"
    if d.before or d.after:
        text += f": {d.before!r} -> {d.after!r}"
    if d.drift:
        text += f" (live value {d.drift!r})"
    extras = [x for x in (f"recreation {d.recreation}" if d.recreation and d.recreation != "Never" else "",
                          f"because of {d.cause}" if d.cause else "") if x]
    return text + (f" [{'; '.join(extras)}]" if extras else "")


MARK = {"Add": "+", "Modify": "~", "Remove": "-", "Import": ">", "Dynamic": "?"}


def _headline(p: StackPlan, markdown: bool) -> list[str]:
    counts = {a: sum(c.action == a for c in p.changes) for a in ("Add", "Modify", "Remove")}
    dangers = [c for c in p.changes if c.dangerous]
    head = (f"{p.stack} ({p.region}, {p.status}): " +
            (f"{counts['Add']} to add, {counts['Modify']} to modify, {counts['Remove']} to remove"
             if p.changes else "no changes"))
    if dangers:
        head += f"; !! {len(dangers)} stateful resource(s) removed or replaced"
    if p.drifted:
        head += "; the stack had drifted at its last detection (see `render.py drift`)"
    lines = [f"## {head}" if markdown else head]
    if p.change_set:
        lines.append(f"change set: `{p.change_set}`" if markdown else f"  change set {p.change_set}")
    return lines


def _change_lines(title: str, changes: list[ResourceChange], markdown: bool) -> list[str]:
    """A group of changes (stateful or other), the dangerous ones first, each with its details."""
    if not changes:
        return []
    lines = [f"\n### {title}\n" if markdown else f"  {title}:"]
    for c in sorted(changes, key=lambda c: (not c.dangerous, c.logical_id)):
        warn = "!! " if c.dangerous else ""
        entry = f"{warn}{MARK.get(c.action, c.action)} {c.logical_id} {c.type}: {_verdict(c)}"
        lines.append(f"- {entry}" if markdown else f"    {entry}")
        lines += [f"  - {_detail_text(d)}" if markdown else f"        {_detail_text(d)}" for d in c.details]
    return lines


def _access_table(title: str, rows: list[ResourceChange], markdown: bool) -> list[str]:
    """The changes to IAM and resource policies, or to security groups, as a table."""
    if not rows:
        return []

    def properties(c: ResourceChange, separator: str = ", ") -> str:
        return separator.join(d.path or "(resource)" for d in c.details) or "-"

    if markdown:
        return [f"\n### {title}\n", "| resource | type | change | properties |", "|---|---|---|---|",
                *[f"| {c.logical_id} | {c.type} | {_verdict(c)} | {properties(c, '; ')} |"
                  for c in rows]]
    return [f"  {title}:", f"    {'resource':<32} {'change':<7} properties",
            *[f"    {c.logical_id:<32} {c.action:<7} {properties(c)}" for c in rows]]


def format_plan(env: str, plans: list[StackPlan], markdown: bool = False) -> str:
    """The plan as text or markdown: a headline per stack, then its changes grouped (stateful,
    other), then the IAM and security-group changes as tables. Kept apart from the AWS calls so
    the shared review formatter can take its place."""
    lines = [f"# plan: {env}" if markdown else f"plan: {env}", ""]
    for p in plans:
        lines += _headline(p, markdown)
        lines += _change_lines("stateful", [c for c in p.changes if c.stateful], markdown)
        lines += _change_lines("other", [c for c in p.changes if not c.stateful], markdown)
        for title, prefixes in (("IAM and resource-policy changes", IAM_TYPES),
                                ("security-group changes", SECURITY_GROUP_TYPES)):
            lines += _access_table(title, [c for c in p.changes if c.type.startswith(prefixes)], markdown)
        lines.append("")
    return "\n".join(lines)


def show_plan(env: str, plans: list[StackPlan], markdown: bool) -> None:
    from ..terminal import paint

    text = format_plan(env, plans, markdown=markdown)
    print(text if markdown else paint(text), flush=True)


# --- executing the reviewed change sets ----------------------------------------------------------

def save_plan(path: Path, aws: Aws, plans: list[StackPlan], now: datetime.datetime | None = None) -> None:
    """The change sets and when they were made.

    What the reviewer saw is not copied: a change set cannot be changed, so describing its ARN
    again at --execute gives the approved changes to compare the re-plan with."""
    made = (now or datetime.datetime.now(datetime.UTC)).isoformat()
    record = {"environment": aws.cfg.environment, "account": aws.account, "created": made,
              "change_sets": [{"stack": p.stack, "region": p.region, "arn": p.change_set} for p in plans]}
    path.write_text(json.dumps(record) + "\n")
    env = aws.cfg.environment
    print(f"saved the plan in {path}; run it with: python render.py plan --env {env} --execute {path}\n"
          f"  or discard it (its change sets and any empty stack they wait in) with: "
          f"python render.py plan --env {env} --discard {path}")


def load_plan(path: Path, aws: Aws) -> list[StackPlan]:
    """The saved plan's change sets, checked to belong to this environment's stacks."""
    try:
        record = json.loads(path.read_text())
        entries = [(e["stack"], e["region"], e["arn"]) for e in record["change_sets"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(str(path), "", f"is not a saved plan ({exc}) (allowed: a file written by "
                        "`render.py plan --save`)") from None
    expected = [(s.name, s.region) for s in stacks(aws.cfg)]
    if record.get("environment") != aws.cfg.environment or record.get("account") != aws.account:
        raise UserError(str(path), "environment", f"is a plan for {record.get('environment')} in "
                        f"account {record.get('account')} (allowed: {aws.cfg.environment} in "
                        f"{aws.account})")
    if [(s, r) for s, r, _ in entries] != expected:
        raise UserError(str(path), "change_sets", f"names the stacks {[s for s, _, _ in entries]} "
                        f"(allowed: {[s for s, _ in expected]}, in that order)")
    return [StackPlan(s, r, arn) for s, r, arn in entries]


def _check_available(client: Any, p: StackPlan) -> None:
    """The change set belongs to its stack and can run (not obsolete, running or run)."""
    try:
        described = client.describe_change_set(ChangeSetName=p.change_set)
    except client.exceptions.ClientError as exc:
        if not _gone(exc):
            raise
        raise UserError(str(p.change_set), "ExecutionStatus", "does not exist: it was run or deleted "
                        f"(allowed: AVAILABLE for {p.stack}; plan again)") from None
    if described["StackName"] != p.stack or described.get("ExecutionStatus") != "AVAILABLE":
        raise UserError(str(p.change_set), "ExecutionStatus", f"is {described.get('ExecutionStatus')} "
                        f"for stack {described['StackName']} (allowed: AVAILABLE for {p.stack}; "
                        "plan again)")


def execute(aws: Aws, plans: list[StackPlan]) -> int:
    """Run each change set, regional first; stop at the first stack that does not complete."""
    for p in plans:
        client = aws.client("cloudformation", p.region)
        if p.change_set is None:
            print(f"{p.stack}: no changes")
            continue
        _check_available(client, p)
        before = aws.describe_stack(p.stack, p.region)
        since = (before or {}).get("LastUpdatedTime") or (before or {}).get("CreationTime")
        print(f"{p.stack}: executing {p.change_set} (a first create takes 20 to 40 minutes; "
              "the stack's events follow)", flush=True)
        events = aws.events(before["StackId"] if before else p.stack, p.region)
        client.execute_change_set(ChangeSetName=p.change_set)
        stack = aws.wait_for_stack(p.stack, p.region, events)
        status = stack["StackStatus"] if stack else "DELETED"
        print(f"{p.stack}: {status}")
        if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"):
            cause = events.first_failure()
            if cause:
                print(f"error: first failure: {cause}", file=sys.stderr)
            for line in list(aws.failures(p.stack, p.region, since))[:10]:
                print(f"  failed: {line}", file=sys.stderr)
            print(f"error: {p.stack} ended {status}; nothing after it was run", file=sys.stderr)
            return EXIT_AWS
    return 0


def need_confirmation_means(args: argparse.Namespace, cfg: Any) -> None:
    """Before anything is packaged or called: a protected environment's immediate execute needs
    --yes or a terminal to confirm at (the cause is the missing terminal, not the lifecycle)."""
    if cfg.protected and not getattr(args, "yes", False) and not sys.stdin.isatty():
        raise UserError("--yes", "", f"not given, and there is no terminal to confirm at (stdin is "
                        f"not one); {cfg.environment} is protected, so executing without a saved "
                        "plan needs one of them; nothing was planned (allowed: `plan --save FILE`, "
                        "review, then `plan --execute FILE`; or `deploy --yes`)")


def _confirmed(args: argparse.Namespace, cfg: Any) -> bool:
    """Whether the change sets may run: a disposable environment, --yes, or a person's yes."""
    if not cfg.protected or getattr(args, "yes", False):
        return True
    return input(f"Execute these change sets in {cfg.environment}? [y/N] ").strip().lower() == "y"


def _gone(exc: Exception) -> bool:
    """Whether CloudFormation answered that the change set does not exist (ChangeSetNotFound; moto
    answers a ValidationError saying so)."""
    return "does not exist" in str(exc) or "not found" in str(exc).lower()


def _delete_change_set(client: Any, arn: str) -> None:
    """Delete a change set; one already gone is fine."""
    try:
        client.delete_change_set(ChangeSetName=arn)
    except client.exceptions.ClientError as exc:
        if not _gone(exc):
            raise


def _delete_change_sets(aws: Aws, plans: list[StackPlan]) -> None:
    """Delete the plans' change sets only (the stacks they wait in stay)."""
    for p in plans:
        if p.change_set:
            _delete_change_set(aws.client("cloudformation", p.region), p.change_set)


def discard(aws: Aws, plans: list[StackPlan], quiet: bool = False) -> None:
    """Delete the plan's change sets, and each stack that only exists to hold them (a stack a plan
    creates stays in REVIEW_IN_PROGRESS until a change set runs; one that was already waiting so
    when this plan was made holds another plan's change sets and is left)."""
    for p in plans:
        client = aws.client("cloudformation", p.region)
        if p.change_set:
            _delete_change_set(client, p.change_set)
        stack = aws.describe_stack(p.stack, p.region) if p.status in ("new", "") else None
        if stack is not None and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
            client.delete_stack(StackName=p.stack)
            if not quiet:
                print(f"{p.stack}: deleted the empty stack the plan made (REVIEW_IN_PROGRESS)")
        if p.change_set and not quiet:
            print(f"{p.stack}: deleted change set {p.change_set}")


# --- a saved plan: planned again as this job, the new change sets run only if they match -----------

# A nested stack's TemplateURL is a new Serverless Application Repository URL in every plan.
S3_URL = re.compile(r"https://(?:[\w.-]+\.)?s3[\w.-]*\.amazonaws\.com(?:\.cn)?/[^\s\"']*")


def _meaning(c: ResourceChange) -> tuple[str, Counter[str]]:
    """What a resource change does, as the report says it (type, action, replacement, deletion
    policy, drift; each property change with its values, recreation and cause), S3 URLs masked.
    Change set ARNs, names and creation times are not part of it."""
    return (f"{c.type}: {_verdict(c)}",
            Counter(S3_URL.sub("<S3 URL>", _detail_text(d)) for d in c.details))


def _resource_differences(old: ResourceChange | None, new: ResourceChange | None) -> list[str]:
    if new is None:
        return [f"{old.type}: {_verdict(old)} was approved; the new plan does not change it"] if old else []
    if old is None:
        return [f"{new.type}: {_verdict(new)} is not in the approved plan"]
    (was, was_details), (now, now_details) = _meaning(old), _meaning(new)
    found = [f"approved as {was}; the new plan: {now}"] if was != now else []
    found += [f"approved {d}; not in the new plan" for d in sorted((was_details - now_details).elements())]
    found += [f"not approved: {d}" for d in sorted((now_details - was_details).elements())]
    return found


def plan_differences(approved: list[StackPlan], fresh: list[StackPlan]) -> list[tuple[str, str]]:
    """(stack, what differs) for each resource change that is not the same in both plans."""
    found = []
    for old, new in zip(approved, fresh, strict=True):
        before = {c.logical_id: c for c in old.changes}
        after = {c.logical_id: c for c in new.changes}
        for logical_id in sorted(before.keys() | after.keys()):
            found += [(old.stack, f"{logical_id} {line}")
                      for line in _resource_differences(before.get(logical_id), after.get(logical_id))]
    return found


# Why a saved plan's own change sets never run (the module's docstring, docs/design.md).
REPLAN_WHY = ("the change sets run are this job's own, their artifacts packaged by it under the stacks' "
              "own prefixes, which the job that saved the plan cannot write")


def replan_and_execute(aws: Aws, path: Path, approved: list[StackPlan], rendered: Path) -> int:
    """Plan again from this checkout; run the new change sets (deleting the approved ones) when they
    make the same changes as the approved ones, else delete them and refuse, naming each difference.

    An approved change set that is no longer AVAILABLE is refused before anything is planned, as
    execute refuses it: OBSOLETE means the stack was updated after the plan ("because the stack
    was already updated", CloudFormation API Reference, ChangeSetSummary), so the approved changes
    were judged against a stack that is gone, and the same list of changes made against another
    stack is not what the reviewer approved."""
    for p in approved:
        if p.change_set:
            client = aws.client("cloudformation", p.region)
            _check_available(client, p)
            p.changes = describe_changes(client, p.change_set)
    print(f"{path}: planning again from {rendered} to compare with the approved plan: {REPLAN_WHY}",
          flush=True)
    fresh = make_plan(aws, rendered)
    differences = plan_differences(approved, fresh)
    if differences:
        _delete_change_sets(aws, fresh)
        raise UserErrors([*(UserError(str(path), stack, problem) for stack, problem in differences),
                          Refusal(_approve_again(aws, path, len(differences)))])
    _delete_change_sets(aws, approved)
    print("the new change sets make the same changes as the approved ones, which were deleted; "
          "executing the new ones", flush=True)
    return execute(aws, fresh)


def _approve_again(aws: Aws, path: Path, count: int) -> str:
    env = aws.cfg.environment
    return (f"{path}: the new plan differs from the approved one ({count} difference(s) above), so the "
            "plan must be approved again: nothing was executed and the new change sets were deleted "
            f"(allowed: a new plan, reviewed and approved: python render.py plan --env {env} --save "
            f"FILE, then --execute FILE; the approved change sets are left for --discard {path})")


def execute_saved(aws: Aws, path: Path, rendered: Path) -> int:
    """Run a saved plan: the re-plan from ``rendered``, when it makes the same changes."""
    return replan_and_execute(aws, path, load_plan(path, aws), rendered)


def plan_and_execute(args: argparse.Namespace, cfg: Any) -> int:
    """Plan, show, confirm where needed, execute; a plan not executed leaves nothing behind."""
    aws = connect(cfg)
    plans = make_plan(aws, args.rendered)
    show_plan(cfg.environment, plans, getattr(args, "format", "text") == "markdown")
    if not _confirmed(args, cfg):
        discard(aws, plans, quiet=True)
        raise Refusal(NOT_CONFIRMED)
    return execute(aws, plans)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("--format", choices=("text", "markdown"), default="text",
                        help="report format (markdown: for a CI job summary)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--save", type=Path, metavar="FILE",
                       help="record the change sets (JSON) for a later --execute FILE; without it "
                            "a plan deletes its change sets once shown")
    which.add_argument("--execute", nargs="?", const="", default=None, metavar="FILE",
                       help="run the change sets: with FILE, those this run plans again from "
                            "--rendered, only if they make the same changes as the ones saved in "
                            "FILE; without, the ones this run plans")
    which.add_argument("--discard", type=Path, metavar="FILE",
                       help="delete the change sets saved in FILE (and the empty stacks they wait in)")
    parser.add_argument("--yes", action="store_true",
                        help="with --execute and no FILE: no question in a protected environment (CI)")
    add_rendered_argument(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if args.execute == "":
        need_confirmation_means(args, cfg)
        return plan_and_execute(args, cfg)
    aws = connect(cfg)
    if args.execute:  # a saved plan: a re-plan, run if it makes the same changes
        return execute_saved(aws, Path(args.execute), args.rendered)
    if args.discard:
        discard(aws, load_plan(args.discard, aws))
        return EXIT_OK
    plans = make_plan(aws, args.rendered, review=True)
    show_plan(cfg.environment, plans, args.format == "markdown")
    if args.save:
        save_plan(args.save, aws, plans)
    else:
        discard(aws, plans, quiet=True)
        print("the change sets were deleted (nothing saved); keep them with --save FILE")
    return EXIT_OK
