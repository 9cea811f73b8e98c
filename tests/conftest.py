from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws_standins import Moto
from tests.helpers import ENVS, config, render
from tests.review_checkout import runtime_install
from tests.standins import build_dist
from tracker_infra.rehearsal.server import MotoServer
from tracker_infra.schema import Config


@pytest.fixture(scope="session")
def configs() -> dict[str, Config]:
    return {env: config(env) for env in ENVS}


@pytest.fixture(scope="session")
def app(configs: dict[str, Config]) -> dict[str, dict[str, Any]]:
    """env -> the parsed regional stack, rendered in memory from the current vars."""
    return {env: render(cfg, "app") for env, cfg in configs.items()}


@pytest.fixture(scope="module")
def runtime_python() -> Path:
    """The python of the runtime install (requirements.txt only, as `make render` builds it)."""
    return runtime_install()


@pytest.fixture(scope="session")
def dist() -> Path:
    """The Vite React build of tests/browser (npm ci only when package-lock.json changed)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the Vite build needs {', '.join(missing)}: see tests/browser/README.md")
    return build_dist()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """A local moto server for one test module (tests/aws_standins.py fakes environments in it)."""
    # ECS services report 3 running tasks, every environment's minimum or more (moto: none).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_ECS_SERVICE_RUNNING", "3")
        workdir = tmp_path_factory.mktemp("moto")
        recording = workdir / "recording.jsonl"  # every request, for the deploy role's check
        server = MotoServer.start(workdir / "moto.log", env={
            "MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)})
    try:
        yield Moto(server, recording)
    finally:
        server.stop()


# --- test tiers ------------------------------------------------------------------------------
# `make check` (the fast loop) runs every test not marked slow; `make test` (CI) runs them all, on
# two workers (pytest-xdist, --dist loadgroup). Slow tests are marked one by one
# (@pytest.mark.slow): those that run the SAM CLI, checkov, a browser, Mermaid's parser, a
# PostgreSQL server, hypothesis over generated environments, or need a module fixture that does
# (a deployed moto environment, the Vite build, the runtime install). A module's fast tests stay
# in the fast loop even when others beside them are slow.
# A group runs whole on one worker, in one go: each module is a group, so its module-scoped
# servers and builds start once. The property tests are two groups: property 10 (cfn-lint on
# generated environments, the longest single test) alone, so that it starts first on one worker
# while the other takes the rest, and properties 1 to 9 together, which share their rendered
# environments. The Vite build (session fixture `dist`) is shared by two modules, which therefore
# share a group.
SHARED_GROUPS = {"test_release.py": "vite", "test_csp_browser.py": "vite"}
# The scheduler (--no-loadscope-reorder) hands out groups in collection order; the longest go
# first (measured with --durations), so that no worker is left alone with a long one at the end.
LONGEST_FIRST = ("test_widening.py", "properties-lint", "test_review_table.py", "test_review_adversarial.py",
                 "test_ops_moto.py", "test_rehearse_command.py", "test_deploy_rehearsal.py", "vite",
                 "properties",
                 "test_graph.py", "test_verify.py", "test_sam_validate.py", "test_restore.py")


def _group(item: pytest.Item) -> str:
    module = item.path.name
    if module == "test_properties.py":
        return "properties-lint" if item.name.startswith("test_property_10_") else "properties"
    return SHARED_GROUPS.get(module, module)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The garbage collector, tuned for this suite: what the imports built (cfn-lint's resource
    schemas, the SAM translator, boto3's models: millions of objects that live to the end) is
    frozen out of its scans, and it runs every 20,000 allocations rather than every 700. The
    tests build and keep many large parsed templates; with the defaults the collector walked them
    all again and again (a third of the property tests' time)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_group(item), len(rank)))  # stable: the rest keep their order
