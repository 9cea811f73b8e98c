"""The rule a served response's security headers are graded by, in the tests and by verify.

Each header the environment configures (``rendering.edge_headers``) must be sent exactly once,
its name in any casing, with exactly the configured value. The edge function's tests grade its
output with it, and ``render.py verify`` grades what the deployed site really sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def header_problems(served: Iterable[tuple[str, str]], configured: Mapping[str, str]) -> list[str]:
    """One line per configured header that is missing, repeated or not the configured value."""
    served = list(served)
    problems = []
    for name, value in configured.items():
        values = [v for k, v in served if k.lower() == name.lower()]
        if not values:
            problems.append(f"{name} missing")
        elif len(values) > 1:
            problems.append(f"{name} sent {len(values)} times")
        elif values[0] != value:
            problems.append(f"{name} is {values[0]!r} (configured: {value!r})")
    return problems
