"""The per-account bootstrap stacks (rendered/bootstrap/<account>.yaml): one deploy role per
environment, trusted only for its GitHub environments, allowed every service its two stacks use
and no other. Whether each action is enough only a real deployment shows (docs/deploying.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ENVS, config, render, resources
from tracker_infra.bootstrap import bootstrap_files
from tracker_infra.cfn_yaml import load_template
from tracker_infra.rendering import ROOT

# Services the deploy needs besides those of the stacks' resource types: CloudFormation itself,
# the SecretsManager transform's Serverless Application Repository, the SAM artifact bucket (s3),
# IAM (roles, service-linked roles) and the Lambda@Edge function's replication.
PLUMBING = {"cloudformation", "serverlessrepo", "s3", "iam", "lambda"}
# resource type prefix -> IAM service prefix, where they differ
SERVICE_OF = {"ElasticLoadBalancingV2": "elasticloadbalancing", "ApplicationAutoScaling":
              "application-autoscaling", "CloudWatch": "cloudwatch", "Logs": "logs",
              "SecretsManager": "secretsmanager", "Serverless": "lambda"}


def bootstrap(account: str) -> dict[str, Any]:
    return dict(load_template((ROOT / "rendered" / "bootstrap" / f"{account}.yaml").read_text()))


def role_of(env: str) -> dict[str, Any]:
    cfg = config(env)
    logical_id = f"{env.capitalize()}DeployRole"
    return bootstrap(cfg.account)["Resources"][logical_id]["Properties"]


def actions(role: dict[str, Any]) -> set[str]:
    found = set()
    for statement in role["Policies"][0]["PolicyDocument"]["Statement"]:
        value = statement["Action"]
        found |= {value} if isinstance(value, str) else set(value)
    return found


def test_one_file_per_account_and_it_is_fresh(tmp_path: Path) -> None:
    configs = [config(env) for env in ENVS]
    files = bootstrap_files(configs, tmp_path)
    assert {p.name for p in files} == {f"{cfg.account}.yaml" for cfg in configs}
    for path, content in files.items():
        assert (ROOT / "rendered" / "bootstrap" / path.name).read_bytes() == content


@pytest.mark.parametrize("env", ENVS)
def test_role_name_and_trust_are_the_environment_s(env: str) -> None:
    cfg = config(env)
    role = role_of(env)
    assert cfg.deploy_role_arn.endswith(f":role/{role['RoleName']}")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    equals = statement["Condition"]["StringEquals"]
    assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    repo = cfg.deploy.github_repository
    assert equals["token.actions.githubusercontent.com:sub"] == [
        f"repo:{repo}:environment:{env}", f"repo:{repo}:environment:{env}-plan"]


@pytest.mark.parametrize("env", ENVS)
def test_policy_covers_every_service_of_the_stacks_and_no_other(env: str) -> None:
    cfg = config(env)
    needed = set(PLUMBING)
    for key in ("app", "edge"):
        for resource in resources(render(cfg, key)).values():
            family = resource["Type"].split("::")[1]
            needed.add(SERVICE_OF.get(family, family.lower()))
    if cfg.dns.hosted_zone_id:  # the alias records in the vars' hosted zone
        needed.add("route53")
    granted = {action.split(":")[0] for action in actions(role_of(env))}
    granted -= {"sns", "cloudwatch"} - needed  # status reads them even where no resource uses them
    assert granted == needed


@pytest.mark.parametrize("env", ENVS)
def test_names_are_scoped_to_the_environment(env: str) -> None:
    cfg = config(env)
    prefix = f"{cfg.project}-{env}"
    for statement in role_of(env)["Policies"][0]["PolicyDocument"]["Statement"]:
        if statement["Sid"] in ("Stacks", "OwnRoles", "PassOwnRoles", "EdgeAndRotationFunctions",
                                "StackBuckets"):
            targets = statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            assert all(f"{prefix}-" in t or f"/{prefix}/" in t for t in targets), statement
        elif statement["Resource"] == "*" and statement["Sid"] != "ReadAnywhere":
            assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == sorted(
                {cfg.region, "us-east-1"}, key=[cfg.region, "us-east-1"].index)
