"""The review's widening rules (tracker_infra/review/widening.py), each planted in production's
rendered templates: the rule must fire, and checkov, run on both sides, must newly fail exactly
the checks the rule names (none for a rule whose source is AWS's documentation, because checkov
has no check for it). A rule removed from RULES, or a check id removed from a rule, fails here.

Tightening and neutral changes (a stricter TLS policy, a longer backup, a new deny) fire no rule.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import config, render
from tracker_infra.review.widening import RULES, widenings

Doc = dict[str, Any]
Plant = Callable[[Doc], Doc | tuple[Doc, Doc]]  # the widened copy, or (before, after)


def _props(doc: Doc, rid: str) -> dict[str, Any]:
    return doc["Resources"][rid]["Properties"]


def _attribute(doc: Doc, key: str, value: str) -> Doc:
    for item in _props(doc, "ApiLoadBalancer")["LoadBalancerAttributes"]:
        if item["Key"] == key:
            item["Value"] = value
    return doc


def _edit(rid: str, change: Callable[[dict[str, Any]], Any]) -> Plant:
    def plant(doc: Doc) -> Doc:
        change(_props(doc, rid))
        return doc

    return plant


def _internal_first(doc: Doc) -> tuple[Doc, Doc]:
    before = copy.deepcopy(doc)
    _props(before, "ApiLoadBalancer")["Scheme"] = "internal"
    return before, doc


def _without(rid: str) -> Plant:
    def plant(doc: Doc) -> Doc:
        del doc["Resources"][rid]
        return doc

    return plant


def _attribute_off(key: str) -> Plant:
    return lambda doc: _attribute(doc, key, "false")


def _open_policy(p: dict[str, Any]) -> None:
    p["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "${SiteBucket.Arn}/*"},
        }
    )


def _policy(doc: Doc, rid: str, policy: str) -> Doc:
    doc["Resources"][rid]["DeletionPolicy"] = doc["Resources"][rid]["UpdateReplacePolicy"] = policy
    return doc


# rule id -> (template, plant)
PLANTS: dict[str, tuple[str, Plant]] = {
    "bucket-public-access-block": (
        "edge",
        _edit(
            "SiteBucket",
            lambda p: p["PublicAccessBlockConfiguration"].update(
                dict.fromkeys(p["PublicAccessBlockConfiguration"], False)
            ),
        ),
    ),
    "policy-open-to-anyone": ("edge", _edit("SiteBucketPolicy", _open_policy)),
    "database-publicly-accessible": (
        "app",
        _edit("DatabaseWriterInstance", lambda p: p.update(PubliclyAccessible=True)),
    ),
    "task-public-ip": (
        "app",
        _edit(
            "ApiService",
            lambda p: p["NetworkConfiguration"]["AwsvpcConfiguration"].update(AssignPublicIp="ENABLED"),
        ),
    ),
    "load-balancer-internet-facing": ("app", _internal_first),
    "cloudfront-plain-http": (
        "edge",
        _edit(
            "Distribution",
            lambda p: p["DistributionConfig"]["DefaultCacheBehavior"].update(
                ViewerProtocolPolicy="allow-all"
            ),
        ),
    ),
    "cloudfront-old-tls": (
        "edge",
        _edit(
            "Distribution",
            lambda p: p["DistributionConfig"]["ViewerCertificate"].update(MinimumProtocolVersion="TLSv1"),
        ),
    ),
    "alb-weak-tls-policy": (
        "app",
        _edit("ApiHttpsListener", lambda p: p.update(SslPolicy="ELBSecurityPolicy-TLS-1-0-2015-04")),
    ),
    "alb-plain-http": (
        "app",
        _edit(
            "ApiHttpListener",
            lambda p: p.update(
                DefaultActions=[{"Type": "forward", "TargetGroupArn": {"Ref": "ApiTargetGroup"}}]
            ),
        ),
    ),
    "tls-only-deny-removed": (
        "edge",
        _edit(
            "SiteBucketPolicy",
            lambda p: p["PolicyDocument"].update(
                Statement=[s for s in p["PolicyDocument"]["Statement"] if s["Effect"] != "Deny"]
            ),
        ),
    ),
    "storage-unencrypted": ("app", _edit("DatabaseCluster", lambda p: p.update(StorageEncrypted=False))),
    "database-key-removed": ("app", _edit("DatabaseCluster", lambda p: p.pop("KmsKeyId"))),
    "bucket-encryption-removed": ("edge", _edit("SiteBucket", lambda p: p.pop("BucketEncryption"))),
    "secret-key-removed": ("app", _edit("DatabaseSecret", lambda p: p.pop("KmsKeyId"))),
    "topic-key-removed": ("app", _edit("AlarmWarningTopic", lambda p: p.pop("KmsMasterKeyId"))),
    "log-group-key-removed": ("app", _edit("ApiLogGroup", lambda p: p.pop("KmsKeyId"))),
    "repository-key-removed": (
        "app",
        _edit("ApiRepository", lambda p: p.update(EncryptionConfiguration={"EncryptionType": "AES256"})),
    ),
    "database-deletion-protection-off": (
        "app",
        _edit("DatabaseCluster", lambda p: p.update(DeletionProtection=False)),
    ),
    "alb-deletion-protection-off": ("app", _attribute_off("deletion_protection.enabled")),
    "deletion-policy-lost": ("app", lambda doc: _policy(doc, "DatabaseCluster", "Delete")),
    "update-replace-policy-lost": ("app", lambda doc: _policy(doc, "DatabaseCluster", "Delete")),
    "backups-shorter": ("app", _edit("DatabaseCluster", lambda p: p.update(BackupRetentionPeriod=1))),
    "versioning-suspended": (
        "edge",
        _edit("SiteBucket", lambda p: p.update(VersioningConfiguration={"Status": "Suspended"})),
    ),
    "log-retention-shorter": ("app", _edit("ApiLogGroup", lambda p: p.update(RetentionInDays=1))),
    "flow-logs-removed": ("app", _without("FlowLog")),
    "bucket-access-logs-removed": ("edge", _edit("SiteBucket", lambda p: p.pop("LoggingConfiguration"))),
    "alb-access-logs-off": ("app", _attribute_off("access_logs.s3.enabled")),
    "cloudfront-logs-removed": (
        "edge",
        _edit("Distribution", lambda p: p["DistributionConfig"].pop("Logging")),
    ),
    "database-log-exports-off": (
        "app",
        _edit("DatabaseCluster", lambda p: p.pop("EnableCloudwatchLogsExports")),
    ),
    "alarm-removed": ("app", _without("ApiLatencyAlarm")),
    "alarm-actions-dropped": ("app", _edit("ApiLatencyAlarm", lambda p: p.pop("AlarmActions"))),
}
# Changes that tighten or change nothing a reviewer must weigh: no rule may fire.
TIGHTENINGS: dict[str, tuple[str, Plant]] = {
    "stricter TLS policy": (
        "app",
        _edit("ApiHttpsListener", lambda p: p.update(SslPolicy="ELBSecurityPolicy-TLS13-1-3-2021-06")),
    ),
    "longer backups": ("app", _edit("DatabaseCluster", lambda p: p.update(BackupRetentionPeriod=35))),
    "longer log retention": ("app", _edit("ApiLogGroup", lambda p: p.update(RetentionInDays=3653))),
    "a new deny": (
        "edge",
        _edit(
            "SiteBucketPolicy",
            lambda p: p["PolicyDocument"]["Statement"].append(
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:DeleteObject",
                    "Resource": {"Fn::Sub": "${SiteBucket.Arn}/*"},
                }
            ),
        ),
    ),
    "CloudFront TLS 1.3": (
        "edge",
        _edit(
            "Distribution",
            lambda p: p["DistributionConfig"]["ViewerCertificate"].update(
                MinimumProtocolVersion="TLSv1.3_2025"
            ),
        ),
    ),
    "a tag": ("app", _edit("DatabaseCluster", lambda p: p["Tags"].append({"Key": "Team", "Value": "x"}))),
}


def _sides(key: str, plant: Plant) -> tuple[Doc, Doc]:
    original = render(config("production"), key)
    planted = plant(copy.deepcopy(original))
    return planted if isinstance(planted, tuple) else (original, planted)


def test_every_rule_has_a_planted_change() -> None:
    assert set(PLANTS) == {r.id for r in RULES}
    categories = {r.category for r in RULES}
    assert categories == {"exposure", "transport", "encryption", "data", "audit"}
    for rule in RULES:
        assert rule.checkov or rule.source, f"{rule.id}: neither a checkov check nor a source"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_each_rule_fires_on_its_planted_change(rule: Any) -> None:
    before, after = _sides(*PLANTS[rule.id])
    fired = {w.rule for w in widenings(before["Resources"], after["Resources"])}
    assert rule.id in fired, fired


@pytest.mark.parametrize("name", TIGHTENINGS)
def test_a_tightening_fires_no_rule(name: str) -> None:
    before, after = _sides(*TIGHTENINGS[name])
    assert widenings(before["Resources"], after["Resources"]) == []


def _checkov_failures(folder: Path) -> dict[str, set[str]]:
    """file name -> the check ids checkov fails in it (CloudFormation checks, graph checks too)."""
    from checkov.cloudformation.runner import Runner
    from checkov.runner_filter import RunnerFilter

    report = Runner().run(root_folder=str(folder), runner_filter=RunnerFilter(framework=["cloudformation"]))
    found: dict[str, set[str]] = {}
    for check in report.failed_checks:
        found.setdefault(Path(check.file_path).name, set()).add(check.check_id)
    return found


@pytest.mark.slow
def test_checkov_newly_fails_exactly_the_checks_each_rule_names(tmp_path: Path) -> None:
    """One checkov run over every planted pair: what each plant newly fails is its rule's checks."""
    for rule in RULES:
        before, after = _sides(*PLANTS[rule.id])
        (tmp_path / f"{rule.id}.before.json").write_text(json.dumps(before))
        (tmp_path / f"{rule.id}.after.json").write_text(json.dumps(after))
    failures = _checkov_failures(tmp_path)
    found = {
        rule.id: sorted(
            failures.get(f"{rule.id}.after.json", set()) - failures.get(f"{rule.id}.before.json", set())
        )
        for rule in RULES
    }
    assert found == {rule.id: sorted(rule.checkov) for rule in RULES}
