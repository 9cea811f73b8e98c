"""samconfig.toml agrees with vars/ and with the rendered templates, so the two cannot drift.

samconfig.toml is hand-written (reviewable, and what `sam` reads); these tests hold it to the
merged vars of every environment: one `<env>` and one `<env>-edge` config-env each and no others,
stack names, regions, template paths that rendering produces, tags, the capabilities the rendered
templates need, and the same keys everywhere (the SAM CLI silently ignores a misspelt key).
That the SAM CLI itself resolves every config-env from the repository root is proved by
tests/test_deploy_rehearsal.py (it runs `sam deploy --config-env X` for each against moto).
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import VARS, config, resources
from tracker_infra.cfn_yaml import load_template
from tracker_infra.config import environments
from tracker_infra.output import render_files
from tracker_infra.rendering import EDGE_REGION, ROOT, Stack, stacks
from tracker_infra.schema import Config

SAMCONFIG = ROOT / "samconfig.toml"
KEYS = {"template_file", "stack_name", "region", "capabilities", "resolve_s3", "s3_prefix", "tags",
        "confirm_changeset", "fail_on_empty_changeset"}
CONFIRMED_ENVIRONMENTS = {"production"}  # a person reads the change set before it runs
# IAM resources that need CAPABILITY_NAMED_IAM when they carry a fixed name
NAME_PROPERTIES = {"AWS::IAM::Role": "RoleName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
                   "AWS::IAM::User": "UserName", "AWS::IAM::Group": "GroupName",
                   "AWS::IAM::InstanceProfile": "InstanceProfileName"}


def samconfig() -> dict[str, Any]:
    return tomllib.loads(SAMCONFIG.read_text())


def config_envs() -> list[tuple[str, str]]:
    """(environment, stack key) for every stack of every environment in vars/."""
    return [(env, stack.key) for env in environments(VARS) for stack in stacks(config(env))]


def config_env_name(env: str, key: str) -> str:
    return env if key == "app" else f"{env}-{key}"


def stack_of(cfg: Config, key: str) -> Stack:
    return next(s for s in stacks(cfg) if s.key == key)


def deploy_settings(name: str) -> dict[str, Any]:
    return dict(samconfig()[name]["deploy"]["parameters"])


def needed_capabilities(template: dict[str, Any]) -> set[str]:
    """What CloudFormation makes a change set of this template acknowledge."""
    needed = set()
    every = resources(template)
    iam = {i: r for i, r in every.items() if r["Type"].startswith("AWS::IAM::")}
    # a SAM function without Role gets a generated role
    implicit_roles = [i for i, r in every.items()
                      if r["Type"] == "AWS::Serverless::Function" and "Role" not in r.get("Properties", {})]
    named = [i for i, r in iam.items() if NAME_PROPERTIES.get(r["Type"]) in r.get("Properties", {})]
    if named:
        needed.add("CAPABILITY_NAMED_IAM")
    elif iam or implicit_roles:
        needed.add("CAPABILITY_IAM")
    transforms = template.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else transforms
    # nested stacks: the SecretsManager transform's hosted rotation, SAM applications
    nested = any(t.startswith("AWS::SecretsManager-") for t in transforms) or any(
        r["Type"] in ("AWS::CloudFormation::Stack", "AWS::Serverless::Application") for r in every.values())
    if nested:
        needed.add("CAPABILITY_AUTO_EXPAND")
    return needed


def test_version_and_config_envs_match_vars() -> None:
    data = samconfig()
    assert data.pop("version") == 0.1
    expected = {config_env_name(env, key) for env, key in config_envs()}
    assert {f"{env}-edge" for env in environments(VARS)} <= expected  # the edge stack is rendered
    assert set(data) == expected
    for name, commands in data.items():
        assert set(commands) == {"deploy"}, name
        assert set(commands["deploy"]) == {"parameters"}, name


@pytest.mark.parametrize(("env", "key"), config_envs())
def test_config_env_agrees_with_vars(env: str, key: str, tmp_path: Path) -> None:
    from samcli.cli.types import CfnTags  # how the SAM CLI reads the tags option

    cfg = config(env)
    stack = stack_of(cfg, key)
    settings = deploy_settings(config_env_name(env, key))
    assert set(settings) == KEYS
    assert settings["stack_name"] == stack.name == (cfg.edge_stack_name if key == "edge" else cfg.stack_name)
    assert settings["region"] == stack.region == (EDGE_REGION if key == "edge" else cfg.region)
    assert settings["s3_prefix"] == stack.name
    assert settings["resolve_s3"] is True
    assert settings["template_file"] == f"rendered/{env}/{stack.output}"
    rendered, _ = render_files(cfg, tmp_path / "rendered")
    assert tmp_path / settings["template_file"] in rendered
    assert (ROOT / settings["template_file"]).is_file()
    assert CfnTags().convert(settings["tags"], None, None) == cfg.tags
    assert settings["confirm_changeset"] is (env in CONFIRMED_ENVIRONMENTS)
    assert settings["fail_on_empty_changeset"] is False


@pytest.mark.parametrize(("env", "key"), config_envs())
def test_capabilities_are_what_the_rendered_template_needs(env: str, key: str) -> None:
    settings = deploy_settings(config_env_name(env, key))
    template = load_template((ROOT / settings["template_file"]).read_text())
    assert set(settings["capabilities"]) == needed_capabilities(template)
    assert len(settings["capabilities"]) == len(set(settings["capabilities"]))


def test_needed_capabilities_sees_named_roles_and_transforms() -> None:
    role = {"Type": "AWS::IAM::Role", "Properties": {}}
    assert needed_capabilities({"Resources": {"R": role}}) == {"CAPABILITY_IAM"}
    named = {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "x"}}
    assert needed_capabilities({"Resources": {"R": named}}) == {"CAPABILITY_NAMED_IAM"}
    rotation = {"Transform": "AWS::SecretsManager-2024-09-16", "Resources": {}}
    assert needed_capabilities(rotation) == {"CAPABILITY_AUTO_EXPAND"}
    function = {"Type": "AWS::Serverless::Function", "Properties": {}}
    sam = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"F": function}}
    assert needed_capabilities(sam) == {"CAPABILITY_IAM"}


# --- scripts/deploy.sh: render, check, then the two config-envs in order ------------------------

DEPLOY_COPY = ("render.py", "tracker_infra", "templates", "partials", "vars", "edge", "rendered",
               "samconfig.toml", "scripts")
STUB = """#!/bin/sh
echo "$*" >> "$STUB_LOG"
case "$*" in *"$STUB_FAIL_ON"*) exit 1 ;; esac
"""


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files deploy.sh needs, committed in a throwaway git repository (tests that change it
    put it back)."""
    import shutil
    import subprocess

    tmp_path = tmp_path_factory.mktemp("deploy-script")
    root = tmp_path / "repo"
    root.mkdir()
    for name in DEPLOY_COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    # the copy is rendered from its own sources, so it starts fresh and clean
    subprocess.run([sys.executable, "render.py", "--all"], cwd=root, check=True, capture_output=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for step in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*git, *step], cwd=root, check=True, capture_output=True)
    stub = tmp_path / "stub"
    stub.write_text(STUB)
    stub.chmod(0o755)
    return root


def run_deploy(root: Path, *args: str, fail_on: str = "never") -> tuple[int, list[str], str]:
    import subprocess

    stub, log = root.parent / "stub", root.parent / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHON": sys.executable, "SAM": str(stub), "CFN_LINT": str(stub),
           "STUB_LOG": str(log), "STUB_FAIL_ON": fail_on}
    done = subprocess.run(["bash", str(root / "scripts" / "deploy.sh"), *args], cwd=root.parent,
                          env=env, capture_output=True, text=True, timeout=120)
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, calls, done.stderr


def test_deploy_script_lints_then_deploys_regional_then_edge(repo_copy: Path) -> None:
    code, calls, stderr = run_deploy(repo_copy, "staging")
    assert code == 0, stderr
    assert calls == ["rendered/staging/app.yaml rendered/staging/edge.yaml",
                     "deploy --config-env staging", "deploy --config-env staging-edge"]


def test_deploy_script_stops_at_the_first_failed_deploy(repo_copy: Path) -> None:
    code, calls, _ = run_deploy(repo_copy, "staging", fail_on="--config-env staging")
    assert code != 0
    assert calls[-1] == "deploy --config-env staging"  # the edge stack is never reached


def test_deploy_script_refuses_output_that_differs_from_the_commit(repo_copy: Path) -> None:
    import subprocess

    dev = repo_copy / "vars" / "dev.yaml"
    data = yaml.safe_load(dev.read_text())
    data["description"] = "changed after the commit"  # any rendered change will do
    dev.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        code, calls, stderr = run_deploy(repo_copy, "dev")
        assert code == 1 and calls == [], stderr
        assert "rendered/dev differs from the commit" in stderr
        code, calls, _ = run_deploy(repo_copy, "--allow-uncommitted", "dev")
        assert code == 0 and calls[-1] == "deploy --config-env dev-edge"
    finally:
        subprocess.run(["git", "checkout", "-q", "--", "vars", "rendered"], cwd=repo_copy, check=True)


@pytest.mark.parametrize("args", [("nope",), ("defaults",), (), ("--allow-uncommitted", "production")])
def test_deploy_script_rejects_bad_arguments(repo_copy: Path, args: tuple[str, ...]) -> None:
    code, calls, stderr = run_deploy(repo_copy, *args)
    assert code == 2 and calls == [], stderr
