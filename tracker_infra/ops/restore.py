"""Restore an environment's database to a point in time, as a new cluster beside the live one.

  python render.py restore-database --env production --to 2026-12-01T02:55:00Z
  python render.py restore-database --env production --to latest

The new cluster, <stack>-restore-<UTC time>, gets the live cluster's subnet group, security
groups, KMS key, serverless v2 capacity, parameter group, log exports, deletion protection and
tags, then one db.serverless writer; the command waits until both are available and prints the
steps to switch to it (docs/disaster-recovery.md explains them). The live cluster and the stack
are not touched. --to must lie in the cluster's restorable window (DescribeDBClusters' earliest
and latest restorable times).
"""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from ..errors import EXIT_AWS, EXIT_OK, EXIT_USER, UserError
from .aws import Aws, add_env_arguments, load

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "restored",
    EXIT_USER: "a time outside the window or without a time zone; nothing created",
    EXIT_AWS: "the new cluster or its writer did not become available in time",
}

DELAY_SECONDS, ATTEMPTS = 30, 120  # up to an hour each: a restore copies the cluster's volume
# Tag key prefixes RDS refuses in a request: "The string can't be prefixed with aws: or rds:"
# (RDS API Reference, Tag). CloudFormation puts aws:cloudformation:* on every cluster it creates.
RESERVED_TAG_PREFIXES = ("aws:", "rds:")


def parse_time(value: str) -> datetime.datetime | None:
    """``latest`` -> None; an ISO 8601 time with a zone (Z or +hh:mm) -> that time in UTC."""
    if value == "latest":
        return None
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise UserError("--to", "", f"{value!r} is not a time (allowed: latest, or ISO 8601 with "
                        "a zone, e.g. 2026-12-01T02:55:00Z)")
    return when.astimezone(datetime.UTC)


def settable_tags(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """The tags a request may set: those without a reserved prefix."""
    return [t for t in tags if not t["Key"].lower().startswith(RESERVED_TAG_PREFIXES)]


def restore_arguments(source: dict[str, Any], target: str, when: datetime.datetime | None) -> dict[str, Any]:
    """RestoreDBClusterToPointInTime's arguments: a copy of ``source``'s placement and settings."""
    arguments: dict[str, Any] = {
        "DBClusterIdentifier": target,
        "SourceDBClusterIdentifier": source["DBClusterIdentifier"],
        "RestoreType": "full-copy",
        "DBSubnetGroupName": source["DBSubnetGroup"],
        "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]],
        "KmsKeyId": source["KmsKeyId"],
        "DBClusterParameterGroupName": source["DBClusterParameterGroup"],
        "ServerlessV2ScalingConfiguration": {
            "MinCapacity": source["ServerlessV2ScalingConfiguration"]["MinCapacity"],
            "MaxCapacity": source["ServerlessV2ScalingConfiguration"]["MaxCapacity"]},
        "EnableCloudwatchLogsExports": source.get("EnabledCloudwatchLogsExports", []),
        "EnableIAMDatabaseAuthentication": source.get("IAMDatabaseAuthenticationEnabled", False),
        "DeletionProtection": source.get("DeletionProtection", False),
        "CopyTagsToSnapshot": True,
        "Tags": [*settable_tags(source.get("TagList", [])),
                 {"Key": "RestoredFrom", "Value": source["DBClusterIdentifier"]}],
    }
    if when is None:
        arguments["UseLatestRestorableTime"] = True
    else:
        arguments["RestoreToTime"] = when
    return arguments


def next_steps(aws: Aws, restored: str, writer: str) -> str:
    """The switch, as commands: swap the identifiers so every name the stack uses stays valid."""
    cfg, live = aws.cfg, aws.cfg.stack_name
    outputs = aws.outputs(live, cfg.region)
    ecs = (f"aws ecs update-service --region {cfg.region} --cluster {outputs.get('EcsClusterName')} "
           f"--service {outputs.get('ApiServiceName')}")
    rds = f"aws rds modify-db-cluster --region {cfg.region} --apply-immediately --db-cluster-identifier"
    password = (f"aws secretsmanager get-secret-value --region {cfg.region} --secret-id "
                f"{outputs.get('DatabaseSecretArn')} --query SecretString --output text "
                "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"password\"])'")
    return f"""
Restored {restored} (writer {writer}); {live} and the stack are untouched.
Look at the data first (the restored cluster's endpoint, the secret's user name).

Some rows only: copy them back into {live} (pg_dump/psql from a task in the VPC), then delete
{restored}; the stack needs nothing.

Switch the environment to {restored} (the stack names its cluster {live}: the restored one takes
that name, so endpoints, the secret's host, alarms, dashboards and the log group follow):
  1. {ecs} --desired-count 0
  2. {rds} {restored} \\
       --master-user-password "$({password})"
  3. {rds} {live} --new-db-cluster-identifier {live}-replaced
     (wait until {live}-replaced is available)
  4. {rds} {restored} --new-db-cluster-identifier {live}
  5. {ecs} --desired-count {cfg.api.min_tasks} --force-new-deployment
  6. python render.py verify --env {cfg.environment}
Step 2: the restored data holds the password of the restore time; the secret holds today's.
Keep {live}-replaced: the stack's DBInstance resources are still its members (see
docs/disaster-recovery.md, "After a switch").
"""


def restore(aws: Aws, when: datetime.datetime | None) -> int:
    from botocore.exceptions import ClientError, WaiterError

    live = aws.cfg.stack_name
    rds = aws.client("rds")
    try:
        source = rds.describe_db_clusters(DBClusterIdentifier=live)["DBClusters"][0]
    except ClientError as exc:
        raise UserError(f"cluster {live}", "", f"cannot be read: {exc.response['Error']['Message']} "
                        "(allowed: the environment's deployed cluster)") from None
    earliest, latest = source.get("EarliestRestorableTime"), source.get("LatestRestorableTime")
    if earliest is None or latest is None:
        raise UserError(f"cluster {live}", "BackupRetentionPeriod", "has no restorable window yet "
                        "(allowed: a cluster with automated backups)")
    if when is not None and not earliest <= when <= latest:
        raise UserError("--to", "", f"{when.isoformat()} is outside {live}'s restorable window "
                        f"(allowed: {earliest.isoformat()} to {latest.isoformat()}, or latest)")
    stamp = (when or latest).strftime("%Y%m%d-%H%M%S")
    target, writer = f"{live}-restore-{stamp}", f"{live}-restore-{stamp}-writer"
    rds.restore_db_cluster_to_point_in_time(**restore_arguments(source, target, when))
    print(f"restoring {live} at {(when or latest).isoformat()} as {target} ...")
    config = {"Delay": DELAY_SECONDS, "MaxAttempts": ATTEMPTS}
    try:
        rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=target, WaiterConfig=config)
        rds.create_db_instance(DBInstanceIdentifier=writer, DBClusterIdentifier=target,
                               DBInstanceClass="db.serverless", Engine=source["Engine"],
                               PubliclyAccessible=False,
                               Tags=settable_tags(source.get("TagList", [])))
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=writer, WaiterConfig=config)
    except WaiterError as exc:
        print(f"restore did not become available: {exc}; see the RDS console's events for {target}")
        return EXIT_AWS
    print(next_steps(aws, target, writer))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("--to", required=True, metavar="TIME",
                        help="latest, or an ISO 8601 time with a zone (2026-12-01T02:55:00Z)")


def run(args: argparse.Namespace) -> int:
    from .aws import connect

    cfg = load(args.vars, args.env)
    when = parse_time(args.to)  # refused before any AWS call
    return restore(connect(cfg), when)
