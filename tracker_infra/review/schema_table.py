"""The create-only table: what makes CloudFormation replace a resource, per type.

``create_only.json`` (beside this file) is generated from cfn-lint's public schema manager,
``cfnlint.schema.PROVIDER_SCHEMA_MANAGER`` (CloudFormation's resource provider schemas, us-east-1),
and shipped with the code, so the runtime install (no cfn-lint) and the dev install give the same
verdicts. Per type it holds JSON pointers below ``/properties``:

- ``always``: ``createOnlyProperties``, a change replaces the resource;
- ``conditional``: ``conditionalCreateOnlyProperties``, a change may replace it;
- ``names``: the create-only properties that name the resource (``Name``, ``<Type>Name`` such
  as ``LogGroupName``, or a writable primary identifier such as ``DBClusterIdentifier``): a
  replacement that keeps such a name fixed is refused by CloudFormation.

Regenerate after upgrading cfn-lint with `make regen` (tracker_infra/regen.py); `make regen-check`
and tests/test_review_schema.py fail while it is stale.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().with_name("create_only.json")
REGION = "us-east-1"


def _pointers(schema: dict[str, Any], key: str) -> list[str]:
    return sorted(p.removeprefix("/properties/") for p in schema.get(key) or []
                  if p.startswith("/properties/"))


def _names(type_: str, schema: dict[str, Any], always: list[str]) -> list[str]:
    read_only = set(_pointers(schema, "readOnlyProperties"))
    primary = set(_pointers(schema, "primaryIdentifier")) - read_only
    last = type_.rsplit("::", 1)[-1]
    words = re.findall(r"[A-Z][a-z0-9]*", last)
    own = {"Name", f"{last}Name", f"{words[-1]}Name" if words else "Name"}
    return sorted(p for p in always if "/" not in p and (
        p in own or (p in primary and p.endswith(("Name", "Identifier")))))


def generate() -> dict[str, dict[str, list[str]]]:
    """The table, from cfn-lint's schema manager (dev install only)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    table = {}
    for type_ in sorted(PROVIDER_SCHEMA_MANAGER.get_resource_types(REGION)):
        if not type_.startswith("AWS::"):
            continue
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, type_).schema
        always = _pointers(schema, "createOnlyProperties")
        entry = {"always": always, "conditional": _pointers(schema, "conditionalCreateOnlyProperties"),
                 "names": _names(type_, schema, always)}
        table[type_] = {k: v for k, v in entry.items() if v}
    return table


def dumps(table: dict[str, dict[str, list[str]]]) -> str:
    """One type per line, so a cfn-lint upgrade shows as a readable diff."""
    lines = [f"{json.dumps(t)}: {json.dumps(e, sort_keys=True)}" for t, e in sorted(table.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


@lru_cache(maxsize=1)
def table() -> dict[str, dict[str, list[str]]]:
    return json.loads(TABLE.read_text(encoding="utf-8"))
