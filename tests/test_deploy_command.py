"""`render.py deploy` (and `make deploy`, which runs it): render, check the output against the
commit, cfn-lint, then plan and execute, stopping at the first failure.

The commands run in-process on a committed copy of vars/ and rendered/ in a throwaway git
repository; cfn-lint is a logging stub (CFN_LINT) and the plan-and-execute step is recorded
(the step itself runs against moto in tests/test_ops_moto.py)."""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import copy_sources
from tracker_infra.cli import main
from tracker_infra.ops import plan

STUB = """#!/bin/sh
echo "cfn-lint $*" >> "$STUB_LOG"
case "$*" in *"$STUB_FAIL_ON"*) echo "E3001 a planted problem"; exit 2 ;; esac
"""
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_sources(("vars", "rendered", "docs"), tmp_path_factory.mktemp("deploy") / "repo")
    for step in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*GIT, *step], cwd=root, check=True, capture_output=True)
    (root.parent / "cfn-lint").write_text(STUB)
    (root.parent / "cfn-lint").chmod(0o755)
    return root


@pytest.fixture
def deploy(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """deploy(*args, fail_on=...) -> (exit code, the steps run, stdout + stderr)."""
    log = repo.parent / "calls.log"
    steps: list[str] = []

    def planned(args: argparse.Namespace, cfg: Any) -> int:
        steps.append(f"plan and execute {cfg.environment} yes={args.yes}")
        return 0

    monkeypatch.setattr(plan, "plan_and_execute", planned)
    monkeypatch.setenv("CFN_LINT", str(repo.parent / "cfn-lint"))
    monkeypatch.setenv("STUB_LOG", str(log))

    def run(*args: str, fail_on: str = "never") -> tuple[int, list[str], str]:
        monkeypatch.setenv("STUB_FAIL_ON", fail_on)
        log.unlink(missing_ok=True)
        steps.clear()
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(["deploy", *args, "--vars", str(repo / "vars"), "--rendered", str(repo / "rendered")])
        lint = log.read_text().splitlines() if log.exists() else []
        return code, [line.replace(str(repo) + "/", "") for line in lint] + steps, out.getvalue()

    yield run
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=repo, check=True)


def test_deploy_renders_lints_then_plans_and_executes(deploy: Any) -> None:
    code, steps, out = deploy("--env", "staging", "--yes")
    assert code == 0, out
    assert steps == ["cfn-lint rendered/staging/app.yaml rendered/staging/edge.yaml",
                     "plan and execute staging yes=True"]
    assert out.index("==> render staging") < out.index("==> check") < out.index("==> plan and deploy")
    assert out.rstrip().endswith("==> staging deployed")


def test_a_lint_problem_stops_before_the_plan(deploy: Any) -> None:
    code, steps, out = deploy("--env", "dev", fail_on="edge.yaml")
    assert code == 2 and steps[-1].startswith("cfn-lint"), out
    assert "E3001 a planted problem" in out and "cfn-lint reported problems" in out
    assert "nothing was deployed" in out


def test_output_that_differs_from_the_commit_is_refused(deploy: Any, repo: Path) -> None:
    dev = repo / "vars" / "dev.yaml"
    data = yaml.safe_load(dev.read_text())
    data["description"] = "changed after the commit"  # any rendered change will do
    dev.write_text(yaml.safe_dump(data, sort_keys=False))
    code, steps, out = deploy("--env", "dev")
    assert code == 2 and steps == [], out
    assert ("rendered/dev: differs from the commit (2 file(s): rendered/dev/app.yaml, "
            "rendered/dev/edge.yaml)") in out.replace(str(repo) + "/", "")
    code, steps, out = deploy("--env", "dev", "--allow-uncommitted")
    assert code == 0 and steps[-1] == "plan and execute dev yes=False", out


@pytest.mark.parametrize("args, message", [
    (("--env", "nope"), "nope.yaml"),
    (("--env", "production", "--allow-uncommitted"), "--allow-uncommitted: is refused for production"),
    # no terminal and no --yes: refused before rendering or calling anything
    (("--env", "staging"), "lifecycle: is protected: executing without a saved plan needs a terminal"),
])
def test_bad_arguments_are_refused_before_anything_runs(deploy: Any, args: tuple[str, ...],
                                                         message: str) -> None:
    code, steps, out = deploy(*args)
    assert code == 2 and steps == [], out
    assert message in out and "==> render" not in out and out.count("error:") == 1
