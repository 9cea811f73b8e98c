"""The per-account bootstrap stacks (bootstrap/<account>.yaml): per environment a plan role, a
deploy role, a CloudFormation execution role and a permissions boundary, each trusted only by
whom it serves; the execution role's policies grant every permission the CloudFormation resource
schemas list for the handlers of the stacks' resource types, with names limited to the
environment's. Whether AWS agrees action by action only a real deployment shows
(docs/deploying.md). That no role a GitHub token reaches can raise its rights is
tests/test_escalation.py.

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
from tests.iam_policy import allows, bootstrap_template, boundary_document, logical_role, role_documents
from tracker_infra import bootstrap
from tracker_infra.rendering import ROOT

KINDS = bootstrap.ROLE_KINDS


def every_stack() -> list[dict[str, Any]]:
    return [render(config(env), key) for env in ENVS for key in ("app", "edge")]


@functools.lru_cache
def role_of(env: str, kind: str = "cfn-exec") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The environment's role of this kind and the documents of its managed policies (read once;
    not to be changed by a test)."""
    cfg = config(env)
    role = bootstrap_template(cfg)["Resources"][logical_role(cfg, kind)]["Properties"]
    return role, role_documents(cfg, kind)


def statements(env: str, kind: str = "cfn-exec") -> list[dict[str, Any]]:
    return [s for p in role_of(env, kind)[1] for s in p["Statement"] if s["Effect"] == "Allow"]


def granted(env: str, action: str, kind: str = "cfn-exec") -> list[dict[str, Any]]:
    """The Allow statements that name ``action`` (IAM matches action names case-insensitively)."""
    return [s for s in statements(env, kind)
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


def test_each_bootstrap_template_deploys_without_an_s3_upload() -> None:
    """`aws cloudformation deploy --template-file` sends a template of up to 51,200 bytes itself
    (CloudFormation API Reference, TemplateBody); a larger one needs --s3-bucket, which an account's
    first bootstrap has none of (docs/deploying.md, "The bootstrap stack")."""
    for path in sorted((ROOT / "bootstrap").glob("*.yaml")):
        assert len(path.read_bytes()) <= 51_200, path.name


def test_a_resource_type_missing_from_the_table_is_one_line() -> None:
    from tracker_infra.errors import UserError

    with pytest.raises(UserError, match=r"deploy_permissions.yaml: types: lacks AWS::DynamoDB::Table"):
        bootstrap.handler_actions({"AWS::EC2::VPC", "AWS::DynamoDB::Table"})


ARN_OF = {"plan": "plan_role_arn", "deploy": "deploy_role_arn", "cfn-exec": "execution_role_arn"}


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("kind", KINDS)
def test_role_names_live_under_the_bootstrap_path(env: str, kind: str) -> None:
    cfg = config(env)
    role, _ = role_of(env, kind)
    assert getattr(cfg, ARN_OF[kind]) == f"arn:aws:iam::{cfg.account}:role{role['Path']}{role['RoleName']}"
    assert role["Path"] == cfg.bootstrap_path and role["RoleName"] == f"{cfg.stack_name}-{kind}"
    # outside the names the execution role may give the stacks' roles
    stack_roles = f"arn:aws:iam::{cfg.account}:role/{cfg.stack_name}-*"
    assert not fnmatch.fnmatch(getattr(cfg, ARN_OF[kind]), stack_roles)
    assert "PermissionsBoundary" not in role  # the boundary denies passing a bootstrap role
    policy = bootstrap_template(cfg)["Resources"][f"{env.capitalize()}Boundary"]["Properties"]
    name = f"{policy['Path']}{policy['ManagedPolicyName']}"
    assert cfg.boundary_arn == f"arn:aws:iam::{cfg.account}:policy{name}"


def _trusted(role: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(principal kind, principal, the OIDC sub it must carry) of each trust statement."""
    found = []
    for statement in role["AssumeRolePolicyDocument"]["Statement"]:
        (kind, principal), = statement["Principal"].items()
        condition = statement.get("Condition", {}).get("StringEquals", {})
        if kind == "Federated":
            assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
            assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        found.append((kind, json.dumps(principal), condition.get("token.actions.githubusercontent.com:sub")))
    return found


@pytest.mark.parametrize("env", ENVS)
def test_each_role_trusts_one_github_environment_on_main_or_only_cloudformation(env: str) -> None:
    cfg = config(env)
    oidc = json.dumps({"Fn::If": ["CreateOidcProvider", {"Ref": "GitHubOidcProvider"},
                                  {"Ref": "ExistingOidcProviderArn"}]})
    repo = cfg.deploy.github_repository
    assert _trusted(role_of(env, "plan")[0]) == [
        ("Federated", oidc, f"repo:{repo}:environment:{env}-plan:ref:refs/heads/main")]
    assert _trusted(role_of(env, "deploy")[0]) == [
        ("Federated", oidc, f"repo:{repo}:environment:{env}:ref:refs/heads/main"),
        ("AWS", json.dumps({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}), None)]
    assert _trusted(role_of(env, "cfn-exec")[0]) == [("Service", '"cloudformation.amazonaws.com"', None)]


@pytest.mark.parametrize("env", ENVS)
def test_the_artifact_bucket_s_policy_grants_nothing(env: str) -> None:
    """Who may read or write the artifacts is the bootstrap roles' own policies: an Allow in the
    bucket's policy would reach past them (another account, or any role of this one)."""
    doc = bootstrap_template(config(env))["Resources"]
    policies = [r["Properties"]["PolicyDocument"] for r in doc.values()
                if r["Type"] == "AWS::S3::BucketPolicy"]
    assert policies and {s["Effect"] for p in policies for s in p["Statement"]} == {"Deny"}


@pytest.mark.parametrize("env", ENVS)
def test_every_handler_permission_of_the_stacks_is_granted_to_the_execution_role(env: str) -> None:
    cfg = config(env)
    types = bootstrap.resource_types([render(cfg, "app"), render(cfg, "edge")])
    services = {bootstrap.service_of(t) for t in types}
    table = yaml.load(bootstrap.PERMISSIONS.read_text(), Loader=yaml.CSafeLoader)["types"]  # noqa: S506
    wanted = {a for t in types for a in table[t] if bootstrap.ACTION.match(a) and a.split(":")[0] in services}
    missing = sorted(a for a in wanted - set(bootstrap.NEVER_IAM) | set(bootstrap.EXECUTION_CALLS)
                     if not granted(env, a))
    assert not missing
    for action in ("lambda:EnableReplication", "s3:PutBucketAcl", "iam:CreateServiceLinkedRole",
                   "cloudfront:UpdateDistribution", "iam:CreateRole"):
        assert granted(env, action), action
    assert not granted(env, "iam:DeleteRolePermissionsBoundary")


@pytest.mark.parametrize("env", ENVS)
def test_the_plan_and_deploy_roles_hold_what_their_commands_call(env: str) -> None:
    for action in bootstrap.PLAN_STACK_CALLS:
        assert granted(env, action, "plan") and granted(env, action, "deploy"), action
    for action in bootstrap.DEPLOY_STACK_CALLS + bootstrap.DEPLOY_BUCKET_CALLS + bootstrap.DEPLOY_OTHER_CALLS:
        assert granted(env, action, "deploy"), action
        writes = not action.split(":")[1].startswith(bootstrap.READ_VERBS)
        assert not (writes and granted(env, action, "plan")) or action == "s3:PutObject", action
    # the plan role's writes: change sets, drift checks and the artifacts it uploads
    for kind in ("plan", "deploy"):
        assert not [a for s in statements(env, kind) for a in s["Action"] if a.startswith("iam:")
                    and a != "iam:PassRole"], kind


@pytest.mark.parametrize("env", ENVS)
def test_the_deploy_role_grants_a_key_only_for_the_restore_rds_makes(env: str) -> None:
    cfg = config(env)
    key = f"arn:aws:kms:{cfg.region}:{cfg.account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    region = {"aws:RequestedRegion": cfg.region}
    documents = role_of(env, "deploy")[1]
    assert allows(documents, "kms:CreateGrant", key, {**region, "kms:GrantIsForAWSResource": "true"})
    assert not allows(documents, "kms:CreateGrant", key, region)  # a grant to anyone, made directly
    assert not allows(documents, "kms:CreateGrant", key, {**region, "kms:GrantIsForAWSResource": "false"})


@pytest.mark.parametrize("env", ENVS)
def test_the_execution_role_changes_a_role_only_when_it_carries_the_boundary(env: str) -> None:
    cfg = config(env)
    _, documents = role_of(env, "cfn-exec")
    role = f"arn:aws:iam::{cfg.account}:role/{cfg.stack_name}-ApiTaskRole-ABC"
    for action in bootstrap.BOUNDED_IAM:
        assert allows(documents, action, role, {"iam:PermissionsBoundary": cfg.boundary_arn}), action
        assert not allows(documents, action, role, {}), action
        admin = "arn:aws:iam::aws:policy/AdministratorAccess"
        assert not allows(documents, action, role, {"iam:PermissionsBoundary": admin})


def _scoped(statement: dict[str, Any], cfg: Any, kind: str) -> bool:
    """Whether a statement is limited to the environment: its names, its artifact prefixes (the
    plan role's under plan/, the others' the stacks' own), its regions, AWS's read-only buckets,
    or one of the statements whose scope is the service's."""
    prefix = f"{cfg.project}-{cfg.environment}"
    regions = list(dict.fromkeys([cfg.region, "us-east-1"]))
    artifacts = f"arn:aws:s3:::{cfg.artifact_bucket}" + ("/plan" if kind == "plan" else "")
    resources = statement["Resource"]
    checks = {
        "Stacks": lambda: all(f"/{prefix}/" in r or f"/{prefix}-*" in r or f":{prefix}-*" in r
                              for r in resources),
        "Buckets": lambda: all(f":::{prefix}-*" in r for r in resources),
        "Artifacts": lambda: resources == [f"{artifacts}/{prefix}/*", f"{artifacts}/{prefix}-*"],
        "ArtifactBucket": lambda: resources == [f"arn:aws:s3:::{cfg.artifact_bucket}"],
        "Resources": lambda: statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": regions}},
        "PassExecutionRole": lambda: resources == [cfg.execution_role_arn],
    }
    checks["PassMonitoringRole"] = lambda: resources == [
        f"arn:aws:iam::{cfg.account}:role/{prefix}-{bootstrap.MONITORING_ROLE}-*"]
    for name in ("OwnRoles", "BoundedRoles", "PassOwnRoles", "Functions", "FunctionReads"):
        checks[name] = checks["Stacks"]
    for name in ("Reads", "Operations"):
        checks[name] = checks["Resources"]
    checks["GrantsForRestores"] = lambda: statement["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": regions}, "Bool": {"kms:GrantIsForAWSResource": ["true"]}}
    for name in ("Transforms", "ServiceLinkedRoles"):
        checks[name] = lambda: True
    return checks[statement["Sid"].rstrip("0123456789")]()


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("kind", KINDS)
def test_names_are_the_environment_s_or_limited_to_its_regions(env: str, kind: str) -> None:
    cfg = config(env)
    for statement in statements(env, kind):
        assert _scoped(statement, cfg, kind), statement
    assert not allows(role_of(env, kind)[1], "s3:CreateBucket", f"arn:aws:s3:::{cfg.artifact_bucket}",
                      {"aws:RequestedRegion": "us-east-1"})
    # no action of another service than the stacks' own (S3 for the artifacts: every stack's)
    types = bootstrap.resource_types([render(cfg, "app"), render(cfg, "edge")])
    services = {bootstrap.service_of(t) for t in types} | {"s3", "cloudformation"}
    assert {a.split(":")[0] for s in statements(env, kind) for a in s["Action"]} <= services
    assert not granted(env, "iam:CreateUser", kind) and not granted(env, "sts:AssumeRole", kind)


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("kind", KINDS)
def test_each_policy_fits_iam_s_limits(env: str, kind: str) -> None:
    _, policies = role_of(env, kind)
    assert 1 <= len(policies) <= 10  # managed policies per role (default quota)
    for policy in [*policies, boundary_document(config(env))]:
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
    """tracker_infra/on_behalf.py, judged by the policy evaluator with each call's ARN and
    condition keys, against the role that makes it (the caller's plan or deploy role, or the
    execution role): the SAM transform, Lambda@Edge replication, service-linked roles, the roles
    passed to services."""
    from tracker_infra.on_behalf import CALLS

    cfg = config(env)
    for call in CALLS:
        region = cfg.region if call.stack == "regional" else "us-east-1"
        resource = call.resource.format(account=cfg.account, region=cfg.region, edge="us-east-1",
                                        name=f"{cfg.project}-{env}")
        context = {"aws:RequestedRegion": region, **call.context}
        kinds = ("plan", "deploy") if call.by == "caller" else ("cfn-exec",)
        for kind in kinds:
            assert allows(role_of(env, kind)[1], call.action, resource, context), (
                f"{kind}: {call.action} on {resource} ({call.source})")
    # the evaluator tells the role's conditions apart: another service's linked role is refused
    assert not allows(role_of(env)[1], "iam:CreateServiceLinkedRole",
                      f"arn:aws:iam::{cfg.account}:role/aws-service-role/redshift.amazonaws.com/x",
                      {"aws:RequestedRegion": "us-east-1", "iam:AWSServiceName": "redshift.amazonaws.com"})
