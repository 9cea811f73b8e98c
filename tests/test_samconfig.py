"""samconfig.toml agrees with vars/ and with the rendered templates, so the two cannot drift.

samconfig.toml is hand-written (reviewable, and what `sam` reads); these tests hold it to the
merged vars of every environment: one `<env>` and one `<env>-edge` config-env each and no others,
stack names, regions, template paths that rendering produces, tags, the capabilities the rendered
templates need, and the same keys everywhere (the SAM CLI silently ignores a misspelt key).
That the SAM CLI itself resolves every config-env from the repository root is proved by
tests/test_deploy_rehearsal.py (it runs `sam deploy --config-env X` for each against moto).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

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
