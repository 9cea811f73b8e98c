"""A protected environment deployed again after its stack was deleted (docs/disaster-recovery.md,
"Before deploying a deleted environment again"), rehearsed against a moto server.

A protected stack keeps its logs and its image repository when it is deleted
(`DeletionPolicy: RetainExceptOnCreate`). The next create of a stack with the same name must not
collide with them: each kept resource's name ends in the first block of the stack's ID, which
CloudFormation makes new on every create.

The deployed copy holds production's kept resources whose types moto models, each with its name
property exactly as rendered (the stack's ID resolved by moto's CloudFormation) and nothing else:
their keys and tags belong to other resources and other tests. moto honours only `Retain`, so the
copy says Retain where the template says RetainExceptOnCreate (on a successful create they mean
the same, CloudFormation User Guide, DeletionPolicy attribute). The same rehearsal with the names
the stack's ID removed from must fail on the second create: that is what proves moto refuses a
name in use, and therefore what the per-create names avoid.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from tests.aws_standins import Moto
from tests.helpers import config, walk
from tracker_infra.cfn_yaml import load_template
from tracker_infra.rendering import ROOT

ENV = "production"
ACCOUNT = config(ENV).account
REGION = config(ENV).region
NAME_PROPERTIES = {"AWS::Logs::LogGroup": "LogGroupName", "AWS::ECR::Repository": "RepositoryName"}

Template = dict[str, Any]


def _kept_named(template: Template) -> Template:
    """The kept resources of the types above that name themselves, with only their name."""
    resources = {}
    for lid, resource in template["Resources"].items():
        name = resource.get("Properties", {}).get(NAME_PROPERTIES.get(resource["Type"], ""))
        if resource.get("DeletionPolicy") == "RetainExceptOnCreate" and name is not None:
            resources[lid] = {"Type": resource["Type"], "DeletionPolicy": "Retain",
                              "Properties": {NAME_PROPERTIES[resource["Type"]]: name}}
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


def _without_create_id(template: Template) -> Template:
    """The same names with the create ID taken out: the fixed names a retry would collide with."""
    fixed = json.loads(json.dumps(template))
    for resource in fixed["Resources"].values():
        properties = resource["Properties"]
        for key, value in properties.items():
            if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), list):
                properties[key] = value["Fn::Sub"][0].replace("-${CreateId}", "")
    return fixed


def _wait(cloudformation: Any, stack: str) -> str:
    for _ in range(200):
        status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            return str(status)
        time.sleep(0.05)
    return "timed out"


def _names(cloudformation: Any, stack: str) -> set[str]:
    found = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    return {r["PhysicalResourceId"] for r in found}


def _existing(session: boto3.Session, endpoint: str) -> set[str]:
    logs = session.client("logs", region_name=REGION, endpoint_url=endpoint)
    ecr = session.client("ecr", region_name=REGION, endpoint_url=endpoint)
    return ({g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
            | {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]})


def _create(cloudformation: Any, stack: str, template: Template) -> str:
    try:
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    except Exception as error:  # noqa: BLE001 - moto may refuse the create outright
        return f"refused: {error}"
    return _wait(cloudformation, stack)


def _create_delete_create(moto: Moto, stack: str, template: Template) -> tuple[str, set[str], set[str]]:
    """The second create's outcome, the first create's names and the names that exist after it."""
    session = moto.service_session(ACCOUNT)
    cloudformation = session.client("cloudformation", region_name=REGION, endpoint_url=moto.server.endpoint)
    assert _create(cloudformation, stack, template) == "CREATE_COMPLETE"
    first = _names(cloudformation, stack)
    stack_id = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackId"]
    cloudformation.delete_stack(StackName=stack)
    assert _wait(cloudformation, stack_id) == "DELETE_COMPLETE"  # a deleted stack answers by ID only
    assert first <= _existing(session, moto.server.endpoint), "the kept resources outlive the stack"
    return _create(cloudformation, stack, template), first, _existing(session, moto.server.endpoint)


@pytest.fixture(scope="module")
def kept() -> Template:
    template = _kept_named(load_template((ROOT / "rendered" / ENV / "app.yaml").read_text()))
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert types == set(NAME_PROPERTIES), f"production keeps named resources of {types}"
    return template


@pytest.mark.slow
def test_a_deleted_protected_stack_is_created_again_beside_what_it_kept(moto: Moto, kept: Template) -> None:
    outcome, first, existing = _create_delete_create(moto, "tracker-production", kept)
    assert outcome == "CREATE_COMPLETE"
    cloudformation = moto.service_session(ACCOUNT).client(
        "cloudformation", region_name=REGION, endpoint_url=moto.server.endpoint)
    second = _names(cloudformation, "tracker-production")
    assert len(second) == len(kept["Resources"]) and not first & second
    assert first | second <= existing, "the kept resources stay beside the new ones"


@pytest.mark.slow
def test_the_same_names_without_the_create_id_collide_on_the_second_create(moto: Moto,
                                                                          kept: Template) -> None:
    fixed = _without_create_id(kept)
    assert not any(isinstance(node, dict) and node.get("Ref") == "AWS::StackId" for node in walk(fixed))
    outcome, _, _ = _create_delete_create(moto, "tracker-production-fixed", fixed)
    # moto's CloudFormation passes the logs service's JSON error through unparsed; the words are AWS's
    assert "ResourceAlreadyExistsException" in outcome or "AlreadyExists" in outcome, outcome
