"""The rule a served response's security headers are graded by, in the tests, by verify and by the
review (a change of the configuration weakening a header: configuration_changes).

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


# --- one configuration against another: what the review flags (review/diff.py) ---------------------
# The same rule, applied to a change of the configuration (rendered/<env>/edge/headers.json, what
# the edge function ships): every header the old configuration sets is graded against the new one
# by header_problems, as verify would grade a site serving the new one. A header missing is
# weaker; a value changed is weaker or not by the header's own order below, and a header this
# module has no order for is not judged.

# Strictest first. Referrer-Policy: W3C Referrer Policy, section 3 (the policies); X-Frame-Options:
# RFC 7034; Cross-Origin-Opener-Policy and Cross-Origin-Resource-Policy: the HTML and Fetch
# standards' values.
ORDERED = {
    "referrer-policy": ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin",
                        "origin", "origin-when-cross-origin", "no-referrer-when-downgrade", "unsafe-url"),
    "x-frame-options": ("deny", "sameorigin"),
    "x-content-type-options": ("nosniff",),
    "cross-origin-opener-policy": ("same-origin", "same-origin-allow-popups", "unsafe-none"),
    "cross-origin-resource-policy": ("same-origin", "same-site", "cross-origin"),
}


def _hsts(value: str) -> tuple[int, set[str]]:
    parts = [p.strip().lower() for p in value.split(";") if p.strip()]
    age = next((p.split("=", 1)[1].strip('" ') for p in parts if p.startswith("max-age=")), "0")
    return (int(age) if age.isdigit() else 0), {p for p in parts if not p.startswith("max-age")}


def _directives(value: str, separator: str = ";") -> dict[str, set[str]]:
    """CSP (``directive source ...;``) or Permissions-Policy (``feature=(allowlist), ...``); CSP's
    'none' is the empty source list it stands for (CSP Level 3, "source lists")."""
    out: dict[str, set[str]] = {}
    for part in value.split(separator):
        words = part.replace("=", " ").replace("(", " ").replace(")", " ").split()
        if words:
            out[words[0].lower()] = set(words[1:]) - {"'none'"}
    return out


def _looser(old: dict[str, set[str]], new: dict[str, set[str]]) -> str:
    removed = sorted(set(old) - set(new))
    if removed:
        return f"{', '.join(removed)} removed"
    added = [f"{d} gains {' '.join(sorted(new[d] - old[d]))}" for d in sorted(old) if new[d] - old[d]]
    return "; ".join(added)


def weaker(name: str, old: str, new: str) -> str | None:
    """How ``new`` is weaker than ``old`` for this header ("" when it is not), None when there is
    no order to judge it by."""
    key = name.lower()
    if key == "strict-transport-security":
        (age_a, flags_a), (age_b, flags_b) = _hsts(old), _hsts(new)
        lost = sorted(flags_a - flags_b)
        return "; ".join(filter(None, [f"max-age {age_a} -> {age_b}" if age_b < age_a else "",
                                       f"{', '.join(lost)} dropped" if lost else ""]))
    if key.startswith("content-security-policy"):
        return _looser(_directives(old), _directives(new))
    if key == "permissions-policy":
        return _looser(_directives(old, ","), _directives(new, ","))
    order = ORDERED.get(key)
    if order is None:
        return None
    rank = {v: i for i, v in enumerate(order)}
    a, b = rank.get(old.strip().lower(), len(order)), rank.get(new.strip().lower(), len(order))
    return f"{old!r} -> {new!r}" if b > a or b == len(order) else ""


def configuration_changes(old: Mapping[str, str],
                          new: Mapping[str, str]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """(how the new configuration is weaker, what cannot be judged as (header, old value, new
    value), "" where there is none): each header of the old one
    graded by header_problems against the new one; a header the new one adds is judged only when
    this module knows it (adding a known security header is never weaker)."""
    weakened: list[str] = []
    unjudged: list[tuple[str, str, str]] = []
    for problem in header_problems(new.items(), old):
        name = next(n for n in old if problem.startswith(f"{n} "))
        if problem == f"{name} missing":
            weakened.append(f"{name} no longer sent")
            continue
        value = next(v for k, v in new.items() if k.lower() == name.lower())
        why = weaker(name, old[name], value)
        if why is None:
            unjudged.append((name, old[name], value))
        elif why:
            weakened.append(f"{name} weaker: {why}")
    known = {*ORDERED, "strict-transport-security", "content-security-policy", "permissions-policy"}
    # a CSP moved to report-only is judged above (the enforced header is no longer sent)
    if any(k.lower() == "content-security-policy" for k in old):
        known.add("content-security-policy-report-only")
    unjudged += [(k, "", v) for k, v in new.items()
                 if k.lower() not in {o.lower() for o in old} and k.lower() not in known]
    return weakened, unjudged
