"""Two validators from outside the project, on every rendered template after its transforms.

- ``cloudformation-validate``: AWS's offline validator (its own resource schemas and several
  hundred rules), run on each template as CloudFormation processes it (tests/transforms.py), with
  the environment's region and account. No error, no warning; each informational finding is
  either fixed in the templates or listed in INFORMATIONAL with the reason it stays.
- ``parliament``: every IAM identity policy in the templates (each role's policies, after the
  transforms, so SAM's generated roles too), with CloudFormation's references replaced by ARNs
  of the referenced resource's type, so that parliament can match each action to its resource
  type. No finding at all. parliament models identity policies only: trust policies and the
  key, bucket and topic policies (resource policies, where ``Resource: "*"`` means "this key")
  are held to their rules by the layer tests and checkov instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from tests.helpers import CREATE_ID, ENVS, config
from tracker_infra.arn_shapes import ARN_SHAPES, arn_of
from tracker_infra.cfn_yaml import load_template
from tracker_infra.rehearsal.transforms import processed
from tracker_infra.rendering import EDGE_REGION, ROOT

STACKS = [(env, key) for env in ENVS for key in ("app", "edge")]

# Informational findings that stay, by rule: the reason, and which findings it covers.
INFORMATIONAL: dict[str, tuple[str, Any]] = {
    "I9001": ("Names each create-only property (a change replaces the resource). render.py diff "
              "reports replacements on every change, with CloudFormation's schemas.", None),
    "I4010": ("Asks for a Metadata.com.aws.cloudformation.Context block describing the "
              "architecture; the pictures in docs/architecture/ do that job.", None),
}


@cache
def _processed(env: str, key: str) -> dict[str, Any]:
    cfg = config(env)
    region = cfg.region if key == "app" else EDGE_REGION
    return processed(load_template((ROOT / "rendered" / env / f"{key}.yaml").read_text()), region)


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    """One engine for the module (building one compiles every rule), released before exit."""
    from cloudformation_validate import CompositeEngine
    built = CompositeEngine()
    yield built
    del built


def validate(engine: Any, template: dict[str, Any], region: str, account: str) -> list[Any]:
    import cloudformation_validate as cv

    settings = cv.ValidateConfig(pseudo_parameter_overrides=cv.PseudoParameterOverrides(
        region=region, account_id=account))
    return list(engine.validate_template(json.dumps(template).encode(), settings).diagnostics)


def unexplained(diagnostics: list[Any]) -> list[str]:
    """Every finding that is not an INFORMATIONAL one with its reason."""
    found = []
    for d in diagnostics:
        entity = getattr(d.entity, "logical_id", "") if d.entity else ""
        allowed = INFORMATIONAL.get(d.rule_id)
        if d.severity.name == "INFO" and allowed and (allowed[1] is None or allowed[1].match(entity)):
            continue
        found.append(f"{d.severity.name} {d.rule_id} {entity}: {d.message}")
    return found


@pytest.mark.parametrize(("env", "key"), STACKS)
def test_cloudformation_validate_reports_nothing_unexplained(engine: Any, env: str, key: str) -> None:
    cfg = config(env)
    region = cfg.region if key == "app" else EDGE_REGION
    diagnostics = validate(engine, _processed(env, key), region, cfg.account)
    assert unexplained(diagnostics) == []
    assert {d.rule_id for d in diagnostics} <= set(INFORMATIONAL)


def test_cloudformation_validate_catches_a_planted_error(engine: Any) -> None:
    template = json.loads(json.dumps(_processed("staging", "app")))
    template["Resources"]["DatabaseCluster"]["Properties"]["BackupRetentionPeriod"] = 99
    template["Resources"]["ApiTargetGroup"]["Properties"]["Protocol"] = "HTTPZ"
    problems = unexplained(validate(engine, template, "us-east-1", "222222222222"))
    assert any("DatabaseCluster" in p for p in problems), problems
    assert any("ApiTargetGroup" in p for p in problems), problems


# --- parliament --------------------------------------------------------------------------------

def _resolved(node: Any, template: dict[str, Any], region: str, account: str) -> Any:
    """``node`` with Ref, GetAtt and Sub replaced by plausible values of the right shape."""
    pseudo = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account,
              "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "stack"}
    resources = template["Resources"]

    def arn(logical_id: str) -> str:
        if logical_id in pseudo:
            return pseudo[logical_id]
        kind = resources[logical_id]["Type"]
        assert kind in ARN_SHAPES, (
            f"no ARN shape for {kind} ({logical_id}): add it to tracker_infra/arn_shapes.py")
        return arn_of(kind, region, account, logical_id.lower())

    def attribute(logical_id: str, name: str) -> str:
        # GetAtt Arn of a log group ends in ":*", as CloudFormation returns it; an ARN attribute
        # by another name (DBClusterArn) is the same ARN
        return arn(logical_id) if name.endswith("Arn") else f"{logical_id.lower()}-{name.lower()}"

    def walk(value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, inner), = value.items()
            if key == "Ref":
                return arn(inner.split(".")[0])
            if key == "Fn::GetAtt":
                logical_id, name = inner if isinstance(inner, list) else inner.split(".", 1)
                return attribute(logical_id, name)
            if key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else inner
                values = {k: "0a1b2c3d" if v == CREATE_ID else walk(v) for k, v in variables.items()}
                return re.sub(r"\$\{([^}.]+)(?:\.([^}]+))?\}", lambda m: attribute(m[1], m[2])
                              if m[2] else values.get(m[1]) or arn(m[1]), text)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(node)


IDENTITY_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")


def policies(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, policy document) of every identity policy in the template."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] in IDENTITY_POLICY_TYPES:
            yield f"{logical_id}.PolicyDocument", props["PolicyDocument"]
        for policy in props.get("Policies", []) if resource["Type"] == "AWS::IAM::Role" else []:
            yield f"{logical_id}.Policies.{policy['PolicyName']}", policy["PolicyDocument"]


def parliament_findings(template: dict[str, Any], region: str, account: str) -> list[str]:
    from parliament import analyze_policy_string

    found = []
    for where, document in policies(template):
        policy = analyze_policy_string(json.dumps(_resolved(document, template, region, account)))
        found += [f"{where}: {f.issue} {f.detail}" for f in policy.findings]
    return found


@pytest.mark.parametrize(("env", "key"), STACKS)
def test_parliament_finds_nothing_in_any_policy(env: str, key: str) -> None:
    cfg = config(env)
    template = _processed(env, key)
    roles = {where.split(".")[0] for where, _ in policies(template)}
    expected = ({"FlowLogRole", "ApiTaskExecutionRole", "ApiTaskRole", "DatabaseUserFunctionRole",
                 "DatabaseRotationFunctionRole"} if key == "app" else {"SecurityHeadersFunctionRole"})
    assert roles == expected
    assert parliament_findings(template, cfg.region, cfg.account) == []


def test_parliament_catches_a_planted_mistake() -> None:
    template = json.loads(json.dumps(_processed("staging", "app")))
    role = template["Resources"]["ApiTaskRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    statements[0]["Action"] = "secretsmanager:GetSecretVaule"  # misspelt
    statements[1]["Resource"] = {"Ref": "ApiRepository"}  # kms:Decrypt on a repository
    findings = parliament_findings(template, "us-east-1", "222222222222")
    assert any("ApiTaskRole" in f and "UNKNOWN_ACTION" in f for f in findings), findings
    assert any("ApiTaskRole" in f and "RESOURCE_MISMATCH" in f for f in findings), findings
