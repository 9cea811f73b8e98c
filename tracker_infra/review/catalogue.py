"""Properties with a known safe value, taken from checkov's CloudFormation checks.

checkov (a dev dependency) keeps a maintained rule set; its key/value checks
(``BaseResourceValueCheck``, ``BaseResourceNegativeValueCheck``) say, for the resource types they
support, which property they inspect and which values pass (or which fail). ``make regen``
writes them into catalogue.json beside this file (``generate``), so the runtime install, which
has no checkov, reads the same facts (``table``). Checks that replace checkov's key/value logic
with their own code are left out: their inspected key does not say what they decide (those that
only add a precondition, a key type or an engine, before checkov's logic are kept).

A change to an existing resource is judged for every entry of its type (``judge``):

  safe -> not safe      WIDENS, naming the check and what the property now is (a property
                        removed counts as its missing value: checkov's verdict for a missing key);
  not safe -> safe      tighter;
  unchanged             nothing to say;
  anything else         not proven: both values fail, or one is an intrinsic function the
                        review cannot evaluate; the change is left to the NOT JUDGED list.

EXTRA_SAFE adds values AWS introduced after the check was written (each with its source), so a
tightening to a newer value is not flagged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .values import MISSING, compact, is_intrinsic

TABLE = Path(__file__).with_name("catalogue.json")
ANY = "CKV_ANY"  # checkov's "any non-empty value"

# checkov's category -> the review's widening category (widening.py), the first that a check has
# in this order.
CATEGORIES = {"BACKUP_AND_RECOVERY": "data", "NETWORKING": "exposure", "IAM": "exposure",
              "ENCRYPTION": "encryption", "SECRETS": "encryption", "LOGGING": "audit",
              "GENERAL_SECURITY": "exposure", "APPLICATION_SECURITY": "exposure"}

# Where checkov's category says less than the property does (checkov files a public ACL and
# versioning under LOGGING): the review's category for these checks.
CATEGORY_OF = {"CKV_AWS_20": "exposure", "CKV_AWS_57": "exposure", "CKV_AWS_21": "data",
               "CKV_AWS_174": "transport"}

EXTRA_SAFE: dict[str, tuple[list[Any], str]] = {
    "CKV_AWS_174": (["TLSv1.2_2025", "TLSv1.3_2025"],
                    'CloudFront Developer Guide, "Supported protocols and ciphers between viewers and '
                    'CloudFront" (security policies TLSv1.2_2025 and TLSv1.3_2025)'),
}


@dataclass(frozen=True)
class Entry:
    id: str
    name: str
    category: str
    types: tuple[str, ...]
    path: tuple[str, ...]  # under Properties; "[0]" is a list position
    values: tuple[Any, ...]  # the passing values (``negative``: the failing ones)
    negative: bool
    missing_passes: bool  # checkov's verdict when the property is absent

    def passes(self, value: Any) -> bool | None:
        """checkov's verdict on one value (MISSING: absent); None where an intrinsic function
        decides it (the review cannot evaluate it)."""
        if value is MISSING:
            return True if self.negative else self.missing_passes
        if ANY in self.values:  # any value, a reference too (as checkov decides)
            return self.negative is (value in (None, "", [], {}))
        if is_intrinsic(value) or (isinstance(value, str) and "${" in value):
            return None
        if self.negative:
            return value not in self.values
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value in self.values or (value.lower() == "true") in self.values
        return value in self.values


# --- generating the table (dev install) ------------------------------------------------------------


def _entry(check: Any, negative: bool) -> dict[str, Any] | None:
    from checkov.common.models.enums import CheckResult

    key = check.get_inspected_key()
    if not key or not key.startswith("Properties/"):
        return None
    values = list(check.get_forbidden_values() if negative else check.get_expected_values())
    extra, _ = EXTRA_SAFE.get(check.id, ([], ""))
    categories = [c.name for c in check.categories]
    return {"id": check.id, "name": check.name,
            "category": CATEGORY_OF.get(check.id) or next(
                (v for c, v in CATEGORIES.items() if c in categories), "exposure"),
            "types": sorted(check.supported_resources), "path": key.split("/")[1:],
            "values": values + [v for v in extra if v not in values], "negative": negative,
            "missing_passes": check.missing_block_result == CheckResult.PASSED}


def _key_value(check: Any, base: type) -> bool:
    """The check decides by checkov's key/value logic: its own, or its own preconditions (a key
    type, an engine) before it (``super().scan_resource_conf``)."""
    import inspect

    scan = type(check).scan_resource_conf
    return scan is base.scan_resource_conf or "super().scan_resource_conf" in inspect.getsource(scan)


def generate() -> list[dict[str, Any]]:
    """Every key/value check of checkov's AWS CloudFormation checks that keeps checkov's own
    key/value logic, as table rows sorted by check id."""
    from checkov.cloudformation.checks.resource.base_resource_negative_value_check import (
        BaseResourceNegativeValueCheck,
    )
    from checkov.cloudformation.checks.resource.base_resource_value_check import BaseResourceValueCheck
    from checkov.cloudformation.checks.resource.registry import cfn_registry

    rows = []
    for checks in cfn_registry.checks.values():
        for check in checks:
            for base, negative in ((BaseResourceValueCheck, False), (BaseResourceNegativeValueCheck, True)):
                if isinstance(check, base) and check.id.startswith("CKV_AWS_") and _key_value(check, base):
                    row = _entry(check, negative)
                    if row:
                        rows.append(row)
    unique = {json.dumps(r, sort_keys=True): r for r in rows}
    return sorted(unique.values(), key=lambda r: (int(r["id"].rsplit("_", 1)[1]), r["path"]))


def dumps(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"source": "checkov's CloudFormation key/value checks (make regen)",
                       "entries": rows}, indent=1, sort_keys=True) + "\n"


# --- reading and judging (runtime) -----------------------------------------------------------------


@lru_cache(maxsize=1)
def table() -> dict[str, tuple[Entry, ...]]:
    """Resource type -> its entries."""
    rows = json.loads(TABLE.read_text(encoding="utf-8"))["entries"]
    by_type: dict[str, list[Entry]] = {}
    for r in rows:
        entry = Entry(r["id"], r["name"], r["category"], tuple(r["types"]), tuple(r["path"]),
                      tuple(r["values"]), r["negative"], r["missing_passes"])
        for t in entry.types:
            by_type.setdefault(t, []).append(entry)
    return {t: tuple(e) for t, e in by_type.items()}


def value_at(resource: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    node: Any = (resource or {}).get("Properties", MISSING)
    for step in path:
        if step.startswith("[") and isinstance(node, list):
            index = int(step.strip("[]"))
            node = node[index] if index < len(node) else MISSING
        else:
            node = node.get(step, MISSING) if isinstance(node, dict) and not is_intrinsic(node) else MISSING
    return node


@dataclass(frozen=True)
class Verdict:
    entry: Entry
    old: Any
    new: Any
    widens: bool  # safe -> not safe
    proven: bool  # widens, tighter or unchanged: the review knows what the change does

    def reason(self) -> str:
        now = "removed" if self.new is MISSING else f"now {compact(self.new, 80)}"
        path = ".".join(self.entry.path)
        return f"{self.entry.id} {path} {now} (was {compact(self.old, 80)}): {self.entry.name}"


def judge(old: dict[str, Any], new: dict[str, Any]) -> list[Verdict]:
    """Each catalogue entry of the resource's type whose property differs on the two sides."""
    found = []
    for entry in table().get(str(new.get("Type", "")), ()):
        a, b = value_at(old, entry.path), value_at(new, entry.path)
        if a == b:
            continue
        before, after = entry.passes(a), entry.passes(b)
        widens = before is True and after is False
        found.append(Verdict(entry, a, b, widens, widens or after is True))
    return found
