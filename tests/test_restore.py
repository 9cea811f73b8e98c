"""restore-database against the fake environment's Aurora cluster in a local moto server.

moto models RestoreDBClusterToPointInTime, CreateDBInstance and the availability waiters; the
tests record the arguments the command sends (botocore's provide-client-params event on the
session it is given) and read the restored cluster and its writer back from moto.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws_standins import FakeEnvironment, Moto, deploy_fake_environment
from tests.helpers import config
from tracker_infra.cli import main
from tracker_infra.ops.aws import connect
from tracker_infra.ops.restore import restore


@pytest.fixture(scope="module")
def deployed_staging(moto: Moto) -> FakeEnvironment:
    """The fake staging environment, made once for the module (``staging`` undoes each restore)."""
    moto.reset()
    return deploy_fake_environment(moto, config("staging"))


@pytest.fixture
def staging(deployed_staging: FakeEnvironment, moto: Moto, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Iterator[FakeEnvironment]:
    """The module's environment through a session of this test (the recorders the tests register
    on it go with it); the clusters and instances a test's restore made are deleted after it."""
    env = deployed_staging.with_session(moto.session(deployed_staging.cfg.account))
    rds = env.client("rds")
    live_clusters = set(clusters(env))
    live_instances = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
    moto.use(monkeypatch, tmp_path, {"default": env.cfg.account})
    try:
        yield env
    finally:
        for instance in rds.describe_db_instances()["DBInstances"]:
            if instance["DBInstanceIdentifier"] not in live_instances:
                rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"],
                                       SkipFinalSnapshot=True)
        for cluster in set(clusters(env)) - live_clusters:
            rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)
            # moto keeps the automated snapshot it named after the cluster and the minute; a
            # second restore to the same time within that minute would collide with it
            for snapshot in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]:
                if snapshot["DBClusterIdentifier"] == cluster:
                    rds.delete_db_cluster_snapshot(
                        DBClusterSnapshotIdentifier=snapshot["DBClusterSnapshotIdentifier"])
        assert set(clusters(env)) == live_clusters


def recorded_restore(env: FakeEnvironment,
                     when: datetime.datetime | None) -> tuple[int, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []
    env.session.events.register("provide-client-params.rds.RestoreDBClusterToPointInTime",
                                lambda params, **_: calls.append(dict(params)))
    return restore(connect(env.cfg, env.session), when), calls


def clusters(env: FakeEnvironment) -> dict[str, dict[str, Any]]:
    return {c["DBClusterIdentifier"]: c for c in env.client("rds").describe_db_clusters()["DBClusters"]}


@pytest.mark.slow
def test_restore_latest_copies_the_live_clusters_placement(
        staging: FakeEnvironment, moto: Moto, capsys: pytest.CaptureFixture[str]) -> None:
    live = clusters(staging)["tracker-staging"]
    mark = moto.recorded()
    code, calls = recorded_restore(staging, None)
    assert moto.denied_to_the_deploy_role(staging.cfg, mark) == []  # as staging's deploy role

    assert code == 0
    (call,) = calls
    target = call.pop("DBClusterIdentifier")
    assert re.fullmatch(r"tracker-staging-restore-\d{8}-\d{6}", target)
    assert call == {
        "SourceDBClusterIdentifier": "tracker-staging",
        "RestoreType": "full-copy",
        "UseLatestRestorableTime": True,
        "DBSubnetGroupName": "tracker-staging-database",
        "VpcSecurityGroupIds": [live["VpcSecurityGroups"][0]["VpcSecurityGroupId"]],
        "KmsKeyId": "arn:aws:kms:us-east-1:222222222222:key/fake",
        "DBClusterParameterGroupName": live["DBClusterParameterGroup"],
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 1.0, "MaxCapacity": 4.0},
        "EnableCloudwatchLogsExports": ["postgresql"],
        "EnableIAMDatabaseAuthentication": False,
        "DeletionProtection": False,
        "CopyTagsToSnapshot": True,
        "Tags": [{"Key": "Environment", "Value": "staging"},
                 {"Key": "RestoredFrom", "Value": "tracker-staging"}],
    }
    assert live["VpcSecurityGroups"][0]["VpcSecurityGroupId"].startswith("sg-")
    # The new cluster and its serverless writer exist; the live cluster is untouched.
    restored = clusters(staging)[target]
    assert restored["Status"] == "available"
    writer = staging.client("rds").describe_db_instances(
        DBInstanceIdentifier=f"{target}-writer")["DBInstances"][0]
    assert (writer["DBClusterIdentifier"], writer["DBInstanceClass"]) == (target, "db.serverless")
    assert clusters(staging)["tracker-staging"]["DBClusterMembers"] == live["DBClusterMembers"]
    # The switch, spelled out with this environment's names.
    out = capsys.readouterr().out
    assert ("--db-cluster-identifier tracker-staging --new-db-cluster-identifier "
            "tracker-staging-replaced") in out
    assert f"--db-cluster-identifier {target} --new-db-cluster-identifier tracker-staging" in out
    assert "--cluster tracker-staging --service tracker-staging-api --desired-count 0" in out


@pytest.mark.slow
def test_restore_to_a_time_inside_the_window(staging: FakeEnvironment) -> None:
    live = clusters(staging)["tracker-staging"]
    when = live["EarliestRestorableTime"].astimezone(datetime.UTC)

    code, (call,) = recorded_restore(staging, when)

    assert code == 0
    assert call["RestoreToTime"] == when
    assert "UseLatestRestorableTime" not in call
    assert call["DBClusterIdentifier"] == f"tracker-staging-restore-{when:%Y%m%d-%H%M%S}"


@pytest.mark.slow
@pytest.mark.parametrize("to, message", [
    ("2020-01-01T00:00:00Z", "error: --to: 2020-01-01T00:00:00+00:00 is outside tracker-staging's "
                             "restorable window (allowed: "),
    ("2026-12-01T02:55:00", "error: --to: '2026-12-01T02:55:00' is not a time (allowed: latest, or ISO"),
    ("yesterday", "error: --to: 'yesterday' is not a time"),
])
def test_restore_refuses_a_bad_time_and_creates_nothing(
        staging: FakeEnvironment, to: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = set(clusters(staging))

    assert main(["restore-database", "--env", "staging", "--to", to]) == 2

    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(message)
    assert set(clusters(staging)) == before
