"""What an operator sees at the terminal: template mistakes at their line, exit codes from one
table, a missing package named with the command that installs it, colour and width on a
terminal only, no silent success.

Each test plants the fault it is about (a broken partial, a bare interpreter, a tty)."""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import copy_sources
from tracker_infra import errors, terminal
from tracker_infra.cli import SUBCOMMANDS, main
from tracker_infra.rendering import ROOT
from tracker_infra.review.diff import diff_templates
from tracker_infra.review.report import Report, format_report

SOURCES = ("render.py", "tracker_infra", "templates", "partials", "vars", "edge", "rendered", "docs",
           "samconfig.toml", "bootstrap", "requirements.txt", "requirements-dev.txt")


def run(root: Path, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "render.py", *args], cwd=root, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_sources(SOURCES, tmp_path_factory.mktemp("terminal") / "repo")


# --- 1. a template mistake is reported at its line, like a compile error ---------------------

NETWORK = "partials/network.yaml.j2"


# {line}: the planted line's number (the line after it for a statement Jinja reads on)
@pytest.mark.parametrize("planted, where, problem", [
    ('      Description: {{ "x" ', f"{NETWORK}:{{next}}: ", "expected token 'end of print statement'"),
    ("      Description: {{ no_such_name | yaml }}", f"{NETWORK}:{{line}}: ", "'no_such_name' is undefined"),
    ("{% if cfg.protected %}", f"{NETWORK}:", "Encountered unknown tag 'endmacro'"),
    ("      Description: x: y: z", "rendered/dev/app.yaml:", "rendered YAML does not parse: mapping values "
     "are not allowed in this context (resource DatabaseIngressFromApi, from partials/network.yaml.j2)"),
])
@pytest.mark.parametrize("command", [("--env", "dev"), ("diff", "--env", "dev")])
def test_a_template_mistake_names_its_file_and_line_exit_2_nothing_written(
        checkout: Path, planted: str, where: str, problem: str, command: tuple[str, ...]) -> None:
    partial = checkout / NETWORK
    original = partial.read_text()
    lines = original.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines)
              if line.startswith("      Description: PostgreSQL from the API group only"))
    where = where.format(line=at + 1, next=at + 2)
    rendered = {p: p.read_bytes() for p in (checkout / "rendered" / "dev").iterdir() if p.is_file()}
    partial.write_text("".join([*lines[:at], planted + "\n", *lines[at + 1:]]))
    try:
        done = run(checkout, *command)
    finally:
        partial.write_text(original)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert done.stderr.startswith(f"error: {where}") and problem in done.stderr
    assert " | " in done.stderr  # the offending line is shown
    assert {p: p.read_bytes() for p in rendered} == rendered


# --- 4. exit codes: one table, the README and every --help agree -----------------------------

def test_every_command_declares_its_exit_codes_from_the_table_and_help_shows_them(
        capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(f"tracker_infra.{module_name}")
        assert set(module.EXITS) <= set(errors.EXIT_CODES), name
        assert "Exit codes" not in (module.__doc__ or ""), f"{name}: exit codes written by hand"
        with pytest.raises(SystemExit):
            main([name, "--help"])
        shown = capsys.readouterr().out
        listed = dict(re.findall(r"^  (\d+) +(.*)$", shown.split("exit codes:")[1], re.M))
        for code in module.EXITS:
            assert listed[str(code)].startswith(errors.EXIT_CODES[code]), (name, code)
        assert set(map(int, listed)) == set(module.EXITS) | {errors.EXIT_INTERNAL, errors.EXIT_INTERRUPTED}


def test_the_readme_table_of_exit_codes_is_the_table() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\d+)` \| (.+?) \|$", readme, re.M))
    assert {int(code): text for code, text in rows.items()} == errors.EXIT_CODES


def test_nothing_else_writes_an_exit_code_by_hand() -> None:
    for path in [*ROOT.joinpath("tracker_infra").rglob("*.py"), ROOT / "Makefile"]:
        if path.name == "errors.py":
            continue
        text = path.read_text()
        assert not re.search(r"^EXIT_\w+ *=", text, re.M), path
        assert not re.search(r"\bsys\.exit\(\d|return [1-9]\d*$", text, re.M), path


def test_declining_is_a_refusal_not_a_vars_error() -> None:
    refusal = errors.Refusal("not confirmed; nothing was executed (the change sets were deleted)")
    assert str(refusal).startswith("not confirmed; nothing was executed")
    assert isinstance(refusal, errors.UserError)


# --- 8. a missing package is the user's setup -------------------------------------------------

def test_a_bare_python_names_the_package_and_the_install(checkout: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    done = run(checkout, "--env", "staging", python=str(tmp_path / "bare" / "bin" / "python"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == ("error: the Python package Jinja2 is not installed; it comes with the runtime "
                           "install: run `make render` (or `pip install -r requirements.txt`)\n")


def test_an_aws_command_without_the_dev_install_names_it(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ModuleNotFoundError
    assert main(["status", "--env", "dev"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: the Python package boto3 is not installed; it comes with the dev install "
                   "(AWS, review and test tools): run `make .venv/.dev` (or `pip install -r "
                   "requirements-dev.txt`)\n")


# --- 7. colour and width on a terminal only ---------------------------------------------------

class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("no_color, term, stream, coloured", [
    ("", "xterm", Tty(), True),
    ("1", "xterm", Tty(), False),  # NO_COLOR
    ("", "dumb", Tty(), False),
    ("", "xterm", io.StringIO(), False),  # piped
])
def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch, no_color: str,
                                                   term: str, stream: io.StringIO, coloured: bool) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setenv("TERM", term)
    text = "api health  FAIL  503\nsite  PASS  ok\n  WIDENS: new action s3:PutObject\n"
    painted = terminal.paint(text, stream)
    assert ("\033[" in painted) is coloured
    assert re.sub(r"\033\[[\d;]*m", "", painted) == text


def _wide_report() -> Report:
    role = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{
        "PolicyName": "app", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": [f"s3:Action{i}" for i in range(20)],
            "Resource": [f"arn:aws:s3:::bucket-with-a-long-name-{i}/*" for i in range(5)]}]}}]}}}}
    return Report("test", [diff_templates({"Resources": {}}, role, name="t/app.yaml")])


def test_text_tables_fit_the_terminal_and_markdown_keeps_the_full_text() -> None:
    report = _wide_report()
    whole = format_report(report, markdown=False)
    assert max(len(line) for line in whole.splitlines()) > 250  # piped: nothing clipped
    fitted = format_report(report, markdown=False, columns=100)
    table = fitted.split("IAM statement changes:\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split() == ["stack", "resource", "effect", "actions", "resources", "principal",
                                "condition", "widening"]
    assert all(len(line) <= 100 for line in table) and terminal.ELLIPSIS in fitted
    markdown = format_report(report, markdown=True, columns=100)
    assert "bucket-with-a-long-name-4" in markdown and terminal.ELLIPSIS not in markdown


def test_the_plan_s_iam_table_has_headings() -> None:
    from tracker_infra.ops.plan import ResourceChange, StackPlan, format_plan

    plan = StackPlan("tracker-dev", "us-east-1", "arn", "UPDATE_COMPLETE",
                     [ResourceChange("ApiTaskRole", "AWS::IAM::Role", "Modify")])
    text = format_plan("dev", [plan])
    lines = text.splitlines()
    at = lines.index("  IAM and resource-policy changes:")
    assert lines[at + 1].split() == ["resource", "change", "properties"]


# --- 4 and 6. local setup problems are bad input, said in one line and at once ------------------

class Sts(http.server.BaseHTTPRequestHandler):
    """A stand-in for an STS endpoint that answers every request with ``reply``: (HTTP status,
    content type, body)."""

    reply: tuple[int, str, str] = (200, "text/html", "")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, kind, body = self.reply
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def sts() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def sts_error(code: str, status: int = 403) -> tuple[int, str, str]:
    """An STS error reply as the Query protocol returns it."""
    return (status, "text/xml", f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{code} said by STS</Message></Error></ErrorResponse>")


IDENTITY = ("<GetCallerIdentityResponse><GetCallerIdentityResult><Account>999999999999</Account>"
            "<Arn>arn:aws:iam::999999999999:user/x</Arn><UserId>x</UserId></GetCallerIdentityResult>"
            "</GetCallerIdentityResponse>")
KEYS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"}
PROFILES = ("[profile empty]\nregion = us-east-1\n"
            "[profile keys]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = x\n")


def _aws_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str, config: str = "",
                 **env: str) -> tuple[int, str, float]:
    """``argv`` (status --env dev by default) in this process, with only ``env``'s AWS settings
    and ``config`` as the AWS config file: (exit code, stderr, seconds)."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    (tmp_path / "config").write_text(config)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to look for
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    err = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv or ("status", "--env", "dev")))
    return code, err.getvalue(), time.perf_counter() - started


CLOSED = "http://localhost:{port}"  # a port nothing listens on
# (wrong setting, the reply of the stand-in STS (None: none is used), the environment, the
# arguments (status --env dev when empty), what the one line starts with after "error: ").
# "{sts}" is the stand-in's URL, "{port}" a free port; only the last row's vars are at fault.
WRONG_SETTINGS = [
    ("no credentials", None, {}, (), "AWS credentials: none found"),
    ("a missing profile", None, {"AWS_PROFILE": "nonexistent"}, (),
     "AWS_PROFILE=nonexistent: The config profile (nonexistent) could not be found"),
    ("a profile without credentials", None, {"AWS_PROFILE": "empty"}, (), "AWS_PROFILE=empty: none found"),
    ("a config file that does not parse", None, {"AWS_PROFILE": "broken"}, (), "AWS_CONFIG_FILE="),
    ("an unreachable endpoint", None, {**KEYS, "AWS_ENDPOINT_URL": CLOSED}, (),
     f"AWS_ENDPOINT_URL={CLOSED}: cannot connect"),
    ("an unreachable STS endpoint", None, {**KEYS, "AWS_ENDPOINT_URL_STS": CLOSED}, (),
     f"AWS_ENDPOINT_URL_STS={CLOSED}: cannot connect"),
    ("an endpoint that is not a URL", None, {**KEYS, "AWS_ENDPOINT_URL": "localhost:1234"}, (),
     "AWS_ENDPOINT_URL=localhost:1234: Invalid endpoint"),
    ("an endpoint that is not AWS (a web page)", (200, "text/html", "<html>hello</html>"),
     {**KEYS, "AWS_ENDPOINT_URL": "{sts}"}, (), "AWS_ENDPOINT_URL={sts}: does not answer as AWS STS"),
    ("an endpoint that is not AWS (an error page)", (500, "text/html", "<html>oops</html>"),
     {**KEYS, "AWS_ENDPOINT_URL": "{sts}"}, (), "AWS_ENDPOINT_URL={sts}: does not answer as AWS STS"),
    ("expired credentials", sts_error("ExpiredToken", 400), {**KEYS, "AWS_ENDPOINT_URL": "{sts}"}, (),
     "AWS_ACCESS_KEY_ID: the credentials are refused or expired (ExpiredToken"),
    ("a profile's invalid key", sts_error("InvalidClientTokenId"), {"AWS_PROFILE": "keys",
     "AWS_ENDPOINT_URL": "{sts}"}, (), "AWS_PROFILE=keys: the credentials are refused or expired"),
    ("no terminal for a protected plan --execute", None, {}, ("plan", "--env", "staging", "--execute"),
     "--yes: not given, and there is no terminal to confirm at"),
    ("no terminal for a protected deploy", None, {}, ("deploy", "--env", "production"),
     "--yes: not given, and there is no terminal to confirm at"),
    ("the credentials of another account than vars names", (200, "text/xml", IDENTITY),
     {**KEYS, "AWS_ENDPOINT_URL": "{sts}"}, (), "vars/dev.yaml: account: is 111111111111, but the AWS "
     "credentials (AWS_ACCESS_KEY_ID) belong to account 999999999999"),
]


@pytest.mark.parametrize("setting, reply, env, argv, expected", WRONG_SETTINGS,
                         ids=[row[0] for row in WRONG_SETTINGS])
def test_a_wrong_setting_is_one_line_naming_its_cause(  # noqa: PLR0913 - the table's columns
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sts: str, setting: str,
        reply: tuple[int, str, str] | None, env: dict[str, str], argv: tuple[str, ...],
        expected: str) -> None:
    from tracker_infra.rehearsal.server import free_port

    fill = {"sts": sts, "port": str(free_port())}
    monkeypatch.setattr(Sts, "reply", reply)
    config = "[profile broken\n" if setting.startswith("a config file") else PROFILES
    code, err, seconds = _aws_command(monkeypatch, tmp_path, *argv, config=config,
                                      **{k: v.format(**fill) for k, v in env.items()})
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {expected.format(**fill)}"), err
    assert ("vars/" in err) == expected.startswith("vars/"), err  # vars only when vars are at fault
    assert seconds < 5  # said at once: not after botocore's default retries


def test_a_promote_profile_that_does_not_exist_is_bad_input(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["promote", "--from", "staging", "--to", "production", "--from-profile", "nope"])
    assert code == 2 and err.getvalue().count("\n") == 1
    assert err.getvalue().startswith("error: --from-profile=nope: The config profile (nope) could not "
                                     "be found")


def test_no_hint_names_a_placeholder_instead_of_the_environment() -> None:
    for path in ROOT.joinpath("tracker_infra").rglob("*.py"):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert "ENV=<env>" not in code.split('"""', 2)[-1], path


def test_every_skipped_test_shows_its_reason(tmp_path: Path) -> None:
    """The project's pytest settings print each skip's reason in the summary (Chromium or
    PostgreSQL missing must not pass as a silent "s")."""
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('the tool is not installed')\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
                           "--rootdir", str(tmp_path), "-p", "no:randomly", "-p", "no:xdist",
                           str(tmp_path / "test_skips.py")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^SKIPPED \[1\] .*test_skips\.py:\d+: the tool is not installed$", done.stdout, re.M), \
        done.stdout


@pytest.mark.parametrize("argv, hint", [
    (["stauts"], "error: stauts: is not a command; did you mean status?"),
    (["verfiy", "--env", "dev"], "error: verfiy: is not a command; did you mean verify?"),
    (["frobnicate"], "error: frobnicate: is not a command (allowed: diff, "),
    (["plan", "--env", "dev", "--exectue"], "error: render.py plan: unrecognized arguments: --exectue; did "
     "you mean --execute?"),
    (["--env", "dev", "--chek"], "error: render.py: unrecognized arguments: --chek; did you mean --check?"),
])
def test_a_mistyped_command_or_option_is_one_line_with_a_did_you_mean(
        capsys: pytest.CaptureFixture[str], argv: list[str], hint: str) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors exit; the commands' errors return
        code = exc.code
    assert code == errors.EXIT_USER
    err = capsys.readouterr().err
    assert err.startswith(hint) and err.count("\n") == 1, err


def test_the_help_and_the_readme_deploy_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    with contextlib.suppress(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    deploy_line = next(line for line in help_text.splitlines() if line.startswith("Deploy with:"))
    assert "make deploy ENV=" in deploy_line and "make deploy ENV=" in readme
    assert "sam deploy" not in deploy_line  # the SAM CLI is what `deploy` runs, not the way to deploy
