"""Which resources must carry tags, decided by CloudFormation's own resource schemas (the provider
schemas cfn-lint ships), not a hand-kept list: a new taggable resource without tags is caught."""

from __future__ import annotations

from functools import cache
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER


@cache
def tag_property(resource_type: str) -> tuple[str, str] | None:
    """(property name, "list" | "map") for a taggable type; None when the type takes no tags."""
    if resource_type.startswith("AWS::Serverless::"):
        return ("Tags", "map")  # SAM resources take a map; the transform passes it on
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    properties = schema.get("properties", {})
    tagging = schema.get("tagging", {})
    if not tagging.get("taggable", "Tags" in properties):
        return None
    name = tagging.get("tagProperty", "/properties/Tags").rsplit("/", 1)[-1]
    spec = properties[name]
    if "$ref" in spec:
        spec = schema["definitions"][spec["$ref"].rsplit("/", 1)[-1]]
    return (name, "list" if spec.get("type") == "array" else "map")


def tags_of(resource: dict[str, Any], prop: str, kind: str) -> dict[str, Any]:
    value = resource.get("Properties", {}).get(prop)
    if kind == "map":
        return value if isinstance(value, dict) else {}
    return {t.get("Key"): t.get("Value") for t in value or [] if isinstance(t, dict)}


def missing_tags(doc: dict[str, Any], expected: dict[str, str]) -> list[str]:
    """One line per taggable resource lacking a standard tag or carrying a wrong value."""
    problems = []
    for lid, resource in sorted(doc["Resources"].items()):
        found = tag_property(resource["Type"])
        if found is None:
            continue
        have = tags_of(resource, *found)
        wrong = {k: have.get(k) for k, v in expected.items() if have.get(k) != v}
        if wrong:
            problems.append(f"{lid} ({resource['Type']}, {found[1]} {found[0]}): {wrong}")
    return problems
