"""Delete a disposable environment: both stacks and everything in them.

  python render.py destroy --env dev           asks you to type the environment's name
  python render.py destroy --env dev --yes     no question (CI)

Only for an environment whose vars say `lifecycle: disposable`; a protected one is refused
before anything is called. Steps: stop the server access logs of the stack's buckets, empty
every S3 bucket of the stack (all object versions and delete markers; CloudFormation cannot
delete a bucket that holds anything), delete the edge stack, then the regional stack; a bucket
that filled again meanwhile (logs are delivered late) is emptied again and the deletion retried,
at most DELETE_ATTEMPTS times (its ECR repository is emptied by CloudFormation: EmptyOnDelete).

Lambda@Edge: CloudFront keeps replicas of the edge function for hours after the distribution is
gone, and until then the function cannot be deleted. The edge stack keeps the function when it
is deleted (its DeletionPolicy); should the deletion still fail on it, the stack is deleted again
retaining the function. Either way the command prints the function it left and the exact
command that deletes it later.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import EXIT_AWS, EXIT_OK, EXIT_USER, UserError
from .aws import Aws, add_env_arguments, connect, lifecycle_file, load_config
from .events import EventStream

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "deleted (possibly leaving the edge function, as printed)",
    EXIT_USER: "refused or bad input; nothing deleted",
    EXIT_AWS: "a stack could not be deleted",
}

REPLICATED_TYPES = ("AWS::Lambda::Function", "AWS::Lambda::Version")


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; the number deleted."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if keys:  # a page holds at most 1,000 entries: one DeleteObjects call each
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def _still_there(aws: Aws, region: str, function: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        aws.client("lambda", region).get_function(FunctionName=function)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True


# Deletions of a stack whose buckets filled again meanwhile (access logs and CloudFront logs are
# delivered late, best effort): each is preceded by emptying them again.
DELETE_ATTEMPTS = 3


def _empty(aws: Aws, name: str, region: str, buckets: list[str]) -> None:
    s3 = aws.client("s3", region)
    for bucket in buckets:
        count = empty_bucket(s3, bucket)
        print(f"{name}: emptied {bucket} ({count} versions and markers)")


def _stop_logging(aws: Aws, name: str, region: str, buckets: list[str]) -> None:
    """Server access logging off on the stack's buckets, so no new log lands in its log bucket
    while the stack is deleted."""
    s3 = aws.client("s3", region)
    for bucket in buckets:
        if s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled"):
            s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})
            print(f"{name}: stopped the access logs of {bucket}")


def _delete(aws: Aws, name: str, region: str, events: EventStream,
            **retain: Any) -> dict[str, Any] | None:
    aws.client("cloudformation", region).delete_stack(StackName=name, **retain)
    return aws.wait_for_stack(name, region, events)


def _live(resources: list[dict[str, Any]], type_: str) -> list[str]:
    """Physical IDs of the stack's resources of this type that still exist."""
    return [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == type_
            and r.get("PhysicalResourceId") and r["ResourceStatus"] != "DELETE_COMPLETE"]


def _delete_once(aws: Aws, name: str, region: str,
                 events: EventStream) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the stack once settled, or None when gone; its DELETE_FAILED resources)"""
    stack = _delete(aws, name, region, events)
    if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
        return stack, []
    return stack, [r for r in aws.resources(name, region) if r["ResourceStatus"] == "DELETE_FAILED"]


def _delete_emptying(aws: Aws, name: str, region: str,
                     events: EventStream) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Delete the stack; while buckets that filled again fail it, empty them and retry."""
    for attempt in range(2, DELETE_ATTEMPTS + 1):
        stack, failed = _delete_once(aws, name, region, events)
        refilled = [r["PhysicalResourceId"] for r in failed if r["ResourceType"] == "AWS::S3::Bucket"]
        if not refilled:
            return stack, failed
        print(f"{name}: {', '.join(refilled)} filled again (late log deliveries); emptying and "
              f"deleting again ({attempt} of {DELETE_ATTEMPTS})")
        _empty(aws, name, region, refilled)
    return _delete_once(aws, name, region, events)


def delete_stack(aws: Aws, name: str, region: str) -> list[str]:
    """Empty the stack's buckets and delete it; the Lambda functions left behind (replicas)."""
    before = aws.resources(name, region)
    functions, buckets = _live(before, "AWS::Lambda::Function"), _live(before, "AWS::S3::Bucket")
    _stop_logging(aws, name, region, buckets)
    _empty(aws, name, region, buckets)
    print(f"{name}: deleting (the stack's events follow)", flush=True)
    events = aws.events(aws.stack_id(name, region), region)
    stack, failed = _delete_emptying(aws, name, region, events)
    if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":  # kept by DeletionPolicy?
        return [f for f in functions if _still_there(aws, region, f)]
    return _retain_replicas(aws, name, region, stack, failed, events)


def _retain_replicas(aws: Aws, name: str, region: str, stack: dict[str, Any],
                     failed: list[dict[str, Any]], events: EventStream) -> list[str]:
    """Only the Lambda@Edge function (and its version) failed: keep them, delete the rest."""
    replicas = [r for r in failed if r["ResourceType"] in REPLICATED_TYPES]
    if not failed or len(replicas) < len(failed):
        for line in list(aws.failures(name, region))[:10]:
            print(f"  failed: {line}", file=sys.stderr)
        raise StackNotDeleted(f"{name} ended {stack['StackStatus']}")
    stack = _delete(aws, name, region, events, RetainResources=[r["LogicalResourceId"] for r in replicas])
    if stack is not None and stack["StackStatus"] != "DELETE_COMPLETE":
        raise StackNotDeleted(f"{name} ended {stack['StackStatus']} after retaining the edge function")
    return [r["PhysicalResourceId"] for r in replicas if r["ResourceType"] == "AWS::Lambda::Function"]


class StackNotDeleted(Exception):
    pass


def refuse_protected(args: argparse.Namespace, lifecycle: str) -> None:
    if lifecycle != "disposable":
        raise UserError(lifecycle_file(args), "lifecycle", f"is {lifecycle!r}: destroy deletes only a "
                        "disposable environment (allowed: disposable); nothing was deleted")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("--yes", action="store_true",
                        help="do not ask for the environment's name (for scripts and CI)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    refuse_protected(args, cfg.lifecycle)
    aws = connect(cfg)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("--yes", "", "destroy without --yes needs a terminal to confirm (allowed: "
                            "--yes, or run it from a terminal); nothing was deleted")
        typed = input(f"Delete {cfg.stack_name} and {cfg.edge_stack_name} in account {aws.account}, "
                      "data included? Type the environment's name: ")
        if typed.strip() != cfg.environment:
            raise UserError("--yes", "", "the name typed was not the environment's; nothing was deleted")
    left = []
    for name, region in reversed(aws.stacks()):  # edge first, then regional
        if aws.describe_stack(name, region) is None:
            print(f"{name}: not deployed")
            continue
        try:
            left += [(region, r) for r in delete_stack(aws, name, region)]
        except StackNotDeleted as exc:
            print(f"error: {exc}; run destroy again once the failures above are fixed", file=sys.stderr)
            return EXIT_AWS
        print(f"{name}: deleted")
    for region, function in left:
        print(f"left: Lambda@Edge function {function} (CloudFront removes its replicas within a few "
              "hours of the distribution's deletion). Delete it then with:\n"
              f"  aws lambda delete-function --region {region} --function-name {function}")
    return 0
