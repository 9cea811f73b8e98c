"""The event stream the waiting commands print (tracker_infra/ops/events.py), on CloudFormation's
own event shape (DescribeStackEvents: newest first, paginated), with a nested stack."""

from __future__ import annotations

import datetime
import io
from typing import Any

from tracker_infra.ops.events import EventStream

PARENT = "arn:aws:cloudformation:us-east-1:111111111111:stack/tracker-dev/1"
NESTED = "arn:aws:cloudformation:us-east-1:111111111111:stack/tracker-dev-ApiDatabaseSecretRotation-X/2"
T0 = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)


def event(n: int, stack: str, logical: str, kind: str, status: str, reason: str = "",
          physical: str = "") -> dict[str, Any]:
    return {"EventId": f"e{n}", "StackId": stack, "StackName": stack.split("/")[1],
            "LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": kind,
            "Timestamp": T0 + datetime.timedelta(seconds=n), "ResourceStatus": status,
            **({"ResourceStatusReason": reason} if reason else {})}


class Client:
    """DescribeStackEvents of a scripted account: each stack's events so far, newest first."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {PARENT: [], NESTED: []}

    def add(self, e: dict[str, Any]) -> None:
        self.events[e["StackId"]].insert(0, e)

    def get_paginator(self, name: str) -> Any:
        assert name == "describe_stack_events"
        return self

    def paginate(self, StackName: str) -> list[dict[str, Any]]:  # noqa: N803 - boto3's name
        found = self.events[StackName]
        return [{"StackEvents": found[:2]}, {"StackEvents": found[2:]}]  # two pages


def test_new_events_print_in_order_nested_stacks_followed_and_the_cause_first() -> None:
    client, out = Client(), io.StringIO()
    client.add(event(0, PARENT, "tracker-dev", "AWS::CloudFormation::Stack", "UPDATE_COMPLETE"))
    stream = EventStream(lambda: client, PARENT, out).prime()  # what was there is not shown
    for n, e in enumerate([
            ("DatabaseUser", "Custom::DatabaseUser", "CREATE_IN_PROGRESS", ""),
            ("ApiDatabaseSecretRotation", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "")], 1):
        client.add(event(n, PARENT, *e, physical=NESTED if e[1].endswith("Stack") else ""))
    stream.poll()
    client.add(event(3, NESTED, "RotationLambda", "AWS::Lambda::Function", "CREATE_FAILED",
                     "Access denied for s3:GetObject"))
    client.add(event(4, PARENT, "DatabaseUser", "Custom::DatabaseUser", "CREATE_FAILED",
                     "Resource creation cancelled"))
    client.add(event(5, PARENT, "ApiDatabaseSecretRotation", "AWS::CloudFormation::Stack",
                     "CREATE_FAILED", "Embedded stack was not successfully created", physical=NESTED))
    stream.poll()
    stream.poll()  # nothing new: nothing printed twice
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [
        "DatabaseUser", "ApiDatabaseSecretRotation", "ApiDatabaseSecretRotation/RotationLambda",
        "DatabaseUser", "ApiDatabaseSecretRotation"]
    assert "CREATE_FAILED" in lines[2] and "Access denied for s3:GetObject" in lines[2]
    assert all(line.startswith("  +00:0") for line in lines)
    # the nested stack's failure (the parent's event about it came later) is the cause
    assert stream.first_failure() == "RotationLambda (AWS::Lambda::Function): Access denied for s3:GetObject"


def test_no_failure_is_no_cause() -> None:
    client = Client()
    stream = EventStream(lambda: client, PARENT, io.StringIO()).prime()
    client.add(event(1, PARENT, "Vpc", "AWS::EC2::VPC", "CREATE_FAILED", "Resource creation cancelled"))
    stream.poll()
    assert stream.first_failure() is None
