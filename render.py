#!/usr/bin/env python3
"""Render tracker-infra's CloudFormation templates: python render.py --help"""

import sys

from tracker_infra.cli import main

if __name__ == "__main__":
    sys.exit(main())
