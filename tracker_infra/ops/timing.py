"""Where an operational command's time goes: AWS requests, the SAM CLI, and the rest.

With ``TRACKER_TIMINGS=1`` in the environment, ``render.py`` prints one line to stderr when an
operational command ends:

    timings: 4.21 s in all; AWS requests 1.30 s (37 calls); SAM CLI 2.52 s; the rest 0.39 s

"the rest" is this tool's own work plus the pauses between a waiter's polls. With
``TRACKER_TIMINGS=<file>`` the line, prefixed with the command's name, is appended to that file
instead: bench/run.py reads it to report each command's overhead beside the calls it waits for.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

SPENT = {"aws": 0.0, "calls": 0, "sam": 0.0}
STARTED = [time.perf_counter()]


def start() -> None:
    """A command begins: the clock and the counts start from zero."""
    SPENT.update(aws=0.0, calls=0, sam=0.0)
    STARTED[0] = time.perf_counter()


def _before(context: dict[str, Any], **_: Any) -> None:
    context["tracker_started"] = time.perf_counter()


def _after(context: dict[str, Any], **_: Any) -> None:
    started = context.pop("tracker_started", None)
    if started is not None:
        SPENT["aws"] += time.perf_counter() - started
        SPENT["calls"] += 1


def watch(session: Any) -> None:
    """Count the time of every API call made through ``session`` (retries included)."""
    if os.environ.get("TRACKER_TIMINGS"):
        session.events.register("before-parameter-build", _before)  # before-call may be cut short
        session.events.register("after-call", _after)


def sam_ran(seconds: float) -> None:
    SPENT["sam"] += seconds


def report(command: str) -> None:
    target = os.environ.get("TRACKER_TIMINGS", "")
    if target == "1":
        print(summary(), file=sys.stderr)
    elif target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(f"{command}: {summary()}\n")


def summary() -> str:
    total = time.perf_counter() - STARTED[0]
    rest = total - SPENT["aws"] - SPENT["sam"]
    return (f"timings: {total:.2f} s in all; AWS requests {SPENT['aws']:.2f} s ({SPENT['calls']} "
            f"calls); SAM CLI {SPENT['sam']:.2f} s; the rest {rest:.2f} s")
