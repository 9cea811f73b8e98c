"""`render.py rehearse` (make rehearse): an environment's life against a local moto server, run as
a user runs it, in its own process; the server is gone afterwards, also after Ctrl-C."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tracker_infra.rendering import ROOT

pytestmark = pytest.mark.rehearsal


def moto_servers(port: int) -> list[str]:
    """The command lines of running moto servers on this port."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith((b"moto_server", b"moto_main.py")) for a in argv) and str(port).encode() in argv:
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# verify's rows that read what moto cannot hold (docs/deploying.md, "The rehearsal"), each with
# what it reads: the outputs of a stack made through a change set, and the alarms, e-mail
# subscriptions and database cluster moto's CloudFormation does not make from a template.
NOT_JUDGED = {"stack tracker-{env} outputs": "Outputs", "stack tracker-{env}-edge outputs": "Outputs",
              "alarm subscriptions confirmed": "AWS::SNS::Subscription",
              "alarms none in ALARM": "AWS::CloudWatch::Alarm",
              "alarms reporting data": "AWS::CloudWatch::Alarm",
              "database available": "AWS::RDS::DBCluster", "database backups": "AWS::RDS::DBCluster",
              "database point-in-time recovery": "AWS::RDS::DBCluster"}
SITE_ROWS = {"site / answers 200", "site security headers", "site client-side route",
             "site hashed asset cached long"}
DNS_ROWS = {"api tls 1.2+ only", "api http redirects to https", "site tls 1.2+ only",
            "site http redirects to https"}


def verify_rows(out: str) -> dict[str, tuple[str, str]]:
    """check -> (state, detail) of the table the rehearsal's verify printed."""
    table = out[out.index("==> render.py verify"):].split("\n==> ", 1)[0]
    return {m[1]: (m[2], m[3])
            for m in re.finditer(r"^(\S.*?) +(PASS|FAIL|SKIP|WAIT|LIMITED) +(.*)$", table, re.M)}


def assert_waits_and_skips_say_why(rows: dict[str, tuple[str, str]]) -> None:
    """Each WAIT names the DNS record to create (and, for the site, publish-site); each SKIP the
    release it waits for."""
    for check, (state, detail) in rows.items():
        if state == "WAIT":
            assert detail.startswith("no DNS record for ") and "DnsRecord names" in detail, detail
            assert ("no site published yet (render.py publish-site" in detail) == (check in SITE_ROWS), detail
        elif state == "SKIP":
            assert detail == "no image released yet (render.py release-image)", (check, detail)


def assert_a_first_create_as_far_as_moto_shows(rows: dict[str, tuple[str, str]], env: str) -> None:
    """No row FAILs and every other than PASS says why: WAIT with what brings it (the DNS record
    the stack's output names; for the site, publish-site too), SKIP until a release, or not
    judged, naming what the stand-in cannot hold."""
    assert len(rows) == 21, rows
    states = {state for state, _ in rows.values()}
    assert "FAIL" not in states and states <= {"PASS", "WAIT", "SKIP", "LIMITED"}, rows
    assert {c for c, (state, _) in rows.items() if state == "PASS"} == {f"stack tracker-{env}",
                                                                        f"stack tracker-{env}-edge"}, rows
    assert_waits_and_skips_say_why(rows)
    limited = {c: d for c, (state, d) in rows.items() if state == "LIMITED"}
    expected = {c.format(env=env): fact for c, fact in NOT_JUDGED.items()}
    assert set(limited) == set(expected), limited
    assert all(d.startswith("not judged here: the stand-in ") and f"(--stand-in-lacks {expected[c]})" in d
               for c, d in limited.items()), limited
    assert {c for c, (state, _) in rows.items() if state == "WAIT"} == DNS_ROWS | SITE_ROWS, rows


def rehearse(env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "render.py", "rehearse", "--env", env], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("env, destroyed", [
    ("dev", "PASS"), ("staging", "PASS     refused: the environment is protected")])
def test_a_rehearsal_runs_every_step_and_leaves_nothing_behind(env: str, destroyed: str) -> None:
    process = rehearse(env)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    summary = out[out.index("rehearsal summary"):]
    port = int(re.search(r"the server on port (\d+) is stopped", summary)[1])
    states = dict(re.findall(r"^  (\S+) +(PASS|FAIL|LIMITED)", summary, re.M))
    assert states == {"stand-in": "PASS", "plan": "PASS", "execute": "PASS", "status": "PASS",
                      "outputs": "LIMITED", "verify": "LIMITED", "drift": "LIMITED", "destroy": "PASS"}
    assert f"destroy   {destroyed}" in summary and "not rehearsed: " in summary
    # verify after a first create: no FAIL; what moto cannot hold is not judged
    assert_a_first_create_as_far_as_moto_shows(verify_rows(out), env)
    # execute streamed the stacks' events
    assert re.search(r"^  \+\d\d:\d\d tracker-" + env + r" +CREATE_COMPLETE", out, re.M), out
    assert moto_servers(port) == [] and not port_in_use(port)


@pytest.mark.slow
def test_a_verify_check_broken_as_it_would_be_on_aws_fails_the_rehearsal(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """verify's site checks planted broken (the site bucket looked for behind no output, as a
    template without FrontendBucketName's Ref would leave it on AWS too): the rows FAIL in the
    rehearsal, its verify step FAILs and the rehearsal exits non-zero."""
    from tracker_infra.cli import main
    from tracker_infra.errors import EXIT_AWS
    from tracker_infra.ops import verify

    real = verify.template_outputs_and_alarms

    def without_output_resources(cfg: Any) -> dict[str, verify.Expected]:
        return {name: dataclasses.replace(e, output_resources={}) for name, e in real(cfg).items()}

    monkeypatch.setattr(verify, "template_outputs_and_alarms", without_output_resources)
    code = main(["rehearse", "--env", "dev", "--vars", str(ROOT / "vars")])
    out = capsys.readouterr().out
    assert code == EXIT_AWS, out
    failed = {c: d for c, (state, d) in verify_rows(out).items() if state == "FAIL"}
    assert set(failed) == SITE_ROWS, failed
    assert all(d.startswith("cannot tell whether a site is published: no site bucket found")
               for d in failed.values()), failed
    assert re.search(r"^  verify +FAIL ", out[out.index("rehearsal summary"):], re.M), out


@pytest.mark.slow
def test_ctrl_c_stops_the_server() -> None:
    process = rehearse("dev")
    assert process.stdout is not None
    seen = ""
    while "==> render.py plan" not in seen:  # the server is up and the first command runs
        line = process.stdout.readline()
        assert line, seen
        seen += line
    port = int(re.search(r"==> stand-in: moto on http://localhost:(\d+)", seen)[1])
    assert moto_servers(port)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130, seen + out
    assert "rehearsal interrupted; the moto server is stopped" in out
    deadline = time.monotonic() + 5
    while moto_servers(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert moto_servers(port) == [] and not port_in_use(port)
