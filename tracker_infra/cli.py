"""The command line behind render.py: parse arguments, call the library, print, set the exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
Deploy with: make deploy ENV=staging  (python render.py deploy --env staging: render, check,
plan, then execute the regional stack and the edge stack; docs/deploying.md).

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


def did_you_mean(word: str, choices: list[str]) -> str:
    """'; did you mean X?' when one of ``choices`` is close to ``word``, else ''."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (exit 2), a mistyped option answered with the option
    it is closest to."""

    def error(self, message: str) -> Any:
        options = [o for o in self._option_string_actions if o.startswith("--")]
        unknown = message.split(": ", 1)[1].split() if message.startswith("unrecognized") else []
        hints = "".join(did_you_mean(word.split("=")[0], options) for word in unknown if word.startswith("-"))
        self.exit(EXIT_USER, f"error: {self.prog}: {message}{hints} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
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


@dataclass
class Rendered:
    """What a render produces: files to write, folders it owns (files in them it did not produce
    are removed), other files to remove, and the stacks' summaries."""

    files: dict[Path, bytes] = field(default_factory=dict)
    env_dirs: list[Path] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    summaries: list[Any] = field(default_factory=list)


def _stacks(configs: list[Any], out: Path) -> Rendered:
    from .bootstrap import check_permissions
    from .output import render_files

    done = Rendered(env_dirs=[out / cfg.environment for cfg in configs])
    for cfg in configs:
        env_files, env_summaries = render_files(cfg, out)
        done.files.update(env_files)
        done.summaries.extend(env_summaries)
    check_permissions(s.doc for s in done.summaries)  # the deploy roles can be built for what renders
    return done


def _account_files(args: argparse.Namespace, configs: list[Any], done: Rendered) -> None:
    """--all: the files that depend on every environment, beside the output folder (the vars'
    JSON Schema, each account's bootstrap stack, samconfig.toml), and what environments no longer
    in vars/ left behind."""
    from .bootstrap import bootstrap_files
    from .config import environments
    from .samconfig import samconfig_text
    from .schema import json_schema

    bootstrap_dir = args.out.parent / "bootstrap"
    done.files[args.vars / "schema.json"] = json_schema().encode("utf-8")
    done.files.update(bootstrap_files(configs, done.summaries, bootstrap_dir))
    done.env_dirs.append(bootstrap_dir)  # its files of accounts no longer in vars/ are leftovers
    done.files[args.out.parent / "samconfig.toml"] = samconfig_text(configs, done.summaries).encode("utf-8")
    known = set(environments(args.vars))
    if args.out.is_dir():
        done.env_dirs += [d for d in sorted(args.out.iterdir()) if d.is_dir() and d.name not in known]
    docs_dir = args.out.parent / "docs" / "architecture"
    if docs_dir.is_dir():
        done.leftovers += [p for p in sorted(docs_dir.glob("*.md")) if p.stem not in known]


def _report_stale(args: argparse.Namespace, done: Rendered, environments: int) -> int:
    from .output import stale_files

    stale = stale_files(done.files, done.env_dirs, done.leftovers)
    for line in stale:
        print(f"stale: {line}")
    if not stale:
        print(f"rendered/ is fresh ({len(done.files)} files, {environments} environments)")
        return EXIT_OK
    paths = [Path(line.split(" (", 1)[0]) for line in stale]
    roots = (args.out, args.out.parent / "docs" / "architecture", args.vars, args.out.parent / "bootstrap")
    folders = sorted({f"{root}/" for root in roots for path in paths if path.is_relative_to(root)}
                     | {str(path) for path in paths if path.name == "samconfig.toml"})
    print(f"{len(stale)} stale file(s): run `python render.py --all` (or `make regen`, which "
          f"regenerates every generated file) and commit {' and '.join(folders)}", file=sys.stderr)
    return EXIT_STALE


def run_render(args: argparse.Namespace) -> int:
    from .config import load_all
    from .output import write_files
    from .review.mermaid import architecture_files

    started = time.perf_counter()
    configs = load_all(args.vars, None if args.all else args.env)
    done = _stacks(configs, args.out)
    # the architecture pictures of every environment rendered, docs/architecture/ beside the output
    done.files.update(architecture_files(done.summaries, args.out.parent / "docs" / "architecture"))
    if args.all:
        _account_files(args, configs, done)
    if args.check:
        return _report_stale(args, done, len(configs))
    write_files(done.files, done.env_dirs, done.leftovers)
    for s in done.summaries:
        print(f"{s.stack.name:<28} {s.stack.region:<12} {s.resources:>4} resources "
              f"{s.size / 1024:>7.1f} KB  {s.path}")
    print(f"rendered {len(configs)} environment(s) in {time.perf_counter() - started:.2f} s")
    return EXIT_OK


def _command(argv: list[str]) -> tuple[Any, argparse.Namespace]:
    """(the function to run, its parsed arguments): a subcommand's module, else rendering."""
    if argv and not argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
        raise UserError(argv[0], "", f"is not a command{did_you_mean(argv[0], list(SUBCOMMANDS))} "
                        f"(allowed: {', '.join(SUBCOMMANDS)}; or --env ENV / --all to render)")
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(f"tracker_infra.{SUBCOMMANDS[argv[0]]}")
        parser = Parser(prog=f"render.py {argv[0]}", description=module.__doc__,
                                         epilog=exit_codes_help(module.EXITS),
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(parser)
        return module.run, parser.parse_args(argv[1:])
    return run_render, _parser().parse_args(argv)


def _unexpected(exc: Exception) -> int:
    """The last line of defence: one line, not a trace (TRACKER_DEBUG=1 raises it again)."""
    if type(exc).__module__.startswith("botocore"):  # AWS said no (denied, throttled): no bug
        print(f"error: AWS: {exc}", file=sys.stderr)
        return EXIT_AWS
    print(f"internal error: {type(exc).__name__}: {exc}\n"
          "This is a bug in tracker-infra, not in your input: please report it with the "
          "command you ran (set TRACKER_DEBUG=1 for the traceback).", file=sys.stderr)
    if os.environ.get("TRACKER_DEBUG"):
        raise exc
    return EXIT_INTERNAL


def _missing(exc: ModuleNotFoundError) -> int:
    if (exc.name or "").startswith("tracker_infra"):
        raise exc
    print(f"error: {missing_package(exc, ROOT)}", file=sys.stderr)
    return EXIT_USER


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    timing = None
    try:
        command, args = _command(argv)
        if os.environ.get("TRACKER_TIMINGS"):
            from .ops import timing
            timing.start()
        return int(command(args))
    except UserError as exc:
        for line in str(exc).splitlines():  # several problems: one line each
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USER
    except AwsFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_AWS
    except ModuleNotFoundError as exc:
        return _missing(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (render.py ... | head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line, not a trace
        return _unexpected(exc)
    finally:
        if timing is not None:
            timing.report(argv[0] if argv else "render")
