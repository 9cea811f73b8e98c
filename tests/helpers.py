"""Shared test helpers: load configs, render stacks in memory, query parsed templates."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tracker_infra.cfn_yaml import walk  # noqa: F401 - the tests take it from here
from tracker_infra.config import load_all, merge, read_yaml
from tracker_infra.output import check_template
from tracker_infra.rendering import ROOT, Stack, render_stack, stacks
from tracker_infra.review.example import copy_sources  # noqa: F401 - the tests take it from here
from tracker_infra.review.template import Template
from tracker_infra.schema import Config

VARS = ROOT / "vars"
ENVS = ("dev", "staging", "production")


def config(env: str) -> Config:
    return load_all(VARS, [env])[0]


def config_with(env: str, changes: dict[str, Any]) -> Config:
    """The env's merged vars with ``changes`` merged on top, validated (raises on invalid)."""
    data = merge(merge(read_yaml(VARS / "defaults.yaml"), read_yaml(VARS / f"{env}.yaml")), changes)
    return Config.model_validate(data)


def stack_of(cfg: Config, key: str) -> Stack:
    return next(s for s in stacks(cfg) if s.key == key)


def render(cfg: Config, key: str = "app") -> dict[str, Any]:
    """Render one stack in memory and parse it back (long-form intrinsics: {"Ref": ...})."""
    stack = stack_of(cfg, key)
    return check_template(render_stack(cfg, stack), f"{cfg.environment}/{stack.output}")


def resources(doc: dict[str, Any], type_: str | None = None) -> dict[str, dict[str, Any]]:
    """Logical ID -> resource, optionally only those of one CloudFormation type."""
    view = Template(doc)
    return {k: view.resources[k] for k in (view.of_type(type_) if type_ else view.resources)}


def props(doc: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return doc["Resources"][logical_id].get("Properties", {})


def copy_vars(tmp_path: Path, edits: dict[str, dict[str, Any]] | None = None) -> Path:
    """A copy of vars/ under tmp_path; ``edits`` maps file name -> mapping merged into it."""
    target = tmp_path / "vars"
    shutil.copytree(VARS, target)
    for name, change in (edits or {}).items():
        path = target / name
        path.write_text(yaml.safe_dump(merge(read_yaml(path), change), sort_keys=False))
    return target


CREATE_ID = {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": [
    "/", {"Ref": "AWS::StackId"}]}]}]}]}  # the first 8 hex digits of the stack's ID


def per_create(value: Any) -> str:
    """The name template of a name built by partials' with_create_id (``<name>-${CreateId}``);
    fails unless ``value`` is exactly that form: Fn::Sub of the template with CreateId taken
    from the stack's ID."""
    assert isinstance(value, dict) and list(value) == ["Fn::Sub"], value
    template, variables = value["Fn::Sub"]
    assert variables == {"CreateId": CREATE_ID}, variables
    assert "${CreateId}" in template, template
    return str(template)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to prove nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@functools.lru_cache(maxsize=1)
def _good_render() -> Path:
    """rendered/ from a copy of vars/, made once per test process (removed at exit)."""
    from tracker_infra.cli import main

    work = Path(tempfile.mkdtemp(prefix="good-render-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    assert main(["--all", "--vars", str(copy_vars(work)), "--out", str(work / "rendered")]) == 0
    return work / "rendered"


def assert_rejected(tmp_path: Path, capsys: Any, edits: dict[str, dict[str, Any]],
                    blamed: str, key: str, words: str) -> str:
    """Render good vars, then vars with ``edits``: exit 2, one line "error: <blamed>: <key>: ..."
    holding ``words``, no traceback, nothing under the output folder changed. Returns the line."""
    from tracker_infra.cli import main

    out = tmp_path / "rendered"
    shutil.copytree(_good_render(), out)
    before = snapshot(out)
    capsys.readouterr()
    bad = copy_vars(tmp_path / "bad", edits)
    assert main(["--all", "--vars", str(bad), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: {bad / blamed}: {key}: "), lines[0]
    assert words in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert snapshot(out) == before
    return lines[0]


