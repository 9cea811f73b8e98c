"""The command line behind render.py: parse arguments, call the library, print, set the exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from .errors import (
    EXIT_AWS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STALE,
    EXIT_USER,
    AwsFailure,
    UserError,
    exit_codes_help,
    missing_package,
)
from .rendering import ROOT

HELP = """\
Render the CloudFormation/SAM templates of one or every environment.

  python render.py --env staging        vars/defaults.yaml + vars/staging.yaml -> rendered/staging/
  python render.py --all                every environment found in vars/
  python render.py --all --check        render in memory; exit 3 listing stale files if the
                                        committed rendered/ or docs/architecture/ differs (CI and
                                        pre-commit run this)

Each environment gets two stacks: rendered/<env>/app.yaml (the environment's region) and
rendered/<env>/edge.yaml (us-east-1), plus the edge function's package in rendered/<env>/edge/.
Deploy with: sam deploy --config-env <env>  and  sam deploy --config-env <env>-edge.

Other commands (python render.py COMMAND --help for each):
  diff    what a change does to the rendered templates (against HEAD): dangers, security, cost
  cost    estimated monthly floor of an environment
  graph   Mermaid architecture pictures from the rendered templates
  deploy  render, check, plan and execute both stacks of an environment (make deploy)
  plan    change sets for both stacks of an environment; --execute runs them
  status  stack status, drift status, image, alarms in ALARM, pending subscriptions
  outputs both stacks' outputs (--json)
  drift   detect drift on both stacks and show what differs
  destroy delete a disposable environment
  publish-site      upload a Vite build to an environment's site, then invalidate its HTML
  release-image     run an API image (by digest) in an environment
  promote           run the image one environment runs in another (staging -> production)
  verify            check a deployed environment; pass/fail table, exit 8 on a failure
  restore-database  restore the database to a point in time as a new cluster
  rehearse          plan, execute, status, outputs, verify, drift, destroy against a local moto

""" + exit_codes_help() + "\n"


# Commands besides rendering: name -> module under tracker_infra (dotted) with
# add_arguments(parser) and run(args) -> exit code. Imported only when used, so rendering stays fast.
SUBCOMMANDS = {
    "diff": "review.diff",
    "cost": "review.cost",
    "graph": "review.graph",
    "deploy": "ops.deploy",
    "plan": "ops.plan",
    "status": "ops.status",
    "outputs": "ops.outputs",
    "drift": "ops.drift",
    "destroy": "ops.destroy",
    "publish-site": "ops.publish",
    "release-image": "ops.release",
    "promote": "ops.promote",
    "verify": "ops.verify",
    "restore-database": "ops.restore",
    "rehearse": "ops.rehearse",
}


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
    from .bootstrap import check_permissions
    check_permissions(s.doc for s in summaries)  # the deploy roles can be built for what renders
    # The architecture pictures of every environment rendered, docs/architecture/ beside the
    # output folder.
    from .review.mermaid import architecture_files
    docs_dir = args.out.parent / "docs" / "architecture"
    bootstrap_dir = args.out.parent / "bootstrap"
    files.update(architecture_files(summaries, docs_dir))
    env_dirs = [args.out / cfg.environment for cfg in configs]
    leftovers: list[Path] = []
    if args.all:  # the editors' JSON Schema of the vars files, kept fresh like the templates
        from .schema import json_schema
        files[args.vars / "schema.json"] = json_schema().encode("utf-8")
        # ...the deploy roles of each account (bootstrap/<account>.yaml, beside the output folder)
        from .bootstrap import bootstrap_files
        files.update(bootstrap_files(configs, summaries, bootstrap_dir))
        env_dirs.append(bootstrap_dir)  # ...whose files of accounts no longer in vars/ are leftovers
        # ...samconfig.toml, the sam deploy settings of every stack, beside the output folder
        from .samconfig import samconfig_text
        files[args.out.parent / "samconfig.toml"] = samconfig_text(configs, summaries).encode("utf-8")
        # ...and what environments that no longer exist left behind
        known = set(environments(args.vars))
        if args.out.is_dir():
            env_dirs += [d for d in sorted(args.out.iterdir()) if d.is_dir() and d.name not in known]
        if docs_dir.is_dir():
            leftovers += [p for p in sorted(docs_dir.glob("*.md")) if p.stem not in known]
    if args.check:
        stale = stale_files(files, env_dirs, leftovers)
        for line in stale:
            print(f"stale: {line}")
        if stale:
            paths = [Path(line.split(" (", 1)[0]) for line in stale]
            folders = sorted({f"{root}/" for root in (args.out, docs_dir, args.vars, bootstrap_dir)
                              for path in paths if path.is_relative_to(root)}
                             | {str(path) for path in paths if path.name == "samconfig.toml"})
            print(f"{len(stale)} stale file(s): run `python render.py --all` (or `make regen`, which "
                  f"regenerates every generated file) and commit {' and '.join(folders)}", file=sys.stderr)
            return EXIT_STALE
        print(f"rendered/ is fresh ({len(files)} files, {len(configs)} environments)")
        return EXIT_OK
    write_files(files, env_dirs, leftovers)
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
                                         epilog=exit_codes_help(tuple(module.EXITS), module.EXITS),
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        command = module.run
    else:
        args = _parser().parse_args(argv)
        command = run_render
    timing = None
    if os.environ.get("TRACKER_TIMINGS"):
        from .ops import timing
        timing.start()
    try:
        return command(args)
    except UserError as exc:
        for line in str(exc).splitlines():  # several problems: one line each
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USER
    except AwsFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_AWS
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("tracker_infra"):
            raise
        print(f"error: {missing_package(exc, ROOT)}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (render.py ... | head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line, not a trace
        if type(exc).__module__.startswith("botocore"):  # AWS said no (denied, throttled): no bug
            print(f"error: AWS: {exc}", file=sys.stderr)
            return EXIT_AWS
        print(f"internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in tracker-infra, not in your input: please report it with the "
              "command you ran (set TRACKER_DEBUG=1 for the traceback).", file=sys.stderr)
        if os.environ.get("TRACKER_DEBUG"):
            raise
        return EXIT_INTERNAL
    finally:
        if timing is not None:
            timing.report(argv[0] if argv else "render")
