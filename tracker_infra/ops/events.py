"""A stack's events as they happen, nested stacks included, while a command waits on it.

``EventStream.prime`` is called before the change starts (what is there already is not shown);
each ``poll`` prints the events that arrived since, oldest first, one line each: the time since
the start, the stack (nested stacks by their logical id in the parent), resource, status, type
and reason. A nested stack (AWS::CloudFormation::Stack, as the SecretsManager transform makes
them) is followed from its first event on. ``first_failure`` is the cause, printed before the
cascade of cancellations and rollbacks that follows it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

# Reasons of the events that follow a failure rather than cause it.
CASCADE = ("Resource creation cancelled", "Resource update cancelled", "cancelled",
           "The following resource(s) failed")


@dataclass
class EventStream:
    client: Callable[[], Any]  # the stack's region's CloudFormation client
    stack: str  # name or ID of the stack waited on
    out: TextIO = field(default_factory=lambda: sys.stdout)
    started: float = field(default_factory=time.monotonic)
    seen: set[str] = field(default_factory=set)
    stacks: dict[str, str] = field(default_factory=dict)  # stack name/ID -> label
    shown: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stacks.setdefault(self.stack, "")

    def _new(self, stack: str) -> Iterator[dict[str, Any]]:
        """Events of ``stack`` not seen yet, newest first (DescribeStackEvents' order)."""
        from botocore.exceptions import ClientError

        try:
            for page in self.client().get_paginator("describe_stack_events").paginate(StackName=stack):
                for event in page["StackEvents"]:
                    if event["EventId"] in self.seen:
                        return
                    yield event
        except ClientError as exc:
            if "does not exist" not in str(exc):  # a deleted stack has no more events by name
                raise

    def prime(self) -> EventStream:
        for stack in list(self.stacks):
            self.seen |= {e["EventId"] for e in self._new(stack)}
        return self

    def poll(self) -> None:
        """Print what arrived since the last poll, every stack's events in time order."""
        found: list[tuple[dict[str, Any], str]] = []
        done: set[str] = set()
        while set(self.stacks) - done:  # a nested stack found in this poll is read in it too
            for stack, label in [(s, lb) for s, lb in self.stacks.items() if s not in done]:
                done.add(stack)
                for event in self._new(stack):
                    self._follow_nested(event, label)
                    found.append((event, label))
        for event, label in sorted(found, key=lambda pair: pair[0]["Timestamp"]):
            self.seen.add(event["EventId"])
            self.shown.append(event)
            print(self.line(event, label), file=self.out, flush=True)

    def _follow_nested(self, event: dict[str, Any], label: str) -> None:
        physical = event.get("PhysicalResourceId", "")
        if (event["ResourceType"] == "AWS::CloudFormation::Stack" and physical.startswith("arn:")
                and physical != event.get("StackId") and physical not in self.stacks):
            self.stacks[physical] = f"{label}{event['LogicalResourceId']}/"

    def line(self, event: dict[str, Any], label: str) -> str:
        elapsed = int(time.monotonic() - self.started)
        reason = event.get("ResourceStatusReason", "")
        return (f"  +{elapsed // 60:02d}:{elapsed % 60:02d} {label}{event['LogicalResourceId']:<32} "
                f"{event['ResourceStatus']:<28} {event['ResourceType']}" + (f"  {reason}" if reason else ""))

    def first_failure(self) -> str | None:
        """The first failed event that is not a consequence of another failure."""
        for event in self.shown:
            reason = event.get("ResourceStatusReason", "")
            if event["ResourceStatus"].endswith("_FAILED") and not reason.startswith(CASCADE):
                return f"{event['LogicalResourceId']} ({event['ResourceType']}): {reason}"
        return None
