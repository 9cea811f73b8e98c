"""Drift detection on both stacks: start it, wait for it, print each drifted resource with the
property paths that differ (expected -> actual).

  python render.py drift --env staging

CloudFormation compares each supported resource's live configuration with the template's; the
result also shows in `status` and in the change sets `plan` makes.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..errors import EXIT_AWS, EXIT_DRIFTED, EXIT_OK, EXIT_USER
from .aws import POLL_SECONDS, Aws, add_env_arguments, connect, load_config

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "no drift",
    EXIT_USER: "",
    EXIT_DRIFTED: "a resource MODIFIED or DELETED",
    EXIT_AWS: "detection failed for a whole stack",
}


def resource_drifts(client: Any, stack: str) -> list[dict[str, Any]]:
    """The stack's MODIFIED and DELETED resources from the last detection (all pages)."""
    found, token = [], None
    while True:
        page = client.describe_stack_resource_drifts(
            StackName=stack, StackResourceDriftStatusFilters=["MODIFIED", "DELETED"],
            **({"NextToken": token} if token else {}))
        found += page["StackResourceDrifts"]
        token = page.get("NextToken")
        if not token:
            return found


def detect(aws: Aws) -> dict[tuple[str, str], dict[str, Any] | None]:
    """Start detection on every deployed stack, then wait for all; (stack, region) -> status."""
    started = {}
    for name, region in aws.stacks():
        if aws.describe_stack(name, region) is not None:
            client = aws.client("cloudformation", region)
            started[(name, region)] = client.detect_stack_drift(StackName=name)["StackDriftDetectionId"]
    results: dict[tuple[str, str], dict[str, Any] | None] = {key: None for key in aws.stacks()}
    while started:
        for (name, region), detection in list(started.items()):
            status = aws.client("cloudformation", region).describe_stack_drift_detection_status(
                StackDriftDetectionId=detection)
            if status["DetectionStatus"] != "DETECTION_IN_PROGRESS":
                results[(name, region)] = status
                del started[(name, region)]
        if started:
            time.sleep(POLL_SECONDS)
    return results


def drift_lines(drift: dict[str, Any]) -> list[str]:
    lines = [f"  {drift['StackResourceDriftStatus']} {drift['LogicalResourceId']} "
             f"({drift['ResourceType']}, {drift.get('PhysicalResourceId', '')})"]
    for d in drift.get("PropertyDifferences", []):
        lines.append(f"    {d['PropertyPath']} {d['DifferenceType']}: expected "
                     f"{d.get('ExpectedValue', '')!r}, actual {d.get('ActualValue', '')!r}")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)


def run(args: argparse.Namespace) -> int:
    aws = connect(load_config(args))
    code = 0
    for (name, region), status in detect(aws).items():
        if status is None:
            print(f"{name} ({region}): not deployed")
            continue
        verdict = status.get("StackDriftStatus", "UNKNOWN")
        reason = f" ({status['DetectionStatusReason']})" if status.get("DetectionStatusReason") else ""
        drifted = status["DriftedStackResourceCount"] if "DriftedStackResourceCount" in status else "?"
        print(f"{name} ({region}): {verdict}, {drifted} drifted resource(s){reason}")
        for drift in resource_drifts(aws.client("cloudformation", region), name):
            print("\n".join(drift_lines(drift)))
            code = max(code, EXIT_DRIFTED)
        if status["DetectionStatus"] == "DETECTION_FAILED" and verdict != "DRIFTED":
            code = max(code, EXIT_AWS)
    return code
