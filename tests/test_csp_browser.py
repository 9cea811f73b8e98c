"""A standard Vite React build, served under the edge function's headers, in a real browser.

tests/browser/ holds the create-vite 9.3.0 React template (pinned by package-lock.json).
The test builds it, serves dist/ from a local http.server that runs edge/handler.py (copied
beside a headers.json, as rendered/<env>/edge/ lays it out) on a synthetic origin-response
event for every response it sends, loads the page in headless Chromium, and asserts that
no CSP violation happens and that React rendered and reacts to a click. The same server,
with a local CA for HTTPS and an HTTP->HTTPS redirect (what CloudFront's
redirect-to-https does), is graded by the MDN HTTP Observatory's own scan(): A+.

Needs node + npm (the npm registry, or a warm npm cache) and Chromium
(CHROMIUM_PATH, default /usr/bin/chromium); skipped only when those are absent.
"""

from __future__ import annotations

import http.server
import json
import mimetypes
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.standins import APP, edge_handler, local_ca, origin_response_event, run_in_app, serve
from tracker_infra.header_grading import header_problems

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "fixtures" / "cloudfront" / "headers-sample.json"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CSP_NAMES = ("content-security-policy", "content-security-policy-report-only")

missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
    missing.append(f"chromium ({CHROMIUM})")
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"browser check needs {', '.join(missing)}: see tests/browser/README.md"
)


def _header_sources(enforced_csp_only: bool = False) -> list[Any]:
    """The sample headers.json, and every rendered environment's once render.py ran."""
    params = []
    for path in [SAMPLE, *sorted(ROOT.glob("rendered/*/edge/headers.json"))]:
        headers = json.loads(path.read_text(encoding="utf-8"))["headers"]
        if enforced_csp_only and "Content-Security-Policy" not in headers:
            continue  # dev ships Content-Security-Policy-Report-Only: no A+ expected
        name = "sample" if path == SAMPLE else path.parent.parent.name
        params.append(pytest.param(path, id=name))
    return params


# --- the edge function, as the renderer lays it out ----------------------------------

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def make_handler_class(root: Path, edge: ModuleType, log: list[str]) -> type:
    class EdgeServedHandler(http.server.BaseHTTPRequestHandler):
        """Serves dist/ like S3 behind CloudFront: every response passes the edge function."""

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            target = (root / path.lstrip("/")).resolve()
            if path == "/":
                target = root / "index.html"
            if target.is_file() and root.resolve() in target.parents:
                status, body = 200, target.read_bytes()
                content_type = TYPES.get(target.suffix) or (
                    mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                )
            else:
                status, body, content_type = 404, b"<h1>Not Found</h1>", TYPES[".html"]
            event = origin_response_event(path, status, content_type, len(body))
            response = edge.handler(event, None)
            self.send_response(int(response["status"]), response["statusDescription"])
            for entries in response["headers"].values():
                for entry in entries:
                    self.send_header(entry["key"], entry["value"])
            self.end_headers()
            self.wfile.write(body)
            log.append(f"{status} {path}")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return EdgeServedHandler


class RedirectToHttps(http.server.BaseHTTPRequestHandler):
    """CloudFront's viewer protocol policy redirect-to-https: a bare 301, no origin call."""

    https_port = 0

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(301)
        self.send_header("Location", f"https://localhost:{self.https_port}{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_OPTIONS = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def site(request: pytest.FixtureRequest, dist: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    headers_file: Path = request.param
    edge = edge_handler(tmp_path / "edge", headers_file)
    log: list[str] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler_class(dist, edge, log))
    serve(server)
    try:
        yield {
            "url": f"http://localhost:{server.server_address[1]}/",
            "headers": json.loads(headers_file.read_text(encoding="utf-8"))["headers"],
            "edge": edge,
            "dist": dist,
            "log": log,
        }
    finally:
        server.shutdown()
        server.server_close()


# --- the browser ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("site", _header_sources(), indirect=True)
def test_vite_react_build_runs_without_csp_violation(site: dict[str, Any], tmp_path: Path) -> None:
    proc = subprocess.run(
        ["node", "check-page.mjs", site["url"], CHROMIUM, str(tmp_path / "chromium-profile")],
        cwd=APP,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)

    # The page really was served under the configured policy ...
    served = report["documentHeaders"]
    assert header_problems(served.items(), site["headers"]) == []
    assert any(name in served for name in CSP_NAMES)
    # ... over a potentially trustworthy origin (so upgrade-insecure-requests and HSTS on
    # http://localhost do not break the load) ...
    assert report["isSecureContext"] is True
    # ... with every subresource loaded and none blocked or reported.
    assert report["violations"] == []
    assert report["consoleCspViolations"] == []
    # Chromium also warns about a policy it only partly applies (e.g. a directive that a
    # Report-Only policy cannot carry): the rendered policy should say what it does.
    assert report["consoleCspWarnings"] == [], "CSP as rendered is partly ignored by Chromium"
    assert report["pageErrors"] == []
    assert report["failedRequests"] == []
    assert report["badResponses"] == []
    assert any("/assets/" in r and r.endswith(".js") for r in report["requests"])
    # React rendered the template and its click handler works.
    assert report["heading"] == "Get started"
    assert report["counterAfterClick"] == "Count is 1"


@pytest.mark.slow
@pytest.mark.parametrize("site", [pytest.param(SAMPLE, id="sample")], indirect=True)
def test_browser_check_detects_a_violation(site: dict[str, Any], tmp_path: Path) -> None:
    """The check can fail: an inline script in the page must be reported as a violation."""
    page = site["dist"] / "inline-script-probe.html"
    page.write_text(
        "<!doctype html><html><body><h1>probe</h1>"
        "<button>Count is 0</button><script>document.title='ran'</script></body></html>",
        encoding="utf-8",
    )
    try:
        proc = subprocess.run(
            ["node", "check-page.mjs", site["url"] + page.name, CHROMIUM, str(tmp_path / "p")],
            cwd=APP,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        page.unlink()
    report = json.loads(proc.stdout)
    assert [v["directive"] for v in report["violations"]] == ["script-src-elem"]
    assert report["consoleCspViolations"], "Chromium logs the refusal too"


# --- the MDN HTTP Observatory ---------------------------------------------------------


def observatory_grade(site: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Serve the site over HTTPS (+ HTTP redirect) and run the Observatory's scan()."""
    # The Observatory reads conf/hsts-preload.json, which its postinstall downloads (off
    # here: .npmrc ignore-scripts). An empty list is exact for localhost, which no
    # preload list holds.
    conf = APP / "node_modules" / "@mdn" / "mdn-http-observatory" / "conf" / "hsts-preload.json"
    if not conf.is_file():
        conf.write_text("{}\n", encoding="utf-8")
    ca_pem, cert_pem, key_pem = local_ca(tmp_path)
    handler_class = make_handler_class(site["dist"], site["edge"], site["log"])
    https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_pem, key_pem)
    https.socket = tls.wrap_socket(https.socket, server_side=True)
    redirect_class = type("Redirect", (RedirectToHttps,), {"https_port": https.server_address[1]})
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), redirect_class)
    serve(https)
    serve(plain)
    env = {
        **os.environ,
        "NODE_EXTRA_CA_CERTS": str(ca_pem),
        "OBSERVATORY_HTTP_PORT": str(plain.server_address[1]),
        "OBSERVATORY_HTTPS_PORT": str(https.server_address[1]),
    }
    try:
        out = run_in_app(["node", "observatory.mjs", "localhost"], timeout=120, env=env)
    finally:
        for server in (https, plain):
            server.shutdown()
            server.server_close()
    return json.loads(out)


@pytest.mark.slow
@pytest.mark.parametrize("site", _header_sources(enforced_csp_only=True), indirect=True)
def test_mdn_observatory_grades_a_plus(site: dict[str, Any], tmp_path: Path) -> None:
    result = observatory_grade(site, tmp_path)
    failed = {name: t["result"] for name, t in result["tests"].items() if not t["pass"]}
    assert result["grade"] == "A+", (result["score"], failed)
    assert failed == {}
    assert (
        result["responseHeaders"]["strict-transport-security"] == site["headers"]["Strict-Transport-Security"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("site", [pytest.param(SAMPLE, id="sample")], indirect=True)
def test_observatory_check_can_fail(site: dict[str, Any], tmp_path: Path) -> None:
    """Without the edge function's headers the same site must not get an A."""
    weak = tmp_path / "weak.json"
    weak.write_text(json.dumps({"headers": {"X-Content-Type-Options": "nosniff"}}), encoding="utf-8")
    site = {**site, "edge": edge_handler(tmp_path / "weak-edge", weak)}
    result = observatory_grade(site, tmp_path)
    assert result["grade"] not in {"A+", "A", "A-"}
    assert not result["tests"]["content-security-policy"]["pass"]
