"""`render.py rehearse` (make rehearse): an environment's life against a local moto server, run as
a user runs it, in its own process; the server is gone afterwards, also after Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

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
        if any(b"moto_server" in a for a in argv) and str(port).encode() in argv:
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# verify's rows that FAIL against moto, each for a gap of moto's (docs/deploying.md, "The rehearsal"):
# no outputs for change-set stacks (so no site bucket to look at, no alarm topic), no database
# cluster and no alarm made from a template.
MOTO_GAPS = {"stack tracker-{env} outputs", "stack tracker-{env}-edge outputs", "site / answers 200",
             "site security headers", "site client-side route", "site hashed asset cached long",
             "alarm subscriptions confirmed", "alarms none in ALARM", "alarms reporting data",
             "database available", "database backups", "database point-in-time recovery"}


def verify_rows(out: str) -> dict[str, tuple[str, str]]:
    """check -> (state, detail) of the table the rehearsal's verify printed."""
    table = out[out.index("==> render.py verify"):].split("\n==> ", 1)[0]
    return {m[1]: (m[2], m[3]) for m in re.finditer(r"^(\S.*?) +(PASS|FAIL|SKIP|WAIT)  (.*)$", table, re.M)}


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
    # verify after a first create: no FAIL but moto's gaps; the names wait for their records
    rows = verify_rows(out)
    assert len(rows) == 21, rows
    failed = {check for check, (state, _) in rows.items() if state == "FAIL"}
    assert failed == {gap.format(env=env) for gap in MOTO_GAPS}, failed
    waiting = {check: detail for check, (state, detail) in rows.items() if state == "WAIT"}
    assert set(waiting) == {"api tls 1.2+ only", "api http redirects to https", "site tls 1.2+ only",
                            "site http redirects to https"}, rows
    assert all(d.startswith("no DNS record for ") and "DnsRecord" in d for d in waiting.values())
    assert {check for check, (state, _) in rows.items() if state == "SKIP"} == {
        "api /health over https", "api service running tasks", "api targets healthy"}
    # execute streamed the stacks' events
    assert re.search(r"^  \+\d\d:\d\d tracker-" + env + r" +CREATE_COMPLETE", out, re.M), out
    assert moto_servers(port) == [] and not port_in_use(port)


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
