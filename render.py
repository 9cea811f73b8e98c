#!/usr/bin/env python3
"""Render tracker-infra's CloudFormation templates: python render.py --help"""

import os
import sys

# pydantic looks for plugins in the metadata of every installed distribution when the first
# model is built (tens of milliseconds in the dev install); tracker-infra uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from tracker_infra.cli import main  # noqa: E402 - after the setting above

if __name__ == "__main__":
    sys.exit(main())
