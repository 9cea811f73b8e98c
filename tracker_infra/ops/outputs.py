"""Both stacks' outputs: what a release script or a person needs (bucket, distribution,
endpoints, secret ARN, repository, image digest).

  python render.py outputs --env staging          one table per stack
  python render.py outputs --env staging --json   {"<stack>": {"<OutputKey>": "<value>"}, ...};
                                                  null for a stack that does not exist

Exit codes: 0 ok; 2 bad input or the wrong account/region (one line).
"""

from __future__ import annotations

import argparse
import json

from .aws import add_env_arguments, connect, load_config


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
        print(f"{name} ({region})" + ("" if outputs is not None else ": not deployed"))
        for key, value in sorted((outputs or {}).items()):
            print(f"  {key:<34} {value}")
    return 0
