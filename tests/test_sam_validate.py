"""`sam validate --lint` on every rendered template, as CI runs it: the venv's SAM CLI, offline.

With --lint the SAM CLI runs cfn-lint (its SAM transform included) and fails on any match,
warnings too; it needs a region and no credentials. The runs go in parallel (each is about 2.5 s
of CPU, mostly the SAM CLI starting), one test per template reports the result.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import VARS, config
from tracker_infra.config import environments
from tracker_infra.rendering import ROOT, stacks

SAM = Path(sys.executable).parent / "sam"
TEMPLATES = [(f"rendered/{env}/{stack.output}", stack.region)
             for env in environments(VARS) for stack in stacks(config(env))]
BROKEN = "broken.yaml"  # a copy with a dangling Ref: the check must reject it
Results = dict[str, subprocess.CompletedProcess[str]]


def offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAM_"))}
    env.update({"HOME": str(home), "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": str(home / "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials")})
    return env


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    work = tmp_path_factory.mktemp("sam-validate")
    broken = work / BROKEN
    text = (ROOT / TEMPLATES[0][0]).read_text()
    broken.write_text(text.replace("\nResources:\n", "\nResources:\n  DanglingRef:\n"
                                   "    Type: AWS::SNS::Topic\n    Properties:\n"
                                   "      TopicName: !Ref NoSuchResource\n", 1))
    runs = [(path, str(ROOT / path), region) for path, region in TEMPLATES]
    runs.append((BROKEN, str(broken), "us-east-1"))
    env = offline_env(work)
    started = {
        label: subprocess.Popen([str(SAM), "validate", "--lint", "--template-file", path, "--region", region],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True)
        for label, path, region in runs
    }
    done = {}
    try:
        for label, process in started.items():
            output, _ = process.communicate(timeout=180)
            done[label] = subprocess.CompletedProcess(process.args, process.returncode, output)
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    yield done


def test_every_stack_of_every_environment_is_checked() -> None:
    assert len(TEMPLATES) == 2 * len(environments(VARS))
    assert all((ROOT / path).is_file() for path, _ in TEMPLATES)


@pytest.mark.parametrize(("path", "region"), TEMPLATES)
def test_sam_validate_lint_passes(results: Results, path: str, region: str) -> None:
    run = results[path]
    assert run.returncode == 0, run.stdout
    assert "is a valid SAM Template" in run.stdout


def test_sam_validate_lint_rejects_a_dangling_ref(results: Results) -> None:
    run = results[BROKEN]
    assert run.returncode != 0
    assert "NoSuchResource" in run.stdout
