"""The rendering rules: quoting, strictness, determinism, parse-back, limits, atomic writes, --check."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ENVS, config, copy_vars
from tracker_infra.cli import main
from tracker_infra.output import RenderError, check_template, render_files
from tracker_infra.rendering import PARTIALS, ROOT, TEMPLATES, jinja_environment, yaml_scalar

SOURCES = sorted([*TEMPLATES.glob("*.j2"), *PARTIALS.glob("*.j2")])

# An interpolation is safe when it quotes a scalar (| yaml), checks a logical ID (| logical_id),
# or calls a macro that emits block YAML built the same way (name(...) or module.name(...)).
_SAFE_EXPRESSION = re.compile(
    r"^(?:.*\|\s*(?:yaml|logical_id)"          # ... | yaml   /  ... | logical_id
    r"|[a-z_]+(?:\.[a-z_]+)?\(.*\)"             # m.tags(6), network.resources(), tags(6)
    r'|" " \* indent)$',                         # the indentation inside macros
    re.DOTALL,
)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_every_interpolation_is_quoted_or_a_macro_call(source: Path) -> None:
    text = source.read_text()
    text = re.sub(r"{%\s*raw\s*%}.*?{%\s*endraw\s*%}", "", text, flags=re.DOTALL)
    text = re.sub(r"{#.*?#}", "", text, flags=re.DOTALL)
    bare = [expr.strip() for expr in re.findall(r"{{(.*?)}}", text, flags=re.DOTALL)
            if not _SAFE_EXPRESSION.match(expr.strip())]
    assert not bare, f"{source.name}: interpolations without | yaml: {bare}"


def test_scanner_catches_a_bare_interpolation() -> None:
    assert not _SAFE_EXPRESSION.match("cfg.description")
    assert not _SAFE_EXPRESSION.match('cfg.description ~ "x"')
    assert _SAFE_EXPRESSION.match("cfg.description | yaml")
    assert _SAFE_EXPRESSION.match("m.tags(6, Name=stack.name)")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.integers(), st.booleans(),
                 st.floats(allow_nan=False, allow_infinity=False).filter(
                     lambda f: "e" not in repr(f))))
def test_yaml_filter_round_trips_any_scalar(value: object) -> None:
    text = f"key: {yaml_scalar(value)}\nnext: 1\n"
    assert yaml.safe_load(text) == {"key": value, "next": 1}


def test_yaml_filter_refuses_what_it_cannot_quote() -> None:
    for bad in (None, [1], {"a": 1}, float("nan"), 1e-30):
        with pytest.raises((TypeError, ValueError)):
            yaml_scalar(bad)


def test_undefined_variable_is_an_error_naming_the_template() -> None:
    template = jinja_environment().from_string("Value: {{ nothing_here | yaml }}\n")
    with pytest.raises(jinja2.UndefinedError, match="nothing_here"):
        template.render()


def test_environment_follows_the_design_rules() -> None:
    env = jinja_environment()
    assert env.undefined is jinja2.StrictUndefined
    assert env.trim_blocks and env.lstrip_blocks and env.keep_trailing_newline
    assert env.autoescape is False
    assert jinja_environment() is env  # one environment per process


@pytest.mark.parametrize("env", ENVS)
def test_rendering_is_deterministic(env: str, tmp_path: Path) -> None:
    first, _ = render_files(config(env), tmp_path)
    second, _ = render_files(config(env), tmp_path)
    assert first == second
    assert all(content for content in first.values())


def test_parse_back_rejects_duplicate_logical_ids() -> None:
    text = "Resources:\n  A:\n    Type: AWS::SNS::Topic\n  A:\n    Type: AWS::SNS::Topic\n"
    with pytest.raises(RenderError, match="duplicate key 'A'"):
        check_template(text, "x.yaml")


def test_parse_back_rejects_broken_yaml_and_missing_resources() -> None:
    with pytest.raises(RenderError, match="does not parse"):
        check_template("Resources:\n  A: [\n", "x.yaml")
    with pytest.raises(RenderError, match="no Resources"):
        check_template("Outputs: {}\n", "x.yaml")


def test_limits_are_enforced() -> None:
    many = "".join(f"  R{i}:\n    Type: AWS::SNS::Topic\n" for i in range(501))
    with pytest.raises(RenderError, match="501 Resources"):
        check_template("Resources:\n" + many, "x.yaml")
    big = "Resources:\n  A:\n    Type: AWS::SNS::Topic\n" + "# " + "x" * (1024 * 1024) + "\n"
    with pytest.raises(RenderError, match="bytes"):
        check_template(big, "x.yaml")


def test_the_yaml_filter_escapes_exactly_what_pyyaml_would_not_read_raw() -> None:
    # PyYAML's reader refuses its NON_PRINTABLE class in a document; inside a double-quoted
    # scalar it would also fold the line breaks (tab, LF, CR, NEL, LS, PS): those are escaped too.
    from tracker_infra.rendering import _NOT_PRINTABLE
    every = "".join(map(chr, range(0x110000)))
    escaped = set(_NOT_PRINTABLE.findall(every))
    expected = set(yaml.reader.Reader.NON_PRINTABLE.findall(every)) | set("\t\n\r\x85\u2028\u2029")
    assert sorted(map(hex, map(ord, escaped ^ expected))) == []


def test_the_template_cache_keeps_its_newest_entries_only(tmp_path: Path) -> None:
    import os

    from tracker_infra.rendering import _BytecodeCache

    cache = _BytecodeCache(str(tmp_path))
    for i in range(cache.KEEP + 20):  # older entries, e.g. of temporary checkouts
        old = tmp_path / f"__jinja2_old{i:03d}.cache"
        old.write_bytes(b"x")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    (tmp_path / "unrelated.txt").write_text("kept")
    env = jinja2.Environment(autoescape=False)  # noqa: S701 - compiles a test string only
    bucket = jinja2.bccache.Bucket(env, "new", "checksum")
    bucket.code = compile("x = 1", "t", "exec")
    cache.dump_bytecode(bucket)
    left = sorted(p.name for p in tmp_path.glob("*.cache"))
    assert len(left) == cache.KEEP
    assert "__jinja2_new.cache" in left  # the entry just written, and the newest old ones
    assert "__jinja2_old020.cache" not in left and "__jinja2_old021.cache" in left
    assert (tmp_path / "unrelated.txt").is_file()


def test_resolve_references_would_survive_jinja() -> None:
    # CloudFormation's dynamic references use {{ }} too; they must sit in {% raw %}.
    out = jinja_environment().from_string("{% raw %}{{resolve:ssm:/x}}{% endraw %}").render()
    assert out == "{{resolve:ssm:/x}}"


def test_render_writes_atomically_and_leaves_no_temp_files(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["--env", "staging", "--out", str(out)]) == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "staging/app.yaml" in files
    assert not [f for f in files if f.endswith(".tmp")]
    summary = capsys.readouterr().out
    assert re.search(r"tracker-staging\s+us-east-1\s+\d+ resources\s+[\d.]+ KB\s+" +
                     re.escape(str(out / "staging" / "app.yaml")), summary), summary


def test_removed_outputs_are_cleaned_and_check_reports_them(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    vars_dir = copy_vars(tmp_path)
    args = ["--vars", str(vars_dir), "--out", str(out)]
    assert main(["--all", *args]) == 0
    leftover = out / "staging" / "old-stack.yaml"
    leftover.write_text("x")
    (out / "qa").mkdir()
    (out / "qa" / "app.yaml").write_text("x")
    capsys.readouterr()
    assert main(["--all", "--check", *args]) == 3
    stale = capsys.readouterr().out
    assert f"{leftover} (no longer rendered)" in stale
    assert f"{out / 'qa' / 'app.yaml'} (no longer rendered)" in stale
    assert main(["--all", *args]) == 0
    assert not leftover.exists() and not (out / "qa" / "app.yaml").exists()


def test_check_catches_a_stale_file_and_writes_nothing(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    vars_dir = copy_vars(tmp_path)
    args = ["--vars", str(vars_dir), "--out", str(out)]
    assert main(["--all", *args]) == 0
    assert main(["--all", "--check", *args]) == 0
    target = out / "dev" / "app.yaml"
    target.write_text(target.read_text().replace("10.0.0.0/16", "10.9.0.0/16"))
    edited = target.read_bytes()
    capsys.readouterr()
    assert main(["--all", "--check", *args]) == 3
    captured = capsys.readouterr()
    assert f"stale: {target} (differs)" in captured.out
    assert "1 stale file(s)" in captured.err
    assert target.read_bytes() == edited  # --check never writes


def test_committed_rendered_output_is_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--all", "--check", "--out", str(ROOT / "rendered"),
                 "--vars", str(ROOT / "vars")]) == 0, capsys.readouterr().out


def test_unwritable_output_folder_is_a_user_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "rendered"
    blocker.write_text("a file where the output folder should be")
    assert main(["--env", "dev", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "cannot write" in err and len(err.splitlines()) == 1
    assert blocker.read_text() == "a file where the output folder should be"


def test_csp_adds_the_api_origin_and_drops_what_report_only_ignores() -> None:
    from tracker_infra.rendering import edge_headers

    staging = edge_headers(config("staging"))
    csp = dict(d.split(" ", 1) if " " in d else (d, "")
               for d in staging["Content-Security-Policy"].split("; "))
    assert csp["connect-src"] == "'self' https://api.staging.communitytracker.example.com"
    assert csp["default-src"] == "'none'" and "upgrade-insecure-requests" in csp
    dev = edge_headers(config("dev"))  # dev reports violations instead of blocking
    assert "Content-Security-Policy" not in dev
    report_only = dev["Content-Security-Policy-Report-Only"]
    assert "upgrade-insecure-requests" not in report_only  # ignored there; browsers warn
    assert "connect-src 'self' https://api.dev.communitytracker.example.com" in report_only


def test_a_removed_environment_leaves_nothing_behind(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Its rendered/ folder and its architecture page are stale for --check (which names them and
    the folders to commit) and removed by --all."""
    out, docs = tmp_path / "rendered", tmp_path / "docs" / "architecture"
    vars_dir = copy_vars(tmp_path)
    args = ["--vars", str(vars_dir), "--out", str(out)]
    assert main(["--all", *args]) == 0
    assert (out / "dev" / "app.yaml").is_file() and (docs / "dev.md").is_file()
    (vars_dir / "dev.yaml").unlink()
    capsys.readouterr()
    assert main(["--all", "--check", *args]) == 3
    captured = capsys.readouterr()
    assert f"stale: {docs / 'dev.md'} (no longer rendered)" in captured.out
    assert f"stale: {out / 'dev' / 'app.yaml'} (no longer rendered)" in captured.out
    for folder in (f"{docs}/", f"{out}/", f"{tmp_path / 'bootstrap'}/"):  # ...and what to commit
        assert folder in captured.err.split("and commit ", 1)[1]
    assert main(["--all", *args]) == 0
    assert not (out / "dev").exists() and not (docs / "dev.md").exists()
    assert (docs / "staging.md").is_file()
    assert main(["--all", "--check", *args]) == 0


def test_rendering_one_environment_refreshes_its_architecture_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, page = tmp_path / "rendered", tmp_path / "docs" / "architecture" / "staging.md"
    vars_dir = copy_vars(tmp_path)
    args = ["--vars", str(vars_dir), "--out", str(out)]
    assert main(["--all", *args]) == 0
    page.write_text("stale")
    assert main(["--env", "staging", "--check", *args]) == 3
    assert f"stale: {page} (differs)" in capsys.readouterr().out
    assert main(["--env", "staging", *args]) == 0
    assert page.read_text().startswith("# Architecture: staging")
    assert main(["--all", "--check", *args]) == 0


def test_a_reader_that_goes_away_is_not_an_internal_error(tmp_path: Path) -> None:
    """render.py ... | head: the pipe closes early; no traceback, no "internal error"."""
    import subprocess
    import sys

    from tracker_infra.rendering import ROOT

    vars_dir = copy_vars(tmp_path)
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, str(ROOT / "render.py"), "diff", "staging", "production", "--vars", str(vars_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes away before the report is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0 and "internal error" not in err, err


def test_one_environment_meets_the_deploy_permission_check_that_all_meets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A type missing from tracker_infra/deploy_permissions.yaml stops `--env X` as it stops
    `--all` (which builds the deploy roles from it), and nothing is written."""
    from tracker_infra import bootstrap

    table = dict(bootstrap._permission_table())
    del table["AWS::ECS::Service"]
    monkeypatch.setattr(bootstrap, "_permission_table", lambda: table)
    for args in (["--env", "dev"], ["--all"]):
        assert main([*args, "--out", str(tmp_path / "rendered")]) == 2
        err = capsys.readouterr().err
        assert "deploy_permissions.yaml: types: lacks AWS::ECS::Service" in err and "make regen" in err
    assert not (tmp_path / "rendered").exists()
