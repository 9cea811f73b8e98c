from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import ENVS, config, render
from tracker_infra.schema import Config


@pytest.fixture(scope="session")
def configs() -> dict[str, Config]:
    return {env: config(env) for env in ENVS}


@pytest.fixture(scope="session")
def app(configs: dict[str, Config]) -> dict[str, dict[str, Any]]:
    """env -> the parsed regional stack, rendered in memory from the current vars."""
    return {env: render(cfg, "app") for env, cfg in configs.items()}
