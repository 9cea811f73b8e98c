"""The review's widening rules (tracker_infra/review/widening.py), each planted in production's
rendered templates: the rule must fire, and checkov, run on both sides, must newly fail exactly
the checks the rule names (none for a rule whose source is AWS's documentation, because checkov
has no check for it). A rule removed from RULES, or a check id removed from a rule, fails here.

Tightening and neutral changes (a stricter TLS policy, a longer backup, a new deny) fire no rule.

The catalogue (tracker_infra/review/catalogue.py): catalogue.json must be what checkov's checks
say (an entry removed or changed fails here), and every entry that holds for a resource of
production's templates is planted: the review must widen naming the check, and checkov must
newly fail it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import config, render
from tracker_infra.review import catalogue
from tracker_infra.review.values import MISSING
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


def _new(rid: str, change: Callable[[dict[str, Any]], Any]) -> Plant:
    """A new resource: a copy of ``rid`` changed (a rule for resources that start weak)."""

    def plant(doc: Doc) -> Doc:
        copied = copy.deepcopy(doc["Resources"][rid])
        change(copied["Properties"])
        doc["Resources"][f"New{rid}"] = copied
        return doc

    return plant


def _container(key: str, value: Any) -> Plant:
    return _edit("ApiTaskDefinition", lambda p: p["ContainerDefinitions"][0].update({key: value}))


def _policy(doc: Doc, rid: str, policy: str) -> Doc:
    doc["Resources"][rid]["DeletionPolicy"] = doc["Resources"][rid]["UpdateReplacePolicy"] = policy
    return doc


# rule id -> (template, plant)
PLANTS: dict[str, tuple[str, Plant]] = {
    "new-bucket-public": (
        "edge",
        _new(
            "SiteBucket",
            lambda p: p["PublicAccessBlockConfiguration"].update(
                dict.fromkeys(p["PublicAccessBlockConfiguration"], False)
            ),
        ),
    ),
    "policy-open-to-anyone": ("edge", _edit("SiteBucketPolicy", _open_policy)),
    "new-database-public": (
        "app",
        _new("DatabaseWriterInstance", lambda p: p.update(PubliclyAccessible=True)),
    ),
    "container-privileged": ("app", _container("Privileged", True)),
    "container-root-writable": ("app", _container("ReadonlyRootFilesystem", False)),
    "container-runs-as-root": ("app", _container("User", "0")),
    "alb-invalid-headers-kept": ("app", _attribute_off("routing.http.drop_invalid_header_fields.enabled")),
    "rotation-removed": ("app", _without("DatabaseSecretRotation")),
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
    "new-cloudfront-old-tls": (
        "edge",
        _new(
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
    "new-storage-unencrypted": ("app", _new("DatabaseCluster", lambda p: p.update(StorageEncrypted=False))),
    "database-key-removed": ("app", _edit("DatabaseCluster", lambda p: p.pop("KmsKeyId"))),
    "bucket-encryption-removed": ("edge", _edit("SiteBucket", lambda p: p.pop("BucketEncryption"))),
    "secret-key-removed": ("app", _edit("DatabaseSecret", lambda p: p.pop("KmsKeyId"))),
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
    "new-bucket-unversioned": (
        "edge",
        _new("SiteBucket", lambda p: p.update(VersioningConfiguration={"Status": "Suspended"})),
    ),
    "log-retention-shorter": ("app", _edit("ApiLogGroup", lambda p: p.update(RetentionInDays=1))),
    "flow-logs-removed": ("app", _without("FlowLog")),
    "alb-access-logs-off": ("app", _attribute_off("access_logs.s3.enabled")),
    "database-log-exports-off": (
        "app",
        _edit("DatabaseCluster", lambda p: p.pop("EnableCloudwatchLogsExports")),
    ),
    "alarm-removed": ("app", _without("ApiLatencyAlarm")),
    "alarm-actions-dropped": ("app", _edit("ApiLatencyAlarm", lambda p: p.pop("AlarmActions"))),
    "alarm-actions-disabled": ("app", _edit("ApiLatencyAlarm", lambda p: p.update(ActionsEnabled=False))),
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


# --- the catalogue: checkov's key/value checks -----------------------------------------------------


def test_the_catalogue_is_what_checkov_says() -> None:
    """catalogue.json holds exactly checkov's key/value checks (an entry removed, added or
    changed by hand fails here; `make regen` writes it)."""
    assert json.loads(catalogue.TABLE.read_text())["entries"] == catalogue.generate()
    ids = {e.id for entries in catalogue.table().values() for e in entries}
    assert {"CKV_AWS_7", "CKV_AWS_21", "CKV_AWS_53", "CKV_AWS_158", "CKV_AWS_174"} <= ids


def _unsafe(entry: catalogue.Entry) -> Any:
    """A value the entry fails (MISSING: the property removed)."""
    if entry.negative:
        return entry.values[0]
    if catalogue.ANY in entry.values or not entry.missing_passes:
        return MISSING
    return {(True,): False, (False,): True}.get(tuple(entry.values), "TLSv1")


def _set(props: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = props
    for step in path[:-1]:
        node = node[int(step.strip("[]"))] if step.startswith("[") else node[step]
    if value is MISSING:
        node.pop(path[-1])
    else:
        node[path[-1]] = value


def _catalogue_plants() -> list[tuple[str, str, catalogue.Entry]]:
    """(template, logical ID, entry) for every entry that holds for a resource of production."""
    found = []
    for key in ("app", "edge"):
        for rid, resource in render(config("production"), key)["Resources"].items():
            for entry in catalogue.table().get(resource["Type"], ()):
                value = catalogue.value_at(resource, entry.path)
                if value is not MISSING and entry.passes(value):
                    found.append((key, rid, entry))
    return found


CATALOGUE_PLANTS = _catalogue_plants()


def _planted(key: str, rid: str, entry: catalogue.Entry) -> tuple[Doc, Doc]:
    return _sides(key, _edit(rid, lambda p: _set(p, entry.path, _unsafe(entry))))


def test_the_catalogue_speaks_for_many_of_this_repositorys_properties() -> None:
    checks = {entry.id for _, _, entry in CATALOGUE_PLANTS}
    assert len(checks) >= 12, checks
    assert {"CKV_AWS_7", "CKV_AWS_21", "CKV_AWS_53", "CKV_AWS_158", "CKV_AWS_174"} <= checks


@pytest.mark.parametrize("plant", CATALOGUE_PLANTS, ids=[f"{p[1]}-{p[2].id}" for p in CATALOGUE_PLANTS])
def test_a_property_moved_from_its_safe_value_widens_naming_the_check(plant: Any) -> None:
    key, rid, entry = plant
    before, after = _planted(key, rid, entry)
    found = [w for w in widenings(before["Resources"], after["Resources"]) if w.rule == entry.id]
    assert [w.logical_id for w in found] == [rid]
    assert found[0].reason.startswith(f"{entry.id} {'.'.join(entry.path)} ")
    back = [w for w in widenings(after["Resources"], before["Resources"]) if w.rule == entry.id]
    assert back == []  # the way back is a tightening


@pytest.mark.slow
def test_checkov_newly_fails_each_planted_catalogue_check(tmp_path: Path) -> None:
    for n, (key, rid, entry) in enumerate(CATALOGUE_PLANTS):
        before, after = _planted(key, rid, entry)
        (tmp_path / f"{n}.before.json").write_text(json.dumps(before))
        (tmp_path / f"{n}.after.json").write_text(json.dumps(after))
    failures = _checkov_failures(tmp_path)
    missed = [
        (rid, entry.id)
        for n, (_, rid, entry) in enumerate(CATALOGUE_PLANTS)
        if entry.id not in failures.get(f"{n}.after.json", set()) - failures.get(f"{n}.before.json", set())
    ]
    assert missed == []
