"""The design's ten correctness properties, over randomly generated valid environments.

Each property renders both stacks of a generated environment (tests/strategies.py; property 1,
isolation, two to four of them) and checks the parsed result. 100 examples per property (the
design's minimum); the cfn-lint property 20 (cfn-lint takes one to two seconds per stack;
`make lint` lints the shipped environments' templates too).

The single-environment properties share one random seed per run (TRACKER_PROPERTY_SEED=N replays
a run; a failure notes its seed), so they draw the same environments, and each environment is
rendered and parsed once for all of them (``rendered`` keeps them): each property still checks
100 environments, new ones every run.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import random
import re
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, given, note, seed, settings
from pydantic import ValidationError

from tests.helpers import config, config_with, resources, walk
from tests.strategies import environments
from tests.taggable import tag_problems
from tracker_infra.output import check_template
from tracker_infra.rendering import render_stack, stacks
from tracker_infra.schema import Config

PROPERTY = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEED = int(os.environ.get("TRACKER_PROPERTY_SEED") or random.SystemRandom().randrange(2**32))
SHARED = seed(SEED)  # the single-environment properties: the same environments for each


@dataclass(frozen=True)
class Rendered:
    cfg: Config
    app: dict[str, Any]
    edge: dict[str, Any]
    text: str  # the stacks' YAML, for searching names


_RENDERED: dict[str, Rendered] = {}  # the environment's JSON -> both stacks, parsed


def rendered(cfgs: list[Config]) -> list[Rendered]:
    """Render and parse both stacks of each environment, once per environment per run."""
    if currently_in_test_context():
        note(f"TRACKER_PROPERTY_SEED={SEED}")
    out = []
    for cfg in cfgs:
        key = cfg.model_dump_json()
        if key not in _RENDERED:
            if len(_RENDERED) >= 200:  # more than any one property draws
                _RENDERED.clear()
            texts = {s.key: render_stack(cfg, s) for s in stacks(cfg)}
            docs = {key: check_template(text, key) for key, text in texts.items()}
            _RENDERED[key] = Rendered(cfg, docs["app"], docs["edge"], "\n".join(texts.values()))
        out.append(_RENDERED[key])
    return out


def _statements(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(owning resource, IAM statement) for every policy statement in the template."""
    found = []
    for lid, res in doc["Resources"].items():
        for node in walk(res.get("Properties", {})):
            if isinstance(node, dict) and "Statement" in node and isinstance(node["Statement"], list):
                found.extend((lid, s) for s in node["Statement"])
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _az_of(doc: dict[str, Any], subnet_ref: Any) -> int:
    subnet = doc["Resources"][subnet_ref["Ref"]]
    return subnet["Properties"]["AvailabilityZone"]["Fn::Select"][0]


def _ingress(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rules = [(lid, r) for lid, res in resources(doc, "AWS::EC2::SecurityGroup").items()
             for r in res["Properties"].get("SecurityGroupIngress", [])]
    rules += [(res["Properties"]["GroupId"]["Ref"], res["Properties"])
              for res in resources(doc, "AWS::EC2::SecurityGroupIngress").values()]
    return rules


# 1 ------------------------------------------------------------------------------------------
@pytest.mark.slow
@PROPERTY
@given(environments(min_size=2, max_size=4))
def test_property_1_environment_isolation(cfgs: list[Config]) -> None:
    envs = rendered(cfgs)
    for a, b in combinations(envs, 2):
        net_a = ipaddress.IPv4Network(a.app["Resources"]["VPC"]["Properties"]["CidrBlock"])
        net_b = ipaddress.IPv4Network(b.app["Resources"]["VPC"]["Properties"]["CidrBlock"])
        assert not net_a.overlaps(net_b)
        assert {a.cfg.stack_name, a.cfg.edge_stack_name}.isdisjoint(
            {b.cfg.stack_name, b.cfg.edge_stack_name})
        for one, other in ((a, b), (b, a)):
            # No name of the other environment appears in this one's stacks.
            for name in (other.cfg.stack_name, other.cfg.frontend.domain, other.cfg.api.domain):
                assert not re.search(rf"(?<![a-z0-9-]){re.escape(name)}(?![a-z0-9])", one.text), name
    for env in envs:
        for doc in (env.app, env.edge):
            assert not [n for n in walk(doc) if isinstance(n, dict) and "Fn::ImportValue" in n]
            for out in doc.get("Outputs", {}).values():
                if "Export" in out:  # exports are named after their own stack
                    assert out["Export"]["Name"]["Fn::Sub"].startswith("${AWS::StackName}-")


# 2 ------------------------------------------------------------------------------------------
def _routes_of(doc: dict[str, Any], subnets: list[str]) -> list[dict[str, Any]]:
    """The properties of the routes of the tables these subnets are associated with."""
    tables = {a["Properties"]["RouteTableId"]["Ref"]
              for a in resources(doc, "AWS::EC2::SubnetRouteTableAssociation").values()
              if a["Properties"]["SubnetId"]["Ref"] in subnets}
    return [r["Properties"] for r in resources(doc, "AWS::EC2::Route").values()
            if r["Properties"]["RouteTableId"]["Ref"] in tables]


@pytest.mark.slow
@SHARED
@PROPERTY
@given(environments(max_size=1))
def test_property_2_database_network_isolation(cfgs: list[Config]) -> None:
    for env in rendered(cfgs):
        doc = env.app
        for inst in resources(doc, "AWS::RDS::DBInstance").values():
            assert inst["Properties"]["PubliclyAccessible"] is False
        groups = resources(doc, "AWS::RDS::DBSubnetGroup")
        subnets = [s["Ref"] for g in groups.values() for s in g["Properties"]["SubnetIds"]]
        assert subnets and all(s.startswith("PrivateSubnet") for s in subnets)
        for route in _routes_of(doc, subnets):
            assert "GatewayId" not in route and "NatGatewayId" in route  # out through NAT only
        cluster = next(iter(resources(doc, "AWS::RDS::DBCluster").values()))["Properties"]
        db_groups = {g["Ref"] for g in cluster["VpcSecurityGroupIds"]}
        rules = [r for gid, r in _ingress(doc) if gid in db_groups]
        assert rules and all(r.get("SourceSecurityGroupId") == {"Ref": "ApiSecurityGroup"} and
                             r["FromPort"] == r["ToPort"] == 5432 for r in rules)


# 3 ------------------------------------------------------------------------------------------
def _secret_readers(doc: dict[str, Any], secrets: dict[str, Any]) -> set[str]:
    """The owners of the Allow statements that read a secret; each names only this stack's
    secrets, and no statement but a key policy's allows secretsmanager:* or *."""
    readers = set()
    for owner, stmt in _statements(doc):
        actions = [a.lower() for a in _as_list(stmt.get("Action", []))]
        if stmt.get("Effect") != "Allow":
            continue
        assert "secretsmanager:*" not in actions and "*" not in actions or \
            doc["Resources"][owner]["Type"] == "AWS::KMS::Key"
        # (GetRandomPassword reads no secret: it acts on no resource, Secrets Manager API Reference)
        reads = [a for a in actions if a.startswith("secretsmanager:get")]
        if set(reads) - {"secretsmanager:getrandompassword"}:
            assert all(r in [{"Ref": s} for s in secrets] for r in _as_list(stmt["Resource"]))
            readers.add(owner)
    return readers


@pytest.mark.slow
@SHARED
@PROPERTY
@given(environments(max_size=1))
def test_property_3_secret_encryption_and_access(cfgs: list[Config]) -> None:
    for env in rendered(cfgs):
        for doc in (env.app, env.edge):
            keys = set(resources(doc, "AWS::KMS::Key"))
            secrets = resources(doc, "AWS::SecretsManager::Secret")
            for secret in secrets.values():
                key = secret["Properties"]["KmsKeyId"]
                assert key.get("Fn::GetAtt", [None])[0] in keys or key.get("Ref") in keys
            readers = _secret_readers(doc, secrets)
            for key in keys:
                for stmt in doc["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]:
                    assert stmt["Principal"] != "*" and stmt["Principal"].get("AWS") != "*"
            # Only roles of this stack read a secret, each assumed by a named AWS service: no
            # resource policy opens a secret, and no reader is anyone at all.
            assert not resources(doc, "AWS::SecretsManager::ResourcePolicy")
            for reader in readers:
                role = doc["Resources"][reader]
                assert role["Type"] == "AWS::IAM::Role", reader
                trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
                assert all(set(s["Principal"]) == {"Service"} for s in trust), reader


# 4 ------------------------------------------------------------------------------------------
@pytest.mark.slow
@SHARED
@PROPERTY
@given(environments(max_size=1))
def test_property_4_tag_completeness(cfgs: list[Config]) -> None:
    for env in rendered(cfgs):
        for stack, doc in zip(stacks(env.cfg), (env.app, env.edge), strict=True):
            assert tag_problems(doc, stack.region, env.cfg.tags) == []


# 5 ------------------------------------------------------------------------------------------
@pytest.mark.slow
@SHARED
@PROPERTY
@given(environments(max_size=1))
def test_property_5_multi_az(cfgs: list[Config]) -> None:
    for env in rendered(cfgs):
        doc = env.app
        group = next(iter(resources(doc, "AWS::RDS::DBSubnetGroup").values()))
        assert len({_az_of(doc, s) for s in group["Properties"]["SubnetIds"]}) >= 2
        alb = next(iter(resources(doc, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()))
        assert len({_az_of(doc, s) for s in alb["Properties"]["Subnets"]}) >= 2
        service = next(iter(resources(doc, "AWS::ECS::Service").values()))
        task_subnets = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
        assert len({_az_of(doc, s) for s in task_subnets}) >= 2
        # The database's compute, not only its subnet group: instances in at least two AZs.
        instances = resources(doc, "AWS::RDS::DBInstance").values()
        azs = {i["Properties"]["AvailabilityZone"]["Fn::Select"][0] for i in instances}
        assert len(instances) >= 2 and len(azs) >= 2


def test_property_5_fails_on_a_planted_single_instance_environment() -> None:
    """The schema refuses database.instances: 1; built past it, the property must catch it."""
    cfg = config("dev")
    single = cfg.model_copy(update={"database": cfg.database.model_copy(update={"instances": 1})})
    with pytest.raises(AssertionError, match=r"assert \(1 >= 2\)"):
        test_property_5_multi_az.hypothesis.inner_test([single])
    with pytest.raises(ValidationError, match="instances"):
        config_with("dev", {"database": {"instances": 1}})


# 6 ------------------------------------------------------------------------------------------
TLS12_ALB = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]-|TLS-1-2-|FS-1-2-)")
TLS12_CLOUDFRONT = ("TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.3_2025")


def _listeners_speak_https(doc: dict[str, Any]) -> None:
    """HTTPS on 443 with a TLS 1.2+ policy; HTTP on 80 only redirects to HTTPS."""
    listeners = [r["Properties"] for r in resources(doc, "AWS::ElasticLoadBalancingV2::Listener").values()]
    assert sorted(listener["Port"] for listener in listeners) == [80, 443]
    for listener in listeners:
        if listener["Protocol"] == "HTTP":
            (action,) = listener["DefaultActions"]
            assert action["Type"] == "redirect" and action["RedirectConfig"]["Protocol"] == "HTTPS"
        else:
            assert listener["Protocol"] == "HTTPS"
            assert TLS12_ALB.match(listener["SslPolicy"]), listener["SslPolicy"]


def _buckets_refuse_plain_http(doc: dict[str, Any]) -> None:
    policies = {p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
                for p in resources(doc, "AWS::S3::BucketPolicy").values()}
    for bucket in resources(doc, "AWS::S3::Bucket"):
        assert any(s["Effect"] == "Deny" and
                   s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in (False, "false")
                   for s in policies[bucket]["Statement"]), bucket


@pytest.mark.slow
@SHARED
@PROPERTY
@given(environments(max_size=1))
def test_property_6_https_enforcement(cfgs: list[Config]) -> None:
    for env in rendered(cfgs):
        _listeners_speak_https(env.app)
        for group in resources(env.app, "AWS::ElasticLoadBalancingV2::TargetGroup").values():
            assert group["Properties"]["Protocol"] == "HTTPS"
        dist = next(iter(resources(env.edge, "AWS::CloudFront::Distribution").values()))
        config = dist["Properties"]["DistributionConfig"]
        behaviours = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
        assert all(b["ViewerProtocolPolicy"] == "redirect-to-https" for b in behaviours)
        assert config["ViewerCertificate"]["MinimumProtocolVersion"] in TLS12_CLOUDFRONT
        for doc in (env.app, env.edge):  # every bucket refuses plain HTTP
            _buckets_refuse_plain_http(doc)


# 7 ------------------------------------------------------------------------------------------
@pytest.mark.slow
@SHARED
@PROPERTY
@given(environments(max_size=1))
def test_property_7_backups_and_data_keeping_policies(cfgs: list[Config]) -> None:
    for env in rendered(cfgs):
        cluster = next(iter(resources(env.app, "AWS::RDS::DBCluster").values()))
        props = cluster["Properties"]
        # Aurora keeps continuous backups for the retention window: that is point-in-time recovery.
        assert props["BackupRetentionPeriod"] >= 7
        assert props["StorageEncrypted"] is True and props["CopyTagsToSnapshot"] is True
        if env.cfg.protected:
            assert props["DeletionProtection"] == {"Fn::If": ["DeletionProtected", True, False]}
            assert cluster["DeletionPolicy"] == cluster["UpdateReplacePolicy"] == "Snapshot"
            for doc in (env.app, env.edge):
                for bucket in resources(doc, "AWS::S3::Bucket").values():  # kept on deletion
                    assert bucket["DeletionPolicy"] in ("RetainExceptOnCreate", "Retain")
                    assert bucket["UpdateReplacePolicy"] == "Retain"
                for key in resources(doc, "AWS::KMS::Key").values():
                    assert key["DeletionPolicy"] == "RetainExceptOnCreate"


# 8 ------------------------------------------------------------------------------------------
@pytest.mark.slow
@SHARED
@PROPERTY
@given(environments(max_size=1))
def test_property_8_security_group_least_privilege(cfgs: list[Config]) -> None:
    for env in rendered(cfgs):
        for gid, rule in _ingress(env.app):
            if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
                assert gid == "AlbSecurityGroup" and rule["FromPort"] == rule["ToPort"]
                assert rule["FromPort"] in (80, 443)
            else:  # everything else from a named group or a specific CIDR block
                assert "SourceSecurityGroupId" in rule or (
                    ipaddress.ip_network(rule.get("CidrIp") or rule["CidrIpv6"]).prefixlen > 0), (gid, rule)
            assert rule["IpProtocol"] != "-1"


# 9 ------------------------------------------------------------------------------------------

def _covered(doc: dict[str, Any], metrics: dict[str, Any]) -> set[str]:
    """The design's critical metrics some alarm watches: directly, the error rate as metric math
    over 5xx and requests, database connections through the log's metric filter."""
    covered = {name for name, metric in ALARMED.items() if any(metric in ms for ms in metrics.values())}
    five_xx = ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count")
    if any(five_xx in ms and len(ms) >= 2 for ms in metrics.values()):
        covered.add("error rate")
    filters = resources(doc, "AWS::Logs::MetricFilter")
    filtered = {(t["MetricNamespace"], t["MetricName"])
                for f in filters.values() for t in f["Properties"]["MetricTransformations"]}
    if any(set(ms) & filtered for ms in metrics.values()):
        covered.add("db connections")
    return covered

ALARMED = {"latency": ("AWS/ApplicationELB", "TargetResponseTime")}


def _metrics_of(alarm: dict[str, Any]) -> list[tuple[str, str]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"])]
    return [(m["MetricStat"]["Metric"].get("Namespace", ""), m["MetricStat"]["Metric"]["MetricName"])
            for m in props.get("Metrics", []) if "MetricStat" in m]


@pytest.mark.slow
@SHARED
@PROPERTY
@given(environments(max_size=1))
def test_property_9_alarm_coverage(cfgs: list[Config]) -> None:
    for env in rendered(cfgs):
        alarms = resources(env.app, "AWS::CloudWatch::Alarm")
        topics = set(resources(env.app, "AWS::SNS::Topic"))
        metrics = {lid: _metrics_of(a) for lid, a in alarms.items()}
        covered = _covered(env.app, metrics)
        assert covered >= {"latency", "error rate", "db connections"}  # the design's critical metrics
        for alarm in alarms.values():
            actions = alarm["Properties"]["AlarmActions"]
            assert actions and all(a["Ref"] in topics for a in actions)
            assert isinstance(alarm["Properties"]["Threshold"], (int, float))


# 10 -----------------------------------------------------------------------------------------
# What the design says each environment is built of: (stack, resource type, at least how many).
REQUIRED = [
    ("app", "AWS::EC2::VPC", 1), ("app", "AWS::EC2::Subnet", 4), ("app", "AWS::EC2::NatGateway", 1),
    ("app", "AWS::EC2::FlowLog", 1), ("app", "AWS::EC2::SecurityGroup", 3),
    ("app", "AWS::RDS::DBCluster", 1), ("app", "AWS::SecretsManager::Secret", 1),
    ("app", "AWS::SecretsManager::RotationSchedule", 1), ("app", "AWS::KMS::Key", 1),
    ("app", "AWS::ECS::Service", 1), ("app", "AWS::ElasticLoadBalancingV2::LoadBalancer", 1),
    ("app", "AWS::ApplicationAutoScaling::ScalableTarget", 1), ("app", "AWS::CloudWatch::Alarm", 1),
    ("app", "AWS::CloudWatch::Dashboard", 1), ("app", "AWS::SNS::Topic", 1),
    ("app", "AWS::Logs::LogGroup", 1), ("edge", "AWS::S3::Bucket", 1),
    ("edge", "AWS::CloudFront::Distribution", 1), ("edge", "AWS::Serverless::Function", 1),
]


@functools.cache
def _cfn_lint_rules() -> Any:
    """cfn-lint's default rules, loaded once (its lint() loads them again on every call)."""
    from cfnlint.core import get_rules

    return get_rules([], [], [])


def _lint_problems(text: str, region: str) -> list[str]:
    """cfn-lint's errors and warnings on a template."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(text, rules=_cfn_lint_rules(), config=ManualArgs(regions=[region]))
    return [f"{m.rule.id} {m.message}" for m in matches if m.rule.id[0] in "EW"]


def test_property_10_fails_on_a_planted_invalid_template() -> None:
    """The linting of property 10 can fail: a dangling Ref and a wrong type are found."""
    cfg = config("dev")
    text = render_stack(cfg, stacks(cfg)[0]).replace(
        "\nResources:\n", "\nResources:\n  Planted:\n    Type: AWS::SNS::Topic\n    Properties:\n"
        "      TopicName: !Ref NoSuchResource\n      FifoTopic: maybe\n", 1)
    problems = _lint_problems(text, stacks(cfg)[0].region)
    assert any("NoSuchResource" in p for p in problems), problems
    assert any(p.startswith("E3012") for p in problems), problems


@pytest.mark.slow
@SHARED
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(environments(max_size=1))
def test_property_10_valid_templates_with_every_required_resource(cfgs: list[Config]) -> None:
    for cfg in cfgs:
        for stack in stacks(cfg):
            text = render_stack(cfg, stack)
            problems = _lint_problems(text, stack.region)
            assert problems == [], (stack.name, problems)
            doc = check_template(text, stack.key)
            for key, kind, count in REQUIRED:
                if key == stack.key:
                    assert len(resources(doc, kind)) >= count, (stack.name, kind)
