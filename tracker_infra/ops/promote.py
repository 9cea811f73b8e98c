"""Promote the API image one environment runs to another: the same digest, nothing rebuilt.

  python render.py promote --from staging --to production \\
      --from-profile tracker-staging --to-profile tracker-production

Reads the digest the source's regional stack runs (its ApiImageDigest), checks that exactly that
digest is in the target's own repository, and releases it there as release-image does. The
environments live in different accounts, so the image must be copied into the target's
repository first, unchanged (its digest kept):

  crane copy <staging ApiRepositoryUri>@sha256:<digest> <production ApiRepositoryUri>:<tag>

Each side is reached with its own AWS profile (--from-profile, --to-profile; default: the
ordinary credential chain), checked against its vars account and region before any other call.
"""

from __future__ import annotations

import argparse

from ..errors import EXIT_AWS, EXIT_OK, EXIT_USER, UserError
from .aws import add_vars_argument, load
from .release import release, running_digest

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "released (or already running)",
    EXIT_USER: "also when the source runs no image yet; nothing changed",
    EXIT_AWS: "the update failed and CloudFormation rolled it back",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="ENV",
                        help="the environment whose image is promoted (e.g. staging)")
    parser.add_argument("--to", dest="target", required=True, metavar="ENV",
                        help="the environment that gets it (e.g. production)")
    parser.add_argument("--from-profile", metavar="PROFILE", help="AWS profile of the source")
    parser.add_argument("--to-profile", metavar="PROFILE", help="AWS profile of the target")
    add_vars_argument(parser)


def run(args: argparse.Namespace) -> int:
    from .aws import connect, session_for

    if args.source == args.target:
        raise UserError("--to", "", f"is the same environment as --from ({args.source}) "
                        "(allowed: another environment)")
    source, target = load(args.vars, args.source), load(args.vars, args.target)
    source_aws = connect(source, session_for(args.from_profile, "--from-profile"))
    digest = running_digest(source_aws)
    if not digest:
        raise UserError(f"stack {source.stack_name}", "Parameters.ApiImageDigest", "is empty: "
                        f"{source.environment} runs no image yet (allowed: a released environment)")
    print(f"{source.environment} runs {digest}")
    return release(connect(target, session_for(args.to_profile, "--to-profile")), digest)
