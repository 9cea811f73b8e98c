"""Release an API image by digest: the regional stack's ApiImageDigest parameter, nothing else.

  python render.py release-image --env staging <ApiRepositoryUri>@sha256:<64 hex>

Checks that the repository is the environment's own (the stack's ApiRepositoryUri output) and
that the digest is in it (ECR DescribeImages), then updates the regional stack with the previous
template and every other parameter's previous value, waits, and reports the digest it replaced
(the one to release again to roll back). No re-render, no template change.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from ..errors import EXIT_AWS, EXIT_OK, EXIT_USER, UserError
from .aws import Aws, add_env_arguments, load, required_outputs

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "released (or already running)",
    EXIT_USER: ("not a digest reference, another repository, a digest not pushed, a stack busy or "
        "missing; nothing changed"),
    EXIT_AWS: "the update failed and CloudFormation rolled it back",
}

IMAGE = re.compile(r"^(?P<repository>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")
PARAMETER = "ApiImageDigest"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]  # as samconfig.toml deploys it
UPDATE_DELAY_SECONDS, UPDATE_ATTEMPTS = 15, 160  # up to 40 minutes: the service must stabilise
COPY_HINT = ("copy it unchanged first, keeping its digest: crane copy <source-uri>@<digest> "
             "<repository-uri>:<tag>  (or skopeo copy --preserve-digests); docker pull/tag/push "
             "may change the digest")


def parse_image(image: str) -> tuple[str, str]:
    match = IMAGE.match(image)
    if not match:
        raise UserError("IMAGE", "", f"{image!r} is not a digest reference (allowed: "
                        "<repository-uri>@sha256:<64 lower-case hex digits>)")
    return match["repository"], match["digest"]


def running_digest(aws: Aws) -> str:
    """The digest the regional stack runs (its ApiImageDigest parameter; empty before a release)."""
    stack = aws.describe_stack(aws.cfg.stack_name, aws.cfg.region)
    if stack is None:
        raise UserError(f"stack {aws.cfg.stack_name}", "", f"does not exist in {aws.cfg.region} "
                        f"(allowed: a deployed environment; make deploy ENV={aws.cfg.environment})")
    return next((p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == PARAMETER), "")


def release(aws: Aws, digest: str, repository: str | None = None) -> int:
    """Run ``digest`` in the regional stack; ``repository``, when given, must be the stack's own."""
    from botocore.exceptions import ClientError, WaiterError

    cfg = aws.cfg
    name, region = cfg.stack_name, cfg.region
    (own,) = required_outputs(aws.outputs(name, region), name, ("ApiRepositoryUri",), cfg.environment)
    if repository is not None and repository != own:
        raise UserError("IMAGE", "repository", f"{repository} is not {cfg.environment}'s "
                        f"repository (allowed: {own}, the stack's ApiRepositoryUri); {COPY_HINT}")
    try:
        aws.client("ecr").describe_images(repositoryName=own.split("/", 1)[1],
                                          imageIds=[{"imageDigest": digest}])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ImageNotFoundException":
            raise
        raise UserError("IMAGE", "digest", f"{digest} is not in {own} (allowed: an image pushed "
                        f"there); {COPY_HINT}") from None
    stack: dict[str, Any] = aws.describe_stack(name, region) or {}
    status = stack["StackStatus"]
    if status.endswith("_IN_PROGRESS") or status.endswith("_FAILED") or status == "ROLLBACK_COMPLETE":
        raise UserError(f"stack {name}", "StackStatus", f"is {status} (allowed: a stack whose last "
                        "operation completed; wait for it, or fix it first)")
    previous = running_digest(aws)
    if previous == digest:
        print(f"{name} already runs {digest}; nothing to do")
        return 0
    started = time.perf_counter()
    parameters = [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                  for p in stack["Parameters"] if p["ParameterKey"] != PARAMETER]
    cloudformation = aws.client("cloudformation", region)
    cloudformation.update_stack(
        StackName=name, UsePreviousTemplate=True, Capabilities=CAPABILITIES,
        Parameters=[*parameters, {"ParameterKey": PARAMETER, "ParameterValue": digest}])
    print(f"releasing {digest} to {name} (was {previous or 'none'}) ...")
    try:
        cloudformation.get_waiter("stack_update_complete").wait(
            StackName=name, WaiterConfig={"Delay": UPDATE_DELAY_SECONDS, "MaxAttempts": UPDATE_ATTEMPTS})
    except WaiterError:
        final = (aws.describe_stack(name, region) or {}).get("StackStatus", "gone")
        print(f"release failed: {name} is {final}; it still runs {previous or 'no image'} "
              "(see the stack's events)")
        return EXIT_AWS
    print(f"released {digest} to {name} in {time.perf_counter() - started:.0f} s")
    if previous:
        print(f"roll back with: render.py release-image --env {cfg.environment} {own}@{previous}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("image", metavar="IMAGE", help="<repository-uri>@sha256:<digest>")


def run(args: argparse.Namespace) -> int:
    from .aws import connect

    cfg = load(args.vars, args.env)
    repository, digest = parse_image(args.image)
    return release(connect(cfg), digest, repository)
