"""Which resources must carry tags, and in which form, decided by CloudFormation's own resource
schemas (the provider schemas cfn-lint ships; for AWS::Serverless::* the SAM resource schemas
beside them), never from a list kept here: a new taggable resource without tags is caught."""

from __future__ import annotations

from functools import cache
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

Shape = tuple[str, str, str, str]  # (property, "list" | "map", key field, value field)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:  # local references only: "#/definitions/Tag"
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


@cache
def tag_shape(region: str, resource_type: str) -> Shape | None:
    """How a type takes tags, from its schema; None when it takes none.

    Taggable: the schema says "tagging": {"taggable": true}, or it has a Tags property. The
    property is the schema's tagProperty (else Tags); an array of objects is the list form (the
    item's key and value field names read from the item schema), an object the map form.
    """
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    properties = schema.get("properties", {})
    tagging = schema.get("tagging", {})
    if not (tagging.get("taggable") is True or "Tags" in properties):
        return None
    name = tagging.get("tagProperty", "/properties/Tags").rsplit("/", 1)[-1]
    spec = _resolve(schema, properties[name])
    if spec.get("type") == "array":
        item = _resolve(schema, spec.get("items", {}))
        fields = {f.lower(): f for f in item.get("properties", {})}
        return (name, "list", fields.get("key", "Key"), fields.get("value", "Value"))
    return (name, "map", "", "")


def tag_problems(doc: dict[str, Any], region: str, expected: dict[str, str]) -> list[str]:
    """One line per taggable resource whose tags are missing, wrong, or in the wrong form."""
    problems = []
    for logical_id, resource in sorted(doc["Resources"].items()):
        shape = tag_shape(region, resource["Type"])
        if shape is None:
            continue
        name, form, key_field, value_field = shape
        value = resource.get("Properties", {}).get(name)
        if form == "map":
            if not isinstance(value, dict):
                problems.append(f"{logical_id}: {name} must be a map, is {value!r}")
                continue
            found = value
        else:
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                problems.append(f"{logical_id}: {name} must be a list of "
                                f"{{{key_field}, {value_field}}}, is {value!r}")
                continue
            found = {t.get(key_field): t.get(value_field) for t in value}
        wrong = {k: found.get(k) for k, v in expected.items() if found.get(k) != v}
        if wrong:
            problems.append(f"{logical_id} ({resource['Type']}): expected {expected}, "
                            f"wrong or missing {wrong}")
    return problems
