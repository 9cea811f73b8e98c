"""What the release, verify and restore commands share: the --env/--vars arguments, the exit code
of a failed operation, and the stack outputs a command cannot work without."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UserError
from ..rendering import ROOT
from ..schema import Config

# The environment did not pass (verify) or an AWS operation did not complete (a stack update that
# rolled back, a restore that never became available). 0, 1, 2 and 3 are render.py's own.
EXIT_FAILED = 4


def add_env_arguments(parser: argparse.ArgumentParser, flag: str = "--env") -> None:
    parser.add_argument(flag, required=True, metavar="ENV", help="the environment (vars/ENV.yaml)")
    add_vars_argument(parser)


def add_vars_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vars", type=Path, default=Path(os.path.relpath(ROOT / "vars")),
                        metavar="DIR", help="variables folder (default: vars/)")


def load(vars_dir: Path, env: str) -> Config:
    from ..config import load_environment

    return load_environment(vars_dir, env)


def required_outputs(outputs: dict[str, str], stack: str, keys: tuple[str, ...]) -> list[str]:
    """The values of ``keys`` among a stack's outputs; UserError naming the first one missing."""
    for key in keys:
        if not outputs.get(key):
            raise UserError(f"stack {stack}", f"Outputs.{key}", "missing (allowed: a deployed "
                            "stack with this output; deploy it first: make deploy ENV=<env>)")
    return [outputs[key] for key in keys]
