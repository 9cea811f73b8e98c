"""The per-account bootstrap stacks (bootstrap/<account>.yaml): one deploy role per
environment, trusted only for its GitHub environments, whose policies grant every permission the
CloudFormation resource schemas list for the handlers of the stacks' resource types, with names
limited to the environment's. Whether AWS agrees action by action only a real deployment shows
(docs/deploying.md).

tracker_infra/deploy_permissions.yaml is the table the policies come from; it must equal what the
resource schemas shipped with cfn-lint say (tracker_infra/permissions.py). To refresh it after a
template adds a resource type or cfn-lint is upgraded: `make regen`.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ENVS, config, render
from tests.iam_policy import allows, role_documents
from tracker_infra import bootstrap
from tracker_infra.cfn_yaml import load_template
from tracker_infra.rendering import ROOT


def every_stack() -> list[dict[str, Any]]:
    return [render(config(env), key) for env in ENVS for key in ("app", "edge")]


@functools.lru_cache
def role_of(env: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The environment's role and the documents of its managed policies (read once; not to be
    changed by a test)."""
    cfg = config(env)
    doc = load_template((ROOT / "bootstrap" / f"{cfg.account}.yaml").read_text())
    return doc["Resources"][f"{env.capitalize()}DeployRole"]["Properties"], role_documents(cfg)


def statements(env: str) -> list[dict[str, Any]]:
    return [s for p in role_of(env)[1] for s in p["Statement"]]


def granted(env: str, action: str) -> list[dict[str, Any]]:
    """The statements that allow ``action`` (IAM matches action names case-insensitively)."""
    return [s for s in statements(env)
            if any(fnmatch.fnmatch(action.lower(), a.lower()) for a in s["Action"])]


def test_the_permission_table_is_what_the_resource_schemas_say() -> None:
    from tracker_infra.permissions import table_text

    assert bootstrap.PERMISSIONS.read_text() == table_text(every_stack()), (
        "tracker_infra/deploy_permissions.yaml is stale: run `make regen`")


def test_one_file_per_account_and_it_is_fresh(tmp_path: Path) -> None:
    from tracker_infra.output import render_files

    configs = [config(env) for env in ENVS]
    summaries = [s for cfg in configs for s in render_files(cfg, tmp_path)[1]]
    files = bootstrap.bootstrap_files(configs, summaries, tmp_path)
    assert {p.name for p in files} == {f"{cfg.account}.yaml" for cfg in configs}
    for path, content in files.items():
        assert (ROOT / "bootstrap" / path.name).read_bytes() == content


def test_a_resource_type_missing_from_the_table_is_one_line() -> None:
    from tracker_infra.errors import UserError

    with pytest.raises(UserError, match=r"deploy_permissions.yaml: types: lacks AWS::DynamoDB::Table"):
        bootstrap.handler_actions({"AWS::EC2::VPC", "AWS::DynamoDB::Table"})


@pytest.mark.parametrize("env", ENVS)
def test_role_name_and_trust_are_the_environment_s(env: str) -> None:
    cfg = config(env)
    role, _ = role_of(env)
    assert cfg.deploy_role_arn.endswith(f":role/{role['RoleName']}")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    equals = statement["Condition"]["StringEquals"]
    assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    repo = cfg.deploy.github_repository
    assert equals["token.actions.githubusercontent.com:sub"] == [
        f"repo:{repo}:environment:{env}", f"repo:{repo}:environment:{env}-plan"]


@pytest.mark.parametrize("env", ENVS)
def test_every_handler_permission_of_the_stacks_is_granted(env: str) -> None:
    cfg = config(env)
    types = bootstrap.resource_types([render(cfg, "app"), render(cfg, "edge")])
    services = {bootstrap.service_of(t) for t in types}
    table = yaml.load(bootstrap.PERMISSIONS.read_text(), Loader=yaml.CSafeLoader)["types"]  # noqa: S506
    wanted = {a for t in types for a in table[t] if bootstrap.ACTION.match(a) and a.split(":")[0] in services}
    missing = sorted(a for a in wanted | set(bootstrap.PLUMBING) if not granted(env, a))
    assert not missing
    # what the issue names in particular
    for action in ("lambda:EnableReplication", "s3:PutBucketAcl", "iam:CreateServiceLinkedRole",
                   "cloudfront:UpdateDistribution", "cloudformation:ExecuteChangeSet"):
        assert granted(env, action), action


def _scoped(statement: dict[str, Any], cfg: Any) -> bool:
    """Whether a statement is limited to the environment: its names, its artifact prefixes, its
    regions, AWS's read-only buckets, or one of the statements whose scope is the service's."""
    prefix = f"{cfg.project}-{cfg.environment}"
    regions = list(dict.fromkeys([cfg.region, "us-east-1"]))
    artifacts = f"arn:aws:s3:::{cfg.artifact_bucket}"
    resources = statement["Resource"]
    checks = {
        "Stacks": lambda: all(f"/{prefix}/" in r or f"/{prefix}-*" in r or f":{prefix}-*" in r
                              for r in resources),
        "Buckets": lambda: all(f":::{prefix}-*" in r for r in resources),
        "Artifacts": lambda: resources == [f"{artifacts}/{prefix}/*", f"{artifacts}/{prefix}-*"],
        "ArtifactBucket": lambda: resources == [artifacts],
        "RotationCode": lambda: statement["Action"] == ["s3:GetObject"],  # AWS's buckets: read only
        "Resources": lambda: statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": regions}},
    }
    for name in ("OwnRoles", "PassOwnRoles", "Functions"):
        checks[name] = checks["Stacks"]
    for name in ("Transforms", "ServiceLinkedRoles", "Templates"):
        checks[name] = lambda: True
    return checks[statement["Sid"].rstrip("0123456789")]()


@pytest.mark.parametrize("env", ENVS)
def test_names_are_the_environment_s_or_limited_to_its_regions(env: str) -> None:
    cfg = config(env)
    for statement in statements(env):
        assert _scoped(statement, cfg), statement
    assert not allows(role_of(env)[1], "s3:CreateBucket", f"arn:aws:s3:::{cfg.artifact_bucket}",
                      {"aws:RequestedRegion": "us-east-1"})
    # no action of another service than the stacks' own (S3 for the artifacts: every stack's)
    types = bootstrap.resource_types([render(cfg, "app"), render(cfg, "edge")])
    services = {bootstrap.service_of(t) for t in types} | {"serverlessrepo", "s3"}
    assert {a.split(":")[0] for s in statements(env) for a in s["Action"]} <= services
    assert not granted(env, "iam:CreateUser") and not granted(env, "sts:AssumeRole")


@pytest.mark.parametrize("env", ENVS)
def test_each_policy_fits_iam_s_limits(env: str) -> None:
    _, policies = role_of(env)
    assert 1 <= len(policies) <= 10  # managed policies per role (default quota)
    for policy in policies:
        assert len(json.dumps(policy, separators=(",", ":"))) <= bootstrap.POLICY_LIMIT



@pytest.mark.parametrize("limit", [260, 400, 1000])
def test_packing_fills_each_policy_to_the_limit_and_keeps_every_action(
        limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "POLICY_LIMIT", limit)
    found = [bootstrap.Statement(sid, [f"svc{i}:Action{n:03d}" for n in range(count)],
                                 [f"arn:aws:svc{i}:::thing-{i}/*"],
                                 {"StringEquals": {"aws:RequestedRegion": ["eu-west-1"]}} if i % 2 else {})
               for i, (sid, count) in enumerate((("Stacks", 3), ("Roles", 40), ("Functions", 1),
                                                 ("Buckets", 25)))]
    packed = bootstrap.policies(found)
    assert len(packed) > 1  # the limits above force splitting
    for policy in packed:
        assert bootstrap._size(policy) <= limit
    # every action kept, once, in order, each in a part of its own statement
    for statement in found:
        parts = [p for policy in packed for p in policy if p.sid.rstrip("0123456789") == statement.sid]
        assert [a for p in parts for a in p.actions] == statement.actions
        assert all(p.resources == statement.resources and p.condition == statement.condition
                   for p in parts)
    # tight: the first action of the next policy would not have fitted in the one before
    for before, after in zip(packed, packed[1:], strict=False):
        assert _with_next_action(before, after[0]) > limit


def _with_next_action(policy: list[Any], first: Any) -> int:
    """The size ``policy`` would have with ``first``'s first action added to it."""
    last = policy[-1]
    if first.sid.rstrip("0123456789") == last.sid.rstrip("0123456789"):
        grown = bootstrap.Statement(last.sid, [*last.actions, first.actions[0]], last.resources,
                                    last.condition)
        return bootstrap._size([*policy[:-1], grown])
    return bootstrap._size([*policy, bootstrap.Statement(first.sid, [first.actions[0]], first.resources,
                                                         first.condition)])


@pytest.mark.parametrize("env", ENVS)
def test_the_calls_aws_makes_on_the_roles_behalf_are_allowed(env: str) -> None:
    """tracker_infra/on_behalf.py, judged by moto's policy evaluator with each call's ARN and
    condition keys: the transforms, the hosted rotation's nested stack and code, Lambda@Edge
    replication, service-linked roles."""
    from tracker_infra.on_behalf import CALLS

    cfg = config(env)
    _, documents = role_of(env)
    for call in CALLS:
        region = cfg.region if call.stack == "regional" else "us-east-1"
        resource = call.resource.format(account=cfg.account, region=cfg.region, edge="us-east-1",
                                        name=f"{cfg.project}-{env}")
        if call.action in ("iam:CreateServiceLinkedRole", "iam:PassRole"):  # moto skips a missing key
            assert {"iam:AWSServiceName", "iam:PassedToService"} & set(call.context), call
        assert allows(documents, call.action, resource, {"aws:RequestedRegion": region, **call.context}), (
            f"{call.action} on {resource} ({call.source})")
    # the evaluator tells the role's conditions apart: another service's linked role is refused
    assert not allows(documents, "iam:CreateServiceLinkedRole",
                      f"arn:aws:iam::{cfg.account}:role/aws-service-role/redshift.amazonaws.com/x",
                      {"aws:RequestedRegion": "us-east-1", "iam:AWSServiceName": "redshift.amazonaws.com"})
