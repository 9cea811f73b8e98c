"""Loading, merging and validating vars/: merge semantics, every schema rule's message, no writes on error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import VARS, assert_rejected, config_with, copy_vars, render
from tracker_infra.cli import main
from tracker_infra.config import merge
from tracker_infra.errors import UserError
from tracker_infra.schema import json_schema


def test_merge_mappings_merge_key_by_key() -> None:
    base = {"a": {"x": 1, "y": {"deep": 1, "keep": 2}}, "b": 1}
    over = {"a": {"y": {"deep": 9}}, "c": 3}
    assert merge(base, over) == {"a": {"x": 1, "y": {"deep": 9, "keep": 2}}, "b": 1, "c": 3}


def test_merge_lists_and_scalars_replace() -> None:
    base = {"emails": ["a@x.io", "b@x.io"], "n": 1, "m": {"k": 1}}
    over = {"emails": ["c@x.io"], "n": 2, "m": "scalar replaces mapping"}
    assert merge(base, over) == {"emails": ["c@x.io"], "n": 2, "m": "scalar replaces mapping"}


def test_merge_does_not_mutate_inputs() -> None:
    base = {"a": {"x": 1}}
    merge(base, {"a": {"x": 2}})
    assert base == {"a": {"x": 1}}


def test_environment_file_overrides_defaults(configs: dict[str, Any]) -> None:
    # defaults.yaml says 2 NAT gateways; dev.yaml says 1.
    assert configs["dev"].network.nat_gateways == 1
    assert configs["staging"].network.nat_gateways == 2
    # a list in the env file replaces the default list outright
    assert configs["production"].monitoring.alarm_emails == [
        "devops-team@communitytracker.example.com", "oncall@communitytracker.example.com"]
    assert configs["staging"].monitoring.alarm_emails == ["devops-team@communitytracker.example.com"]


def test_seed_values_per_environment(configs: dict[str, Any]) -> None:
    expected = {
        "dev": ("10.0.0.0/16", 0.5, 2, 256, 512, 1, 3, 7, "dev.communitytracker.example.com"),
        "staging": ("10.1.0.0/16", 1, 4, 512, 1024, 2, 6, 30, "staging.communitytracker.example.com"),
        "production": ("10.2.0.0/16", 2, 16, 1024, 2048, 3, 20, 90, "communitytracker.example.com"),
    }
    for env, (cidr, lo, hi, cpu, mem, tmin, tmax, days, domain) in expected.items():
        c = configs[env]
        got = (c.network.vpc_cidr, c.database.min_acu, c.database.max_acu, c.api.cpu, c.api.memory,
               c.api.min_tasks, c.api.max_tasks, c.monitoring.log_retention_days, c.frontend.domain)
        assert got == (cidr, lo, hi, cpu, mem, tmin, tmax, days, domain), env
        assert c.tags == {"Environment": env, "Application": "community-activity-tracker",
                          "CostCenter": "engineering", "Owner": "devops-team", "ManagedBy": "sam",
                          "Project": "community-tracker"}


# Each rule: (file to edit, change merged into it, expected file in the message, key path,
# words the message must contain).
REJECTIONS = [
    ("staging.yaml", {"api": {"cpu": 256, "memory": 4096}}, "staging.yaml", "api.memory",
     "not a Fargate pair"),
    ("staging.yaml", {"api": {"cpu": 300}}, "staging.yaml", "api.cpu", "not a Fargate size"),
    ("staging.yaml", {"database": {"min_acu": 0.25}}, "staging.yaml", "database.min_acu",
     "0.5 to 256 in steps of 0.5"),
    ("staging.yaml", {"database": {"max_acu": 3.3}}, "staging.yaml", "database.max_acu",
     "steps of 0.5"),
    ("staging.yaml", {"database": {"min_acu": 8, "max_acu": 4}}, "staging.yaml",
     "database.max_acu", "max_acu >= min_acu"),
    ("staging.yaml", {"api": {"min_tasks": 7}}, "staging.yaml", "api.max_tasks",
     "max_tasks >= min_tasks"),
    ("staging.yaml", {"network": {"vpc_cidr": "10.1.0.0/33"}}, "staging.yaml", "network.vpc_cidr",
     "CIDR"),
    ("staging.yaml", {"network": {"vpc_cidr": "8.8.0.0/16"}}, "staging.yaml", "network.vpc_cidr",
     "private range"),
    ("staging.yaml", {"network": {"vpc_cidr": "10.16.0.0/12"}}, "staging.yaml", "network.vpc_cidr",
     "/16 to /24"),
    ("staging.yaml", {"network": {"vpc_cidr": "10.0.128.0/20"}}, "staging.yaml",
     "network.vpc_cidr", "overlaps dev"),
    ("staging.yaml", {"monitoring": {"log_retention_days": 10}}, "staging.yaml",
     "monitoring.log_retention_days", "not a CloudWatch Logs retention"),
    ("staging.yaml", {"monitoring": {"alarm_emails": ["not-an-email"]}}, "staging.yaml",
     "monitoring.alarm_emails.0", "not an e-mail address"),
    ("staging.yaml", {"frontend": {"domain": "Bad_Domain"}}, "staging.yaml", "frontend.domain",
     "not a domain name"),
    ("staging.yaml", {"frontend": {"certificate_arn":
     "arn:aws:acm:eu-west-1:222222222222:certificate/22222222-2222-4222-8222-222222222222"}},
     "staging.yaml", "frontend.certificate_arn", "us-east-1 only"),
    ("staging.yaml", {"api": {"certificate_arn": "arn:aws:acm:us-east-1:999999999999:certificate/"
                              "22222222-2222-4222-8222-222222222221"}},
     "staging.yaml", "api.certificate_arn", "the environment's account"),
    ("staging.yaml", {"api": {"certificate_arn": "nope"}}, "staging.yaml", "api.certificate_arn",
     "not an ACM certificate ARN"),
    ("staging.yaml", {"databse": {"min_acu": 1}}, "staging.yaml", "databse", "unknown key"),
    ("defaults.yaml", {"api": {"health_check": {"timeot_seconds": 5}}}, "defaults.yaml",
     "api.health_check.timeot_seconds", "unknown key"),
    ("staging.yaml", {"environment": "stage"}, "staging.yaml", "environment", "allowed: 'staging'"),
    ("staging.yaml", {"tags": {"Environment": "prod"}}, "staging.yaml", "tags.Environment",
     "the environment name"),
    ("defaults.yaml", {"tags": {"Owner": "devops#team"}}, "defaults.yaml", "tags.Owner",
     "not a valid tag value"),
    ("staging.yaml", {"tags": {"aws:owner": "x"}}, "staging.yaml", "tags.aws:owner",
     "not a tag key"),
    ("staging.yaml", {"account": 222222222222}, "staging.yaml", "account", "valid string"),
    ("staging.yaml", {"api": {"cpu": "512"}}, "staging.yaml", "api.cpu", "valid integer"),
    ("staging.yaml", {"lifecycle": "keep"}, "staging.yaml", "lifecycle",
     "'disposable' or 'protected'"),
    ("staging.yaml", {"api": {"container_port": 443}}, "staging.yaml", "api.container_port",
     "greater than or equal to 1024"),
    ("production.yaml", {"api": {"domain": "api.staging.communitytracker.example.com"}},
     "staging.yaml", "api.domain", "already used by production"),
]


@pytest.mark.parametrize(("name", "change", "blamed", "key", "words"), REJECTIONS,
                         ids=[f"{r[3]}:{r[4]}" for r in REJECTIONS])
def test_schema_rule_rejects_with_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, change: dict[str, Any],
        blamed: str, key: str, words: str) -> None:
    line = assert_rejected(tmp_path, capsys, {name: change}, blamed, key, words)
    assert "allowed" in line or "valid" in line

def test_missing_key_names_the_environment_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    vars_dir = copy_vars(tmp_path)
    text = (vars_dir / "dev.yaml").read_text().replace("  min_acu: 0.5\n", "")
    (vars_dir / "dev.yaml").write_text(text)
    assert main(["--env", "dev", "--vars", str(vars_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {vars_dir / 'dev.yaml'}: database.min_acu: is missing (allowed: set it "
                   f"here or in {vars_dir / 'defaults.yaml'})")
    assert not (tmp_path / "out").exists()


def test_unknown_environment_lists_the_known_ones(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--env", "qa", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "qa.yaml: no such environment 'qa' (allowed: dev, production, staging)" in err


def test_schema_json_is_fresh() -> None:
    assert (VARS / "schema.json").read_text() == json_schema()


def test_schema_json_documents_every_key_and_forbids_unknown_ones() -> None:
    schema = json.loads(json_schema())
    models = [schema, *schema["$defs"].values()]
    for model in models:
        assert model.get("additionalProperties") is False, model.get("title")
        assert "required" not in model  # each file holds part of the variables
    top = schema["properties"]
    for key in ("environment", "account", "region", "network", "database", "api", "frontend",
                "monitoring", "tags"):
        assert key in top
    for name, field in schema["$defs"]["Database"]["properties"].items():
        assert field.get("description"), f"database.{name} has no description"


def test_vars_files_point_editors_at_the_schema() -> None:
    for path in VARS.glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=./schema.json\n"), path


# --- no YAML injection: free text is rejected or arrives exactly as written ---------------------

FREE_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(description=FREE_TEXT, owner=FREE_TEXT, cost_center=FREE_TEXT)
def test_free_text_is_rejected_or_arrives_exactly(description: str, owner: str,
                                                  cost_center: str) -> None:
    changes = {"description": description, "tags": {"Owner": owner, "CostCenter": cost_center}}
    try:
        cfg = config_with("staging", changes)
    except Exception:  # noqa: BLE001 - rejected by the schema: the other allowed outcome
        return
    doc = render(cfg, "app")
    assert doc["Description"].startswith(description + " - staging regional stack")
    vpc_tags = {t["Key"]: t["Value"] for t in doc["Resources"]["VPC"]["Properties"]["Tags"]}
    assert vpc_tags["Owner"] == owner
    assert vpc_tags["CostCenter"] == cost_center
    assert set(doc) >= {"Resources", "Outputs"}


@settings(max_examples=100, deadline=None)
@given(label=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True))
def test_domains_arrive_exactly(label: str) -> None:
    domain = f"{label}.communitytracker.example.com"
    try:
        cfg = config_with("staging", {"api": {"domain": domain}})
    except Exception:  # noqa: BLE001
        return
    assert cfg.api.domain == domain
    from tracker_infra.rendering import edge_headers
    assert f"https://{domain}" in edge_headers(cfg)["Content-Security-Policy"]


def test_user_error_formats_file_key_problem() -> None:
    assert str(UserError("vars/x.yaml", "a.b", "bad (allowed: good)")) == \
        "vars/x.yaml: a.b: bad (allowed: good)"


def test_unknown_key_suggests_the_nearest_known_one(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    line = assert_rejected(tmp_path, capsys, {"staging.yaml": {"api": {"max_taks": 5}}},
                           "staging.yaml", "api.max_taks", "unknown key (did you mean max_tasks? ")
    assert "allowed: cpu, memory, min_tasks, max_tasks," in line


def test_a_typo_in_defaults_is_blamed_on_defaults(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """api.cpu_target_percent is set only in defaults: misspelt there, the merged result lacks it."""
    vars_dir = copy_vars(tmp_path)
    defaults = vars_dir / "defaults.yaml"
    defaults.write_text(defaults.read_text().replace("  cpu_target_percent:", "  cpu_target_percnt:", 1))
    assert main(["--all", "--vars", str(vars_dir), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"error: {defaults}: api.cpu_target_percent: is missing: defaults.yaml sets "
        "'cpu_target_percnt' instead (a typo?)",
        f"error: {defaults}: api.cpu_target_percnt: unknown key (did you mean cpu_target_percent? "
        "allowed: cpu, memory, min_tasks, max_tasks, container_port, health_check, "
        "cpu_target_percent, memory_target_percent, domain, certificate_arn)"]
    assert not (tmp_path / "out").exists()


def test_every_problem_of_a_render_is_reported_at_once(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    vars_dir = copy_vars(tmp_path, {"staging.yaml": {"database": {"min_acu": 0.3}},
                                    "production.yaml": {"tags": {"Owner": "two\nlines"},
                                                        "api": {"cpu": 300}}})
    assert main(["--all", "--vars", str(vars_dir), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines), captured.err
    assert any(f"{vars_dir / 'staging.yaml'}: database.min_acu: 0.3 ACU is not allowed" in x for x in lines)
    assert any(f"{vars_dir / 'production.yaml'}: api.cpu: 300 CPU units" in x for x in lines)
    assert any(f"{vars_dir / 'production.yaml'}: tags.Owner: 'two\\nlines' is not a valid tag value: "
               "character '\\n'" in x for x in lines)
    assert "Traceback" not in captured.err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["two\nlines", "tab\there", "cost: 5€", "a,b", "semi;colon", "x" * 257])
def test_tag_values_cloudformation_rejects_are_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         value: str) -> None:
    assert_rejected(tmp_path, capsys, {"staging.yaml": {"tags": {"Owner": value}}},
                    "staging.yaml", "tags.Owner", "is not a valid tag value")


@pytest.mark.parametrize("value", ["", "Ünïcode Team 12", "a_b.c:d/e=f+g-h@i", "x" * 256])
def test_tag_values_cloudformation_accepts_arrive_exactly(value: str) -> None:
    doc = render(config_with("staging", {"tags": {"Owner": value}}))
    tags = doc["Resources"]["StackKey"]["Properties"]["Tags"]
    assert {"Key": "Owner", "Value": value} in tags
