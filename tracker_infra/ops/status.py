"""Each stack's status and last change, its drift status (from the last `drift` run), the
deployed API image digest, the alarms now in ALARM and the SNS subscriptions still waiting for
their confirmation e-mail.

  python render.py status --env staging
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import EXIT_OK, EXIT_USER
from .aws import Aws, add_env_arguments, connect, load_config, parameters

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "whatever the status",
    EXIT_USER: "",
}


def stack_lines(aws: Aws, name: str, region: str) -> list[str]:
    stack = aws.describe_stack(name, region)
    if stack is None:
        return [f"{name} ({region}): not deployed"]
    changed = stack.get("LastUpdatedTime") or stack["CreationTime"]
    lines = [f"{name} ({region}): {stack['StackStatus']}, last change {changed:%Y-%m-%d %H:%M:%S %Z}"]
    if stack.get("StackStatusReason"):
        lines.append(f"  reason: {stack['StackStatusReason']}")
    if stack["StackStatus"] == "REVIEW_IN_PROGRESS":
        return [*lines, "  nothing is deployed: the stack only holds a saved plan's change sets. Run "
                f"that plan (render.py plan --env {aws.cfg.environment} --execute FILE) or remove it "
                f"(render.py plan --env {aws.cfg.environment} --discard FILE, or "
                f"aws cloudformation delete-stack --stack-name {name} --region {region})"]
    drift = stack.get("DriftInformation", {})
    checked = drift.get("LastCheckTimestamp")
    lines.append(f"  drift: {drift.get('StackDriftStatus', 'NOT_CHECKED')}"
                 + (f" (checked {checked:%Y-%m-%d %H:%M})" if checked else " (run `render.py drift`)"))
    params = parameters(stack)
    if "ApiImageDigest" in params:
        lines.append(f"  image: {params['ApiImageDigest'] or 'none released yet (ApiImageDigest empty)'}")
    for topic in aws.resources(name, region, "AWS::SNS::Topic"):
        pages = aws.client("sns", region).get_paginator("list_subscriptions_by_topic")
        for page in pages.paginate(TopicArn=topic["PhysicalResourceId"]):
            lines += [f"  pending confirmation: {s['Endpoint']} ({s['Protocol']}) on "
                      f"{topic['LogicalResourceId']}" for s in page["Subscriptions"]
                      if s["SubscriptionArn"] == "PendingConfirmation"]
    return lines


def alarm_lines(aws: Aws) -> list[str]:
    """Alarms in ALARM whose names start with the environment's stack name, in both regions."""
    found: list[dict[str, Any]] = []
    for region in dict.fromkeys(region for _, region in aws.stacks()):
        pages = aws.client("cloudwatch", region).get_paginator("describe_alarms")
        for page in pages.paginate(AlarmNamePrefix=f"{aws.cfg.stack_name}-", StateValue="ALARM"):
            found += page["MetricAlarms"] + page.get("CompositeAlarms", [])
    if not found:
        return ["alarms: none in ALARM"]
    return [f"alarms in ALARM ({len(found)}):"] + [
        f"  {a['AlarmName']} since {a['StateUpdatedTimestamp']:%Y-%m-%d %H:%M}: {a.get('StateReason', '')}"
        for a in found]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)


def run(args: argparse.Namespace) -> int:
    aws = connect(load_config(args))
    lines = [f"{aws.cfg.environment}: account {aws.account}, {aws.cfg.lifecycle}"]
    for name, region in aws.stacks():
        lines += stack_lines(aws, name, region)
    lines += alarm_lines(aws)
    print("\n".join(lines))
    return 0
