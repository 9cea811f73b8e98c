"""Both stacks' outputs: what a release script or a person needs (bucket, distribution,
endpoints, secret ARN, repository, image digest).

  python render.py outputs --env staging          one table per stack
  python render.py outputs --env staging --json   {"<stack>": {"<OutputKey>": "<value>"}, ...};
                                                  null for a stack that does not exist
"""

from __future__ import annotations

import argparse
import json

from ..errors import EXIT_OK, EXIT_USER
from .aws import add_env_arguments, connect, load_config

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "",
    EXIT_USER: "",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    aws = connect(load_config(args))
    found = {name: (aws.outputs(name, region) if aws.describe_stack(name, region) else None)
             for name, region in aws.stacks()}
    if args.json:
        print(json.dumps(found, indent=2, sort_keys=True))
        return 0
    for (name, region), outputs in zip(aws.stacks(), found.values(), strict=True):
        state = ": not deployed" if outputs is None else ": no outputs" if not outputs else ""
        print(f"{name} ({region}){state}")
        for key, value in sorted((outputs or {}).items()):
            print(f"  {key:<34} {value}")
    return 0
