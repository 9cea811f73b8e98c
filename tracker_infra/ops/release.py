"""Release an API image by digest: the regional stack's ApiImageDigest parameter, nothing else.

  python render.py release-image --env staging <ApiRepositoryUri>@sha256:<64 hex>

Checks that the repository is the environment's own (the stack's ApiRepositoryUri output) and
that the digest is in it (ECR DescribeImages), then updates the regional stack with the previous
template and every other parameter's previous value, waits while printing the stack's events,
and reports the digest it replaced (the one to release again to roll back). No re-render, no
template change.
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
# CAPABILITY_IAM as samconfig.toml deploys the regional stack; CAPABILITY_AUTO_EXPAND for a stack
# still running a template from before the stack's own rotation function (the AWS::SecretsManager
# transform's hosted rotation), which UsePreviousTemplate reuses until the next deploy.
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
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


def _check_image(aws: Aws, own: str, digest: str, repository: str | None) -> None:
    """The image is in the environment's own repository (its digest pushed there)."""
    from botocore.exceptions import ClientError

    if repository is not None and repository != own:
        raise UserError("IMAGE", "repository", f"{repository} is not {aws.cfg.environment}'s "
                        f"repository (allowed: {own}, the stack's ApiRepositoryUri); {COPY_HINT}")
    try:
        aws.client("ecr").describe_images(repositoryName=own.split("/", 1)[1],
                                          imageIds=[{"imageDigest": digest}])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ImageNotFoundException":
            raise
        raise UserError("IMAGE", "digest", f"{digest} is not in {own} (allowed: an image pushed "
                        f"there); {COPY_HINT}") from None


def _idle(aws: Aws) -> dict[str, Any]:
    """The regional stack, refused while an operation runs or after one failed."""
    name = aws.cfg.stack_name
    stack: dict[str, Any] = aws.describe_stack(name, aws.cfg.region) or {}
    status = stack["StackStatus"]
    if status.endswith(("_IN_PROGRESS", "_FAILED")) or status == "ROLLBACK_COMPLETE":
        raise UserError(f"stack {name}", "StackStatus", f"is {status} (allowed: a stack whose last "
                        "operation completed; wait for it, or fix it first)")
    return stack


def _update(aws: Aws, stack: dict[str, Any], digest: str) -> str:
    """Update the stack's image parameter (everything else as it was), streaming its events;
    the status it ends in."""
    name, region = aws.cfg.stack_name, aws.cfg.region
    parameters = [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                  for p in stack["Parameters"] if p["ParameterKey"] != PARAMETER]
    events = aws.events(stack.get("StackId", name), region)
    aws.client("cloudformation", region).update_stack(
        StackName=name, UsePreviousTemplate=True, Capabilities=CAPABILITIES,
        Parameters=[*parameters, {"ParameterKey": PARAMETER, "ParameterValue": digest}])
    settled = aws.wait_for_stack(name, region, events)
    return str((settled or {}).get("StackStatus", "gone"))


def release(aws: Aws, digest: str, repository: str | None = None) -> int:
    """Run ``digest`` in the regional stack; ``repository``, when given, must be the stack's own."""
    cfg = aws.cfg
    name = cfg.stack_name
    (own,) = required_outputs(aws.outputs(name, cfg.region), name, ("ApiRepositoryUri",), cfg.environment)
    _check_image(aws, own, digest, repository)
    stack = _idle(aws)
    previous = running_digest(aws)
    if previous == digest:
        print(f"{name} already runs {digest}; nothing to do")
        return EXIT_OK
    started = time.perf_counter()
    print(f"releasing {digest} to {name} (was {previous or 'none'}; the stack's events follow)", flush=True)
    status = _update(aws, stack, digest)
    if status != "UPDATE_COMPLETE":
        print(f"release failed: {name} is {status}; it still runs {previous or 'no image'} "
              "(see the events above)")
        return EXIT_AWS
    print(f"released {digest} to {name} in {time.perf_counter() - started:.0f} s")
    if previous:
        print(f"roll back with: render.py release-image --env {cfg.environment} {own}@{previous}")
    return EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("image", metavar="IMAGE", help="<repository-uri>@sha256:<digest>")


def run(args: argparse.Namespace) -> int:
    from .aws import connect

    cfg = load(args.vars, args.env)
    repository, digest = parse_image(args.image)
    return release(connect(cfg), digest, repository)
