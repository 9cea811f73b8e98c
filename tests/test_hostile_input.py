"""What people really put in files: each case gets one line naming the file (and key or line),
exit code 2, no traceback, and nothing under the output folder changes."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import copy_vars, snapshot
from tracker_infra import cli


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path], list[str]]  # given the vars copy, returns extra CLI arguments
    message: str  # regex the one error line must match (after "error: ")


def _write(path: Path, data: bytes | str) -> None:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def _staging(vars_dir: Path) -> Path:
    return vars_dir / "staging.yaml"


def _billion_laughs(valid: str) -> str:
    lines = [valid, 'lol0: &l0 ["lol"]']
    for i in range(1, 12):
        refs = ", ".join([f"*l{i - 1}"] * 10)
        lines.append(f"lol{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


CASES = [
    Case("empty file", lambda v: [_write(_staging(v), "")] and [],
         r"staging\.yaml: is empty \(allowed: a mapping of variables\)"),
    Case("comments only", lambda v: [_write(_staging(v), "# nothing here\n")] and [],
         r"staging\.yaml: is empty"),
    Case("a list at the top", lambda v: [_write(_staging(v), "- a\n- b\n")] and [],
         r"staging\.yaml: holds a list at the top \(allowed: a mapping"),
    Case("a scalar at the top", lambda v: [_write(_staging(v), "just words\n")] and [],
         r"staging\.yaml: holds a str at the top"),
    Case("syntax error", lambda v: [_write(_staging(v), "environment: staging\napi: {cpu: 512\n")] and [],
         r"staging\.yaml: line 3, column 1: .*\(allowed: plain YAML"),
    Case("duplicate keys", lambda v: [_write(_staging(v), _staging(v).read_text() +
                                             "environment: staging\n")] and [],
         r"staging\.yaml: line \d+, column 1: found duplicate key 'environment'"),
    Case("tab indentation", lambda v: [_write(_staging(v), "api:\n\tcpu: 512\n")] and [],
         r"staging\.yaml: line 2, column 1: found character that cannot start any token \(allowed: "
         r"plain YAML mappings; no tabs"),
    Case("python object tag", lambda v: [_write(_staging(v),
         "environment: !!python/object/apply:os.system ['touch /tmp/pwned']\n")] and [],
         r"staging\.yaml: line 1, column 14: could not determine a constructor for the tag "
         r"'tag:yaml\.org,2002:python/object/apply:os\.system'"),
    Case("custom tag", lambda v: [_write(_staging(v), "environment: !Ref Env\n")] and [],
         r"staging\.yaml: line 1, column 14: could not determine a constructor for the tag '!Ref'"),
    Case("alias bomb", lambda v: [_write(_staging(v), _billion_laughs(_staging(v).read_text()))] and [],
         r"staging\.yaml: lol0, lol1, lol2, lol3, lol4 and 7 more: unknown keys"),
    Case("enormous file", lambda v: [_write(_staging(v), "# " + "x" * 300_000 + "\n")] and [],
         r"staging\.yaml: is 300003 bytes \(allowed: up to 262144\)"),
    Case("deep nesting", lambda v: [_write(_staging(v), "environment: staging\napi: " +
                                           "[" * 50_000 + "]" * 50_000 + "\n")] and [],
         r"staging\.yaml: line 2, column \d+: exceeded maximum nesting depth"),
    Case("non-UTF-8 bytes", lambda v: [_write(_staging(v), b"environment: stag\xe9ing\n")] and [],
         r"staging\.yaml: byte 17 is not UTF-8 \(allowed: UTF-8 text\)"),
    Case("UTF-16 file", lambda v: [_write(_staging(v), _staging(v).read_text().encode("utf-16"))] and [],
         r"staging\.yaml: byte 0 is not UTF-8"),
    Case("unknown environment", lambda v: ["--env", "qa"],
         r"qa\.yaml: no such environment 'qa' \(allowed: dev, production, staging\)"),
    Case("missing defaults file", lambda v: [(v / "defaults.yaml").unlink()] and [],
         r"defaults\.yaml: no such file"),
    Case("missing vars folder", lambda v: ["--vars", str(v / "nowhere")],
         r"nowhere: no such folder"),
    Case("symlinked vars file", lambda v: [_staging(v).rename(v.parent / "elsewhere.yaml"),
                                          _staging(v).symlink_to(v.parent / "elsewhere.yaml")] and [],
         r"staging\.yaml: is a symbolic link \(allowed: a regular file"),
    Case("null section", lambda v: [_write(_staging(v), _staging(v).read_text().replace(
        "network:\n  vpc_cidr: 10.1.0.0/16\n", "network:\n"))] and [],
         r"staging\.yaml: network: is None \(allowed: a valid dictionary or instance of Network\)"),
    Case("null value", lambda v: [_write(_staging(v), _staging(v).read_text().replace(
        "  min_acu: 1\n", "  min_acu:\n"))] and [],
         r"staging\.yaml: database\.min_acu: is None \(allowed: a valid number\)"),
    Case("output path is a file", lambda v: ["--out", str(v.parent / "blocker")],
         r"cannot write: Not a directory \(allowed: a writable output folder; nothing was changed\)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_gets_one_line_exit_2_and_changes_nothing(
        case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vars_dir = copy_vars(tmp_path)
    out = tmp_path / "rendered"
    assert cli.main(["--all", "--vars", str(vars_dir), "--out", str(out)]) == 0
    (tmp_path / "blocker").write_text("a file, not a folder")
    before = snapshot(out)
    extra = case.setup(vars_dir)
    args = ["--vars", str(vars_dir), "--out", str(out)]
    if "--env" not in extra:
        args.insert(0, "--all")
    capsys.readouterr()
    code = cli.main(args + extra)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert re.search(case.message, lines[0]), lines[0]
    assert lines[0].startswith("error: ")
    assert snapshot(out) == before
    assert not Path("/tmp/pwned").exists()


def test_a_bom_is_harmless(tmp_path: Path) -> None:
    vars_dir = copy_vars(tmp_path)
    path = vars_dir / "staging.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    out = tmp_path / "out"
    assert cli.main(["--env", "staging", "--vars", str(vars_dir), "--out", str(out)]) == 0
    plain = tmp_path / "plain"
    assert cli.main(["--env", "staging", "--vars", str(copy_vars(tmp_path / "p")),
                     "--out", str(plain)]) == 0
    assert (out / "staging" / "app.yaml").read_bytes() == (plain / "staging" / "app.yaml").read_bytes()


def test_anchors_and_aliases_work(tmp_path: Path) -> None:
    vars_dir = copy_vars(tmp_path)
    path = vars_dir / "staging.yaml"
    text = path.read_text().replace("  min_tasks: 2\n  max_tasks: 6\n",
                                    "  min_tasks: &two 2\n  max_tasks: *two\n")
    path.write_text(text)
    out = tmp_path / "out"
    assert cli.main(["--env", "staging", "--vars", str(vars_dir), "--out", str(out)]) == 0


def test_a_missing_output_folder_is_created(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "new" / "rendered"
    assert cli.main(["--env", "dev", "--out", str(out)]) == 0
    assert (out / "dev" / "app.yaml").is_file()


def test_an_internal_error_exits_1_with_a_hint_to_report(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr("tracker_infra.output.render_stack", broken)
    monkeypatch.delenv("TRACKER_DEBUG", raising=False)
    assert cli.main(["--env", "dev", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "internal error: KeyError: 'boom'" in err and "please report it" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_read_only_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert cli.main(["--env", "dev", "--out", str(out)]) == 0
    target = out / "dev" / "app.yaml"
    target.write_text("# hand-edited, must survive\n")
    if os.geteuid() != 0:
        (out / "dev").chmod(0o500)
    else:  # root writes into read-only folders anyway: fail where the OS would
        def refuse(*_: object, **kw: object) -> None:
            raise PermissionError(13, "Permission denied", kw.get("dir"))

        monkeypatch.setattr("tracker_infra.output.tempfile.mkstemp", refuse)
    try:
        assert cli.main(["--env", "dev", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert re.fullmatch(r"error: .*out/dev: cannot write: Permission denied \(allowed: a "
                            r"writable output folder; nothing was changed\)", err), err
        assert target.read_text() == "# hand-edited, must survive\n"
    finally:
        (out / "dev").chmod(0o700)
