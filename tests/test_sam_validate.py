"""`sam validate` on every rendered template, as a developer runs it: the venv's SAM CLI, offline.

`sam validate` runs AWS's SAM translator on the template (the transform CloudFormation applies)
and fails on a template it cannot translate; it needs a region and no credentials. cfn-lint, which
`sam validate --lint` would run instead, runs once on every rendered template in `make lint`, in
the region each template names in its Metadata (checked below). The runs go in parallel (each
is about 1.5 s of CPU, mostly the SAM CLI starting); one test per template reports the result.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import VARS, config
from tracker_infra.cfn_yaml import load_template
from tracker_infra.config import environments
from tracker_infra.rendering import ROOT, stacks

SAM = Path(sys.executable).parent / "sam"
TEMPLATES = [(f"rendered/{env}/{stack.output}", stack.region)
             for env in environments(VARS) for stack in stacks(config(env))]
BROKEN = "broken.yaml"  # an edge stack with an event source SAM does not know: must be rejected
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
    text = (ROOT / next(p for p, _ in TEMPLATES if p.endswith("edge.yaml"))).read_text()
    broken.write_text(text.replace("\nResources:\n", "\nResources:\n  BrokenFunction:\n"
                                   "    Type: AWS::Serverless::Function\n    Properties:\n"
                                   "      Runtime: python3.12\n      Handler: handler.handler\n"
                                   "      InlineCode: x\n      Events:\n        Nightly:\n"
                                   "          Type: NoSuchEventSource\n", 1))
    runs = [(path, str(ROOT / path), region) for path, region in TEMPLATES]
    runs.append((BROKEN, str(broken), "us-east-1"))
    env = offline_env(work)
    started = {
        label: subprocess.Popen([str(SAM), "validate", "--template-file", path, "--region", region],
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


@pytest.mark.slow
@pytest.mark.parametrize(("path", "region"), TEMPLATES)
def test_sam_validate_passes(results: Results, path: str, region: str) -> None:
    run = results[path]
    assert run.returncode == 0, run.stdout
    assert "is a valid SAM Template" in run.stdout


@pytest.mark.slow
def test_sam_validate_rejects_an_unknown_event_source(results: Results) -> None:
    run = results[BROKEN]
    assert run.returncode != 0
    assert "NoSuchEventSource" in run.stdout


@pytest.mark.parametrize(("path", "region"), TEMPLATES)
def test_cfn_lint_checks_each_template_in_its_stack_s_region(path: str, region: str) -> None:
    from cfnlint.config import ConfigMixIn

    doc = load_template((ROOT / path).read_text())
    assert doc["Metadata"]["cfn-lint"]["config"] == {"regions": [region]}
    config = ConfigMixIn([])
    config.set_template_args(doc)  # as cfn-lint's runner does for each template
    assert config.regions == [region]
