"""Tag completeness: every resource whose CloudFormation type takes tags carries the six standard
tags with this environment's values, in the form its type expects.

"Takes tags" is read from the resource schemas cfn-lint ships (the CloudFormation registry's
provider schemas, and for AWS::Serverless::* the SAM resource schemas beside them), never from a
list kept here: a new taggable resource without tags fails this test the day it is added.
"""

from __future__ import annotations

import copy

import pytest

from tests.helpers import ENVS, config, render, resources
from tests.taggable import tag_problems, tag_shape
from tracker_infra.rendering import EDGE_REGION
from tracker_infra.schema import STANDARD_TAGS


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
