from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ENVS, config, render
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
