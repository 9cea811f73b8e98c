"""verify against a healthy fake environment, and against each way it can be broken.

The AWS side is the fake deployed environment in moto (tests/aws_standins.py). The endpoints are
local stand-ins on 127.0.0.1 with a certificate for the environment's two domains, signed by a
CA made in the test: one HTTPS server answers for the API domain (the health check) and for the
site domain (objects read from the moto bucket that publish-site filled, each response passed
through the edge function with rendered/dev/edge/headers.json, a missing key answered with
index.html as CloudFront's error response does), one HTTP server redirects to HTTPS. verify
reaches them through --connect-to and trusts the CA through --ca-file.

Two of the broken states moto cannot produce, so those tests replace one client with botocore's
Stubber, answering with the shapes of AWS's API reference: ListSubscriptionsByTopic with a
subscription whose SubscriptionArn is "PendingConfirmation" (what SNS lists for an e-mail not
confirmed yet; moto confirms every subscription), and DescribeStacks with the regional stack in
UPDATE_ROLLBACK_COMPLETE (moto's stacks do not roll back; the rest of the answer is moto's own).
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import re
import ssl
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.stub import Stubber

from tests.aws_standins import FakeEnvironment, Moto, alarm_names, deploy_fake_environment
from tests.helpers import config
from tests.standins import edge_handler, local_ca, origin_response_event, serve
from tracker_infra.cli import main
from tracker_infra.ops.aws import connect
from tracker_infra.ops.rehearse import without_dns_records
from tracker_infra.ops.verify import Network, Row, Verifier
from tracker_infra.rendering import EDGE_REGION, ROOT

HEADERS_FILE = ROOT / "rendered" / "dev" / "edge" / "headers.json"
INDEX = (b'<!doctype html><html><head><script type="module" src="/assets/index-AbCdEf12.js"></script>'
         b'<link rel="stylesheet" href="/assets/index-GhIjKl34.css"></head><body><div id="root">'
         b'</div></body></html>')


@dataclass
class Endpoints:
    """What the stand-ins answer; tests change it to break one thing."""

    env: FakeEnvironment
    edge: ModuleType
    health_status: int = 200
    log: list[str] = field(default_factory=list)

    def site(self, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
        s3 = self.env.client("s3", EDGE_REGION)
        bucket = self.env.outputs[self.env.cfg.edge_stack_name]["FrontendBucketName"]
        key = path.lstrip("/") or "index.html"
        try:
            found = s3.get_object(Bucket=bucket, Key=key)
        except s3.exceptions.NoSuchKey:  # the distribution's custom error response: the app
            found = s3.get_object(Bucket=bucket, Key="index.html")
        body = found["Body"].read()
        event = origin_response_event(path, 200, found["ContentType"], len(body))
        response = event["Records"][0]["cf"]["response"]
        response["headers"]["cache-control"] = [{"key": "Cache-Control", "value": found["CacheControl"]}]
        response = self.edge.handler(event, None)
        served = [(e["key"], e["value"]) for entries in response["headers"].values() for e in entries]
        return 200, served, body


def handler_class(endpoints: Endpoints) -> type:
    cfg = endpoints.env.cfg

    class StandIn(http.server.BaseHTTPRequestHandler):
        """The load balancer (API domain) and CloudFront (site domain) on one HTTPS port."""

        def do_GET(self) -> None:  # noqa: N802
            host, path = self.headers["Host"].split(":")[0], self.path.split("?")[0]
            endpoints.log.append(f"{host}{path}")
            if host == cfg.api.domain:
                status = endpoints.health_status if path == cfg.api.health_check.path else 404
                headers, body = [("Content-Type", "application/json")], b'{"status": "ok"}'
            else:
                status, headers, body = endpoints.site(path)
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return StandIn


class RedirectToHttps(http.server.BaseHTTPRequestHandler):
    """Port 80 of both: the listener's and the viewer protocol policy's redirect."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(301)
        self.send_header("Location", f"https://{self.headers['Host'].split(':')[0]}{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@dataclass
class StandIns:
    endpoints: Endpoints
    ca: Path
    connect_to: dict[tuple[str, int], tuple[str, int]]

    def arguments(self) -> list[str]:
        return [f"--ca-file={self.ca}", *(f"--connect-to={h}:{p}:{a}:{ap}"
                                          for (h, p), (a, ap) in self.connect_to.items())]

    def verifier(self, env: FakeEnvironment, **changes: Any) -> Verifier:
        settings = {"warm_up": datetime.timedelta(minutes=30),
                    "restore_window": datetime.timedelta(minutes=15), **changes}
        return Verifier(connect(env.cfg, env.session), Network(self.connect_to, self.ca, 5.0), **settings)


def start_stand_ins(env: FakeEnvironment, tmp_path: Path, headers_file: Path = HEADERS_FILE,
                    oldest_tls: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> Iterator[StandIns]:
    cfg = env.cfg
    tmp_path.mkdir()
    ca, cert, key = local_ca(tmp_path, (cfg.api.domain, cfg.frontend.domain))
    endpoints = Endpoints(env, edge_handler(tmp_path / "edge", headers_file))
    https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class(endpoints))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    if oldest_tls < ssl.TLSVersion.TLSv1_2:
        tls.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the weak server, on purpose
            tls.minimum_version = oldest_tls
    https.socket = tls.wrap_socket(https.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RedirectToHttps)
    serve(https)
    serve(plain)
    connect_to = {(host, port): ("127.0.0.1", server.server_address[1])
                  for host in (cfg.api.domain, cfg.frontend.domain)
                  for port, server in ((443, https), (80, plain))}
    try:
        yield StandIns(endpoints, ca, connect_to)
    finally:
        for server in (https, plain):
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def deployed_dev(moto: Moto, tmp_path_factory: pytest.TempPathFactory) -> FakeEnvironment:
    """The fake dev environment with a small Vite-shaped site published by publish-site, made
    once for the module: verify only reads it, and ``dev`` undoes what the tests change."""
    moto.reset()
    env = deploy_fake_environment(moto, config("dev"))
    tmp_path = tmp_path_factory.mktemp("dev")
    site = tmp_path / "dist"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_bytes(INDEX)
    (site / "assets" / "index-AbCdEf12.js").write_text("export {}\n")
    (site / "assets" / "index-GhIjKl34.css").write_text("body{}\n")
    with pytest.MonkeyPatch.context() as monkeypatch:
        moto.use(monkeypatch, tmp_path, {"default": env.cfg.account})
        assert main(["publish-site", "--env", "dev", str(site)]) == 0
    return env


def healthy_alarms(env: FakeEnvironment) -> None:
    """Every alarm back to OK, as deploy_fake_environment leaves them (tests set other states)."""
    for region in {env.cfg.region, EDGE_REGION}:
        cloudwatch = env.client("cloudwatch", region)
        for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
            if alarm["StateValue"] != "OK":
                cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="OK",
                                           StateReason="healthy")


@pytest.fixture
def dev(deployed_dev: FakeEnvironment, moto: Moto, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Iterator[FakeEnvironment]:
    """The module's fake dev environment through a session of this test, healthy again after it."""
    env = deployed_dev.with_session(moto.session(deployed_dev.cfg.account))
    moto.use(monkeypatch, tmp_path, {"default": env.cfg.account})
    try:
        yield env
    finally:
        healthy_alarms(env)


@pytest.fixture
def stand_ins(dev: FakeEnvironment, tmp_path: Path) -> Iterator[StandIns]:
    yield from start_stand_ins(dev, tmp_path / "stand-ins")


def failing(rows: list[Row]) -> dict[str, str]:
    return {r.check: r.detail for r in rows if not r.ok}


@pytest.mark.slow
def test_verify_passes_on_a_healthy_environment(stand_ins: StandIns, moto: Moto,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    mark = moto.recorded()
    code = main(["verify", "--env", "dev", *stand_ins.arguments()])
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert moto.denied_to_the_deploy_role(config("dev"), mark) == []  # as dev's deploy role

    assert code == 0, out
    rows = [line for line in out.splitlines() if re.search(r"  (PASS|FAIL|SKIP|WAIT)  ", line)]
    assert len(rows) == 21 and all("  PASS  " in r for r in rows), out
    assert "dev: 21 passed, 0 failed, 0 skipped, 0 waiting" in out
    # What the stand-ins were asked: the health check, both domains' pages, the client-side
    # route and the hashed asset the page references.
    cfg = stand_ins.endpoints.env.cfg
    assert {f"{cfg.api.domain}/health", f"{cfg.frontend.domain}/",
            f"{cfg.frontend.domain}/verify/client-side-route",
            f"{cfg.frontend.domain}/assets/index-AbCdEf12.js"} <= set(stand_ins.endpoints.log)
    print(f"verify against the stand-ins: {elapsed:.2f} s")


@pytest.mark.slow
def test_verify_exits_8_and_names_the_failure(stand_ins: StandIns,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    stand_ins.endpoints.health_status = 500

    assert main(["verify", "--env", "dev", *stand_ins.arguments()]) == 8

    out = capsys.readouterr().out
    assert [line.split("  FAIL  ")[0].strip() for line in out.splitlines() if "  FAIL  " in line] == [
        "api /health over https"]
    assert "dev: 20 passed, 1 failed, 0 skipped, 0 waiting" in out


@pytest.mark.slow
def test_a_500_from_health_fails_its_row(stand_ins: StandIns, dev: FakeEnvironment) -> None:
    stand_ins.endpoints.health_status = 500
    assert failing(stand_ins.verifier(dev).rows()) == {
        "api /health over https": "https://api.dev.communitytracker.example.com/health answered 500"}


@pytest.mark.slow
def test_a_missing_security_header_fails_its_row(dev: FakeEnvironment, tmp_path: Path) -> None:
    headers = json.loads(HEADERS_FILE.read_text())["headers"]
    del headers["X-Frame-Options"]
    weak = tmp_path / "weak.json"
    weak.write_text(json.dumps({"headers": headers}))
    for stand_ins in start_stand_ins(dev, tmp_path / "stand-ins", headers_file=weak):
        assert failing(stand_ins.verifier(dev).rows()) == {"site security headers": "X-Frame-Options missing"}


@pytest.mark.slow
def test_an_alarm_in_alarm_fails_its_row(stand_ins: StandIns, dev: FakeEnvironment) -> None:
    name = f"{dev.cfg.stack_name}-api-error-rate"
    dev.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    assert failing(stand_ins.verifier(dev).rows()) == {"alarms none in ALARM": f"in ALARM: {name}"}


@pytest.mark.slow
def test_an_alarm_without_data_past_the_warm_up_fails_its_row(stand_ins: StandIns,
                                                              dev: FakeEnvironment) -> None:
    name = f"{dev.cfg.edge_stack_name}-edge-function-errors"
    dev.client("cloudwatch", EDGE_REGION).set_alarm_state(AlarmName=name, StateValue="INSUFFICIENT_DATA",
                                                          StateReason="test")
    assert failing(stand_ins.verifier(dev).rows()) == {}  # within the warm-up
    rows = stand_ins.verifier(dev, warm_up=datetime.timedelta(0)).rows()
    assert list(failing(rows)) == ["alarms reporting data"]
    assert name in failing(rows)["alarms reporting data"]


@pytest.mark.slow
def test_a_pending_subscription_fails_its_row(stand_ins: StandIns, dev: FakeEnvironment) -> None:
    verifier = stand_ins.verifier(dev)
    sns = dev.session.client("sns", region_name="us-east-1")
    topics = [dev.outputs[dev.cfg.stack_name]["AlarmWarningTopicArn"],
              dev.outputs[dev.cfg.edge_stack_name]["AlarmWarningTopicArn"]]
    with Stubber(sns) as stub:
        confirmed = f"{topics[1]}:6b0e71bd-7e97-4d97-80ce-4a0994e55286"
        for topic, arn in zip(topics, ["PendingConfirmation", confirmed], strict=True):
            stub.add_response("list_subscriptions_by_topic", {"Subscriptions": [{
                "SubscriptionArn": arn, "Owner": dev.cfg.account, "Protocol": "email",
                "Endpoint": "devops-team@communitytracker.example.com", "TopicArn": topic}]},
                {"TopicArn": topic})
        verifier.aws._clients[("sns", "us-east-1")] = sns
        rows = verifier.rows()
        stub.assert_no_pending_responses()
    assert failing(rows) == {"alarm subscriptions confirmed":
                             "tracker-dev-warning: pending devops-team@communitytracker.example.com"}


@pytest.mark.slow
def test_a_stack_in_update_rollback_complete_fails_its_row(stand_ins: StandIns, dev: FakeEnvironment) -> None:
    verifier = stand_ins.verifier(dev)
    cloudformation = dev.session.client("cloudformation", region_name="us-east-1")
    with Stubber(cloudformation) as stub:
        for name in (dev.cfg.stack_name, dev.cfg.edge_stack_name):
            answer = dev.client("cloudformation").describe_stacks(StackName=name)
            del answer["ResponseMetadata"]
            if name == dev.cfg.stack_name:
                answer["Stacks"][0]["StackStatus"] = "UPDATE_ROLLBACK_COMPLETE"
            stub.add_response("describe_stacks", answer, {"StackName": name})
        edge = {"StackName": dev.cfg.edge_stack_name}  # the site rows' bucket, looked up once
        resources = dev.client("cloudformation").list_stack_resources(**edge)["StackResourceSummaries"]
        stub.add_response("list_stack_resources",  # moto lists the placeholder it skips with no type
                          {"StackResourceSummaries": [r for r in resources if r["ResourceType"]]}, edge)
        verifier.aws._clients[("cloudformation", "us-east-1")] = cloudformation
        rows = verifier.rows()
        stub.assert_no_pending_responses()
    assert failing(rows) == {"stack tracker-dev": "UPDATE_ROLLBACK_COMPLETE"}


@pytest.mark.slow
def test_tls_1_1_accepted_fails_the_tls_rows(dev: FakeEnvironment, tmp_path: Path) -> None:
    for stand_ins in start_stand_ins(dev, tmp_path / "stand-ins", oldest_tls=ssl.TLSVersion.TLSv1_1):
        assert failing(stand_ins.verifier(dev).rows()) == {
            "api tls 1.2+ only": "accepts TLSv1.1", "site tls 1.2+ only": "accepts TLSv1.1"}


@contextlib.contextmanager
def unreleased(dev: FakeEnvironment) -> Iterator[None]:
    """The regional stand-in stack as a first create leaves it: ApiImageDigest empty."""
    cloudformation = dev.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=dev.cfg.stack_name)["Stacks"][0]
    given = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    def update(values: dict[str, str]) -> None:
        cloudformation.update_stack(StackName=dev.cfg.stack_name, UsePreviousTemplate=True, Parameters=[
            {"ParameterKey": k, "ParameterValue": v} for k, v in values.items()])

    update({**given, "ApiImageDigest": ""})
    try:
        yield
    finally:
        update(given)


@pytest.mark.slow
def test_an_unreleased_environment_skips_the_api_and_waits_for_its_alarms(
        stand_ins: StandIns, dev: FakeEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    """A first create: no image, so no task; /health answers 503 and the task and target alarms
    are in ALARM (missing data is breaching). Nothing of that fails verify."""
    stand_ins.endpoints.health_status = 503
    cloudwatch = dev.client("cloudwatch")
    for alarm in ("api-running-tasks", "api-no-healthy-targets"):
        cloudwatch.set_alarm_state(AlarmName=f"{dev.cfg.stack_name}-{alarm}", StateValue="ALARM",
                                   StateReason="no task yet")
    with unreleased(dev):
        code = main(["verify", "--env", "dev", *stand_ins.arguments()])
        rows = {r.check: r for r in stand_ins.verifier(dev).rows()}
        # an alarm that does not watch the API's tasks still fails before a release
        cloudwatch.set_alarm_state(AlarmName=f"{dev.cfg.stack_name}-database-connection-failures",
                                   StateValue="ALARM", StateReason="test")
        broken = failing(stand_ins.verifier(dev).rows())
    out = capsys.readouterr().out
    assert code == 0, out
    skipped = {name for name, r in rows.items() if r.state == "SKIP"}
    assert skipped == {"api /health over https", "api service running tasks", "api targets healthy"}
    assert all(rows[name].detail == "no image released yet (render.py release-image)" for name in skipped)
    assert rows["alarms none in ALARM"].state == "WAIT"
    assert "tracker-dev-api-running-tasks" in rows["alarms none in ALARM"].detail
    assert "dev: 18 passed, 0 failed, 3 skipped, 0 waiting" not in out and ", 3 skipped, 1 waiting" in out
    assert broken == {"alarms none in ALARM": "in ALARM: tracker-dev-database-connection-failures"}


@pytest.mark.slow
def test_a_released_environment_fails_on_the_task_alarm_it_forgave_before(
        stand_ins: StandIns, dev: FakeEnvironment) -> None:
    name = f"{dev.cfg.stack_name}-api-running-tasks"
    dev.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    assert failing(stand_ins.verifier(dev).rows()) == {"alarms none in ALARM": f"in ALARM: {name}"}


@pytest.mark.slow
def test_what_a_stand_in_cannot_hold_is_not_judged(stand_ins: StandIns, dev: FakeEnvironment,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """--stand-in-lacks: the rows reading what the stand-in cannot hold are LIMITED, naming it,
    whatever they would find (an alarm in ALARM here); every other row is judged as without it."""
    dev.client("cloudwatch").set_alarm_state(AlarmName=alarm_names(dev.cfg, "app")[0], StateValue="ALARM",
                                             StateReason="breaching")
    lacks = ["--stand-in-lacks=AWS::CloudWatch::Alarm", "--stand-in-lacks=Outputs"]
    code = main(["verify", "--env", "dev", *stand_ins.arguments(), *lacks])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = {r.check: r for r in stand_ins.verifier(dev).rows()}  # the same run, judged whole
    limited = {line.split("  ", 1)[0] for line in out.splitlines() if "  LIMITED  " in line}
    assert limited == {"alarms none in ALARM", "alarms reporting data", "stack tracker-dev outputs",
                       "stack tracker-dev-edge outputs", "alarm subscriptions confirmed",
                       "api service running tasks", "api targets healthy"}, out
    assert rows["alarms none in ALARM"].state == "FAIL"
    assert all(rows[c].state == "PASS" for c in limited - {"alarms none in ALARM"}), rows
    assert ("not judged here: the stand-in makes no AWS::CloudWatch::Alarm from a template "
            "(--stand-in-lacks AWS::CloudWatch::Alarm)") in out
    assert f"{len(rows) - len(limited)} passed, 0 failed" in out and f"{len(limited)} not judged" in out


def test_stand_in_lacks_is_refused_without_a_stand_in(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Against AWS (no AWS_ENDPOINT_URL) every row is judged: the flag is refused before any call."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert main(["verify", "--env", "dev", "--stand-in-lacks=AWS::CloudWatch::Alarm"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --stand-in-lacks: AWS_ENDPOINT_URL: ") and err.count("\n") == 1, err


# --- day one: what cannot exist yet WAITs; day two: the same rows FAIL when broken ----------------
DNS_ROWS = ("api tls 1.2+ only", "api http redirects to https", "site tls 1.2+ only",
            "site http redirects to https")
SITE_ROWS = ("site / answers 200", "site security headers", "site client-side route",
             "site hashed asset cached long")


@contextlib.contextmanager
def unpublished(dev: FakeEnvironment) -> Iterator[None]:
    """The site bucket as a first create leaves it: no index.html (put back afterwards)."""
    s3 = dev.client("s3", EDGE_REGION)
    bucket = dev.outputs[dev.cfg.edge_stack_name]["FrontendBucketName"]
    found = s3.get_object(Bucket=bucket, Key="index.html")
    body = found["Body"].read()
    s3.delete_object(Bucket=bucket, Key="index.html")
    try:
        yield
    finally:
        s3.put_object(Bucket=bucket, Key="index.html", Body=body, ContentType=found["ContentType"],
                      CacheControl=found["CacheControl"])


def hosts(dev: FakeEnvironment) -> set[str]:
    return {dev.cfg.api.domain, dev.cfg.frontend.domain}


def without_stand_in_dns(stand_ins: StandIns, dev: FakeEnvironment, **changes: Any) -> Verifier:
    """A verifier that looks the names up (no --connect-to), reaching the stand-ins' CA."""
    verifier = stand_ins.verifier(dev, **changes)
    verifier.net = Network({}, stand_ins.ca, 2.0)
    return verifier


@pytest.mark.slow
def test_a_first_create_waits_for_its_dns_records_and_its_site_and_passes(
        stand_ins: StandIns, dev: FakeEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    """No image, no site, no DNS record (the resolver answers "no such name"): verify exits 0, and
    each waiting row names what brings it: the record the stack's output names, publish-site."""
    with unreleased(dev), unpublished(dev), without_dns_records(hosts(dev)):
        code = main(["verify", "--env", "dev"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = {line.split("  ", 1)[0]: line for line in out.splitlines()
            if re.search(r"  (PASS|FAIL|SKIP|WAIT)  ", line)}
    waiting = {check for check, line in rows.items() if "  WAIT  " in line}
    assert waiting == {*DNS_ROWS, *SITE_ROWS}, out
    api_record = dev.outputs[dev.cfg.stack_name]["ApiDnsRecord"]
    site_record = dev.outputs[dev.cfg.edge_stack_name]["FrontendDnsRecord"]
    assert f"{dev.cfg.api.domain} CNAME " in api_record and f"{dev.cfg.frontend.domain} CNAME " in site_record
    for check in waiting:
        host, record = ((dev.cfg.api.domain, api_record) if check.startswith("api")
                        else (dev.cfg.frontend.domain, site_record))
        assert f"no DNS record for {host} yet" in rows[check] and record in rows[check], rows[check]
        assert ("render.py publish-site" in rows[check]) == (check in SITE_ROWS), rows[check]
    assert "  SKIP  " in rows["api /health over https"]


@pytest.mark.slow
def test_a_site_not_published_waits_for_publish_site(stand_ins: StandIns, dev: FakeEnvironment) -> None:
    with unpublished(dev):
        rows = {r.check: r for r in stand_ins.verifier(dev).rows()}
    assert {c for c, r in rows.items() if r.state != "PASS"} == set(SITE_ROWS)
    assert all(rows[c].state == "WAIT" and rows[c].detail.startswith("no site published yet (render.py "
                                                                    "publish-site") for c in SITE_ROWS)


@pytest.mark.slow
def test_once_the_names_resolve_a_broken_endpoint_fails(stand_ins: StandIns, dev: FakeEnvironment,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both names have their records, but nothing answers where they point: FAIL, not WAIT."""
    import socket

    from tracker_infra.rehearsal.server import free_port

    closed, real = free_port(), socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in hosts(dev):
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", closed))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    rows = failing(without_stand_in_dns(stand_ins, dev).rows())
    assert set(rows) == {"api /health over https", *DNS_ROWS, *SITE_ROWS}
    assert all("Connection refused" in detail for detail in rows.values()), rows


@pytest.mark.slow
def test_a_resolver_that_cannot_tell_fails_every_row_that_needs_the_name(
        stand_ins: StandIns, dev: FakeEnvironment) -> None:
    """A lookup failing otherwise than "no such name" (here EAI_AGAIN: no answer) is not a new
    environment's state: the rows FAIL, saying the record cannot be told."""
    import socket

    with unpublished(dev), without_dns_records(hosts(dev), socket.EAI_AGAIN,
                                               "Temporary failure in name resolution"):
        rows = failing(without_stand_in_dns(stand_ins, dev).rows())
    assert set(rows) == {"api /health over https", *DNS_ROWS, *SITE_ROWS}
    assert all(detail.startswith("cannot tell whether ") and " has a DNS record: " in detail
               and "Temporary failure" in detail for detail in rows.values()), rows


@pytest.mark.slow
def test_a_name_the_stack_created_in_its_hosted_zone_that_does_not_resolve_fails(
        stand_ins: StandIns, dev: FakeEnvironment) -> None:
    zone = "Z0444444444444EXAMPLE"
    cfg = dev.cfg.model_copy(update={"dns": dev.cfg.dns.model_copy(update={"hosted_zone_id": zone})})
    verifier = without_stand_in_dns(stand_ins, dev)
    verifier.aws = connect(cfg, dev.session)
    with without_dns_records(hosts(dev)):
        rows = failing(verifier.rows())
    assert set(rows) == {"api /health over https", *DNS_ROWS, *SITE_ROWS}
    assert all(f"has no DNS record, though the stack creates it in Route 53 zone {zone}" in detail
               for detail in rows.values()), rows


@pytest.mark.slow
def test_a_site_bucket_that_cannot_be_read_fails_the_site_rows(stand_ins: StandIns,
                                                               dev: FakeEnvironment) -> None:
    """HeadObject answering 403 (what S3 answers for a missing key without s3:ListBucket) cannot
    tell whether a site is published."""
    verifier = stand_ins.verifier(dev)
    s3 = dev.session.client("s3", region_name=EDGE_REGION)
    bucket = dev.outputs[dev.cfg.edge_stack_name]["FrontendBucketName"]
    with Stubber(s3) as stub:
        for _ in SITE_ROWS:
            stub.add_client_error("head_object", "403", "Forbidden", 403,
                                  expected_params={"Bucket": bucket, "Key": "index.html"})
        verifier.aws._clients[("s3", EDGE_REGION)] = s3
        rows = failing(verifier.rows())
        stub.assert_no_pending_responses()
    assert set(rows) == set(SITE_ROWS)
    assert all(d.startswith(f"cannot tell whether a site is published (s3://{bucket}/index.html)")
               for d in rows.values()), rows
