"""The command line behind render.py: parse arguments, call the library, print, set the exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from .errors import UserError
from .rendering import ROOT

EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_STALE = 0, 1, 2, 3

HELP = """\
Render the CloudFormation/SAM templates of one or every environment.

  python render.py --env staging        vars/defaults.yaml + vars/staging.yaml -> rendered/staging/
  python render.py --all                every environment found in vars/
  python render.py --all --check        render in memory; exit 3 listing stale files if the
                                        committed rendered/ differs (CI and pre-commit run this)

Each environment gets two stacks: rendered/<env>/app.yaml (the environment's region) and
rendered/<env>/edge.yaml (us-east-1), plus the edge function's package in rendered/<env>/edge/.
Deploy with: sam deploy --config-env <env>  and  sam deploy --config-env <env>-edge.

Other commands (python render.py COMMAND --help for each):
  diff    resource- and property-level diff of rendered templates
  cost    estimated monthly floor of an environment
  graph   Mermaid architecture pictures from the rendered templates
  publish-site      upload a Vite build to an environment's site, then invalidate its HTML
  release-image     run an API image (by digest) in an environment
  promote           run the image one environment runs in another (staging -> production)
  verify            check a deployed environment; pass/fail table, exit 4 on a failure
  restore-database  restore the database to a point in time as a new cluster

Exit codes: 0 ok; 2 bad input (one line naming the file, the key and the rule; nothing written);
3 stale output (--check); 1 internal error (please report it).
"""


# Commands besides rendering: name -> module in tracker_infra with add_arguments(parser) and
# run(args) -> exit code. Imported only when used, so rendering stays fast.
SUBCOMMANDS = {"diff": "diff", "cost": "cost", "graph": "graph"}
SUBCOMMANDS["publish-site"] = "ops.publish"
SUBCOMMANDS["release-image"] = "ops.release"
SUBCOMMANDS["promote"] = "ops.promote"
SUBCOMMANDS["verify"] = "ops.verify"
SUBCOMMANDS["restore-database"] = "ops.restore"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="render.py", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--env", action="append", metavar="ENV",
                       help="an environment to render (a vars/ENV.yaml file); repeatable")
    which.add_argument("--all", action="store_true", help="render every environment in vars/")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 3 and list the files that are stale")
    parser.add_argument("--vars", type=Path, default=Path(os.path.relpath(ROOT / "vars")),
                        metavar="DIR", help="variables folder (default: vars/)")
    parser.add_argument("--out", type=Path, default=Path(os.path.relpath(ROOT / "rendered")),
                        metavar="DIR",
                        help="output folder (default: rendered/)")
    return parser


def run_render(args: argparse.Namespace) -> int:
    from .config import environments, load_all
    from .output import render_files, stale_files, write_files

    started = time.perf_counter()
    configs = load_all(args.vars, None if args.all else args.env)
    files: dict[Path, bytes] = {}
    summaries = []
    for cfg in configs:
        env_files, env_summaries = render_files(cfg, args.out)
        files.update(env_files)
        summaries.extend(env_summaries)
    if args.all:  # the editors' JSON Schema of the vars files, kept fresh like the templates
        from .schema import json_schema
        files[args.vars / "schema.json"] = json_schema().encode("utf-8")
        # ...and the architecture pictures, docs/architecture/ beside the output folder
        from .graph import architecture_files
        files.update(architecture_files(summaries, args.out.parent / "docs" / "architecture"))
    env_dirs = [args.out / cfg.environment for cfg in configs]
    if args.all and args.out.is_dir():  # folders of environments that no longer exist
        known = set(environments(args.vars))
        env_dirs += [d for d in sorted(args.out.iterdir()) if d.is_dir() and d.name not in known]
    if args.check:
        stale = stale_files(files, env_dirs)
        for line in stale:
            print(f"stale: {line}")
        if stale:
            print(f"{len(stale)} stale file(s): run `python render.py --all` and commit rendered/",
                  file=sys.stderr)
            return EXIT_STALE
        print(f"rendered/ is fresh ({len(files)} files, {len(configs)} environments)")
        return EXIT_OK
    write_files(files, env_dirs)
    for s in summaries:
        print(f"{s.stack.name:<28} {s.stack.region:<12} {s.resources:>4} resources "
              f"{s.size / 1024:>7.1f} KB  {s.path}")
    print(f"rendered {len(configs)} environment(s) in {time.perf_counter() - started:.2f} s")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(f"tracker_infra.{SUBCOMMANDS[argv[0]]}")
        parser = argparse.ArgumentParser(prog=f"render.py {argv[0]}", description=module.__doc__,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        command = module.run
    else:
        args = _parser().parse_args(argv)
        command = run_render
    try:
        return command(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line, not a trace
        print(f"internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in tracker-infra, not in your input: please report it with the "
              "command you ran (set TRACKER_DEBUG=1 for the traceback).", file=sys.stderr)
        if os.environ.get("TRACKER_DEBUG"):
            raise
        return EXIT_INTERNAL
