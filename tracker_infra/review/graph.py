"""Mermaid architecture pictures of an environment, generated from its rendered templates.

  python render.py graph --env staging     -> docs/architecture/staging.md
  python render.py graph --all             every environment in vars/
  python render.py graph --all --check     exit 3 listing the pictures that are stale

`python render.py --all` writes (and `--all --check` checks) the same files, so a pull request
shows the picture change beside the template change.

Each file holds two flowcharts, drawn from the parsed templates, never by hand:
- Traffic: who may talk to whom, from the security-group rules (ingress and egress, inline and
  standalone, both sides of a flow checked), CloudFront's viewer policy, origins (with their Origin
  Access Control) and edge-function triggers, each edge labelled with its ports or event.
- Resources: one subgraph per stack and, inside it, one per layer. Layers come from the
  CloudFormation type (TYPE_LAYERS); a type without a layer of its own (log group, role, bucket,
  function) joins the layer of the resources that reference it. Edges are the Ref/GetAtt/Sub/
  DependsOn references between the resources drawn.
Node ids are the logical IDs prefixed by the stack key (`app_ApiService`, `edge_Distribution`), so
a template change moves few lines of Mermaid.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import EXIT_OK, EXIT_STALE, EXIT_USER, UserError
from ..output import StackSummary
from ..rendering import ROOT
from .mermaid import architecture_files

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {EXIT_OK: "", EXIT_USER: "", EXIT_STALE: "with --check"}
DOCS = ROOT / "docs" / "architecture"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--env", action="append", metavar="ENV",
                       help="an environment (a vars/ENV.yaml file); repeatable")
    which.add_argument("--all", action="store_true", help="every environment in vars/")
    parser.add_argument("--vars", type=Path, default=Path(os.path.relpath(ROOT / "vars")),
                        metavar="DIR", help="variables folder (default: vars/)")
    parser.add_argument("--out", type=Path, default=Path(os.path.relpath(DOCS)), metavar="DIR",
                        help="where the pictures go (default: docs/architecture/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 3 and list the pictures that are stale")
    parser.add_argument("--stdout", action="store_true",
                        help="print the Markdown instead of writing it (one environment)")


def run(args: argparse.Namespace) -> int:
    from ..config import load_all
    from ..output import render_files, stale_files, write_files

    configs = load_all(args.vars, None if args.all else args.env)
    if args.stdout and len(configs) != 1:
        raise UserError("--stdout", "", "prints one environment (allowed: with one --env)")
    summaries: list[StackSummary] = []
    for cfg in configs:  # in memory only: nothing under rendered/ is written
        summaries.extend(render_files(cfg, Path("rendered"))[1])
    pictures = architecture_files(summaries, args.out)
    if args.stdout:
        sys.stdout.write(next(iter(pictures.values())).decode("utf-8"))
        return EXIT_OK
    if args.check:
        stale = stale_files(pictures, [])
        for line in stale:
            print(f"stale: {line}")
        return EXIT_STALE if stale else EXIT_OK
    write_files(pictures, [])
    for path in sorted(pictures):
        print(f"wrote {path}")
    return EXIT_OK
