from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws_standins import Moto
from tests.helpers import ENVS, config, render
from tests.moto_server import MotoServer
from tests.standins import build_dist
from tracker_infra.schema import Config


@pytest.fixture(scope="session")
def configs() -> dict[str, Config]:
    return {env: config(env) for env in ENVS}


@pytest.fixture(scope="session")
def app(configs: dict[str, Config]) -> dict[str, dict[str, Any]]:
    """env -> the parsed regional stack, rendered in memory from the current vars."""
    return {env: render(cfg, "app") for env, cfg in configs.items()}


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
        server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield Moto(server)
    finally:
        server.stop()
