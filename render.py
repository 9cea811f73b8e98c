#!/usr/bin/env python3
"""Render tracker-infra's CloudFormation templates: python render.py --help"""

import gc
import os
import sys

# A short-lived command that builds hundreds of thousands of objects (parsed templates, the
# schema's models) and keeps most of them to the end: Python's cyclic collector would walk them
# again and again for nothing (about a tenth of a cold render). Reference counting still frees
# everything that is dropped.
gc.disable()
# pydantic looks for plugins in the metadata of every installed distribution when the first
# model is built (tens of milliseconds in the dev install); tracker-infra uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

try:
    from tracker_infra.cli import main  # noqa: E402 - after the settings above
except ModuleNotFoundError as exc:  # the install is incomplete: name what is missing, exit 2
    from pathlib import Path

    from tracker_infra.errors import EXIT_USER, missing_package  # standard library only

    print(f"error: {missing_package(exc, Path(__file__).resolve().parent)}", file=sys.stderr)
    sys.exit(EXIT_USER)

if __name__ == "__main__":
    sys.exit(main())
