"""Tag completeness: every resource whose CloudFormation type takes tags carries the six standard
tags with this environment's values, in the form its type expects.

"Takes tags" is read from the resource schemas cfn-lint ships (the CloudFormation registry's
provider schemas, and for AWS::Serverless::* the SAM resource schemas beside them), never from a
list kept here: a new taggable resource without tags fails this test the day it is added.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.helpers import ENVS, config, render, resources
from tracker_infra.rendering import EDGE_REGION
from tracker_infra.schema import STANDARD_TAGS

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


def standard_tags(env: str) -> dict[str, str]:
    tags = config(env).tags
    expected = {key: tags[key] for key in STANDARD_TAGS}
    assert expected["Environment"] == env
    return expected


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("key", ["app", "edge"])
def test_every_taggable_resource_carries_the_standard_tags(env: str, key: str) -> None:
    cfg = config(env)
    region = cfg.region if key == "app" else EDGE_REGION
    doc = render(cfg, key)
    assert tag_problems(doc, region, standard_tags(env)) == []
    # not vacuous: the schemas do mark resources of this stack as taggable
    taggable = [r for r in doc["Resources"].values() if tag_shape(region, r["Type"])]
    assert len(taggable) >= (20 if key == "app" else 8)


def test_taggability_and_form_come_from_the_schemas() -> None:
    assert tag_shape("us-east-1", "AWS::CloudWatch::Alarm") == ("Tags", "list", "Key", "Value")
    assert tag_shape("us-east-1", "AWS::SNS::Topic") == ("Tags", "list", "Key", "Value")
    assert tag_shape("us-east-1", "AWS::SSM::Parameter") == ("Tags", "map", "", "")
    assert tag_shape("us-east-1", "AWS::Serverless::Function") == ("Tags", "map", "", "")
    assert tag_shape("us-east-1", "AWS::SNS::Subscription") is None
    assert tag_shape("us-east-1", "AWS::Logs::MetricFilter") is None


# --- the checker fails when it should --------------------------------------------------------------

TAGS = standard_tags("staging")
LIST = [{"Key": k, "Value": v} for k, v in TAGS.items()]


def test_checker_flags_a_taggable_resource_without_tags() -> None:
    doc = {"Resources": {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "Subscription": {"Type": "AWS::SNS::Subscription",  # takes no tags: not flagged
                         "Properties": {"TopicArn": {"Ref": "Topic"}, "Protocol": "email",
                                        "Endpoint": "a@example.com"}},
    }}
    problems = tag_problems(doc, "us-east-1", TAGS)
    assert len(problems) == 1 and problems[0].startswith("Topic:")


def test_checker_flags_the_wrong_form_a_wrong_value_and_a_missing_key() -> None:
    doc = {"Resources": {
        "Function": {"Type": "AWS::Serverless::Function", "Properties": {"Tags": LIST}},
        "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"Tags": dict(TAGS)}},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Tags": [
            {"Key": k, "Value": "production" if k == "Environment" else v}
            for k, v in TAGS.items()]}},
        "Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
            "Tags": [t for t in LIST if t["Key"] != "CostCenter"]}},
        "Good": {"Type": "AWS::SSM::Parameter", "Properties": {"Tags": dict(TAGS)}},
    }}
    problems = tag_problems(doc, "us-east-1", TAGS)
    assert [p.split(" ")[0].rstrip(":") for p in problems] == ["Alarm", "Dashboard", "Function",
                                                               "Group"]
    assert "'Environment': 'production'" in problems[0]
    assert "'CostCenter': None" in problems[1]


def test_checker_flags_a_rendered_resource_once_its_tags_are_removed() -> None:
    doc = copy.deepcopy(render(config("staging"), "app"))
    alarms = resources(doc, "AWS::CloudWatch::Alarm")
    victim = sorted(alarms)[0]
    del doc["Resources"][victim]["Properties"]["Tags"]
    problems = tag_problems(doc, "us-east-1", TAGS)
    assert len(problems) == 1 and problems[0].startswith(f"{victim}:")
