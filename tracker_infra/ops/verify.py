"""Check that a deployed environment works: the post-deployment checklist, as a pass/fail table.

  python render.py verify --env staging

Stacks complete and every output present; the API's health check answers 200 over HTTPS on the
API domain, TLS 1.1 refused, plain HTTP redirected; the site answers 200 on `/` and on a
client-side route, with every security header the environment configures (graded by the rule
the edge function's tests use, tracker_infra/header_grading.py), a content-hashed asset with the
long cache time; alarm subscriptions confirmed, no alarm in ALARM, none stuck without data past a
warm-up; the database available with backups and a recent restorable time; the service running
at least its minimum tasks, every target healthy.

For stand-ins, --connect-to HOST:PORT:ADDRESS:PORT sends a host's traffic elsewhere (TLS name
and Host header unchanged, like curl's option; the host is not looked up, the option stands in
for its DNS record) and --ca-file trusts a private CA.

Each row is PASS, FAIL, SKIP (nothing to check yet: before the first release the API's health,
tasks and targets are skipped) or WAIT (the state a new environment is in: before the first
release, the API's task and target alarms in ALARM, alarms without data, e-mail subscriptions
not yet confirmed; without a hosted zone, the API's or the site's name without a DNS record yet;
no site published yet) or LIMITED (not judged: a stand-in told verify, through --stand-in-lacks,
that it cannot hold what the row reads; render.py rehearse does, for moto). Only FAIL fails; a
check with nothing to check is never a PASS.

Whether a name has its record and a site is published are facts looked up, not guessed from a
failure: the system's resolver answering "no such name" or "no address" for the name, the site
bucket (the physical ID of the edge stack's resource its output FrontendBucketName returns, read
with ListStackResources) answering 404 for index.html. Any other answer (a resolver that does
not answer, a bucket that cannot be found or read) cannot tell, and the rows that need it FAIL
saying so. Once the name resolves and the site is published, the same rows FAIL when what they
check is broken.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import os
import re
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import EXIT_OK, EXIT_USER, EXIT_VERIFY_FAILED, UserError
from ..header_grading import header_problems
from ..rendering import EDGE_REGION
from ..schema import Config
from .aws import Aws, add_env_arguments, load, required_outputs
from .publish import HASHED_ASSET

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "nothing failed (SKIP, WAIT and LIMITED do not fail)",
    EXIT_USER: "",
    EXIT_VERIFY_FAILED: "",
}

COMPLETE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
REDIRECTS = {301, 302, 307, 308}
CLIENT_ROUTE = "/verify/client-side-route"
ASSET_REFERENCE = re.compile(r'(?:src|href)="/(assets/[^"?#]+)"')
MAX_BODY = 4 * 1024 * 1024


class Failed(Exception):
    """A check did not pass; the message says what was found."""


class Skipped(Exception):
    """A check that has nothing to check yet (no image released): shown, never a pass."""


class Waiting(Exception):
    """Found in a state a new environment is expected to be in (alarms without data, e-mail
    subscriptions not yet confirmed before the first release): shown, does not fail."""


class NotJudged(Exception):
    """What the check reads is what the stand-in verify runs against cannot hold (--stand-in-lacks):
    shown, neither a pass nor a failure."""


STATES = {Failed: "FAIL", Skipped: "SKIP", Waiting: "WAIT", NotJudged: "LIMITED"}
# What verify reads that a stand-in may be unable to hold (--stand-in-lacks): the stacks' outputs,
# and resources of these types made from the templates. Each -> what a stand-in lacking it lacks.
STAND_IN_FACTS = {
    "Outputs": "fills no stack outputs",
    **{t: f"makes no {t} from a template"
       for t in ("AWS::CloudWatch::Alarm", "AWS::SNS::Subscription", "AWS::RDS::DBCluster")},
}
# What the alarms that may be in ALARM until the first release watch: the API's tasks and targets.
API_TYPES = ("AWS::ECS::Service", "AWS::ElasticLoadBalancingV2::TargetGroup",
             "AWS::ElasticLoadBalancingV2::LoadBalancer")
NOT_RELEASED = "no image released yet (render.py release-image)"
NOT_PUBLISHED = ("no site published yet (render.py publish-site: "
                 "make publish ENV={env} DIST=path/to/vite/dist)")
# getaddrinfo's errors for a name DNS has no address for: EAI_NONAME (NXDOMAIN, or no record of
# the type asked) and, where the C library has it, EAI_NODATA (the name without an address). Any
# other (EAI_AGAIN: no answer or SERVFAIL; EAI_FAIL) cannot tell.
NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
SITE_INDEX = "index.html"  # the object publish-site uploads last (tracker_infra/ops/publish.py)


@dataclass(frozen=True)
class Row:
    check: str
    state: str  # PASS | FAIL | SKIP | WAIT | LIMITED
    detail: str

    @property
    def ok(self) -> bool:
        return self.state != "FAIL"


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")


@dataclass
class Network:
    """HTTP(S) to the environment's domains, optionally redirected to stand-ins."""

    connect_to: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    ca_file: Path | None = None
    timeout: float = 10.0

    def _socket(self, host: str, port: int) -> socket.socket:
        return socket.create_connection(self.connect_to.get((host, port), (host, port)), self.timeout)

    def _context(self, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        context.minimum_version = version or ssl.TLSVersion.TLSv1_2
        if version:
            context.maximum_version = version
        return context

    def get(self, url: str) -> Response:
        parts = urlsplit(url)
        host, https = parts.hostname or "", parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        conn = (http.client.HTTPSConnection if https else http.client.HTTPConnection)(
            host, port, timeout=self.timeout)
        raw = self._socket(host, port)
        conn.sock = self._context().wrap_socket(raw, server_hostname=host) if https else raw
        try:
            conn.request("GET", parts.path or "/", headers={"User-Agent": "tracker-infra-verify"})
            response = conn.getresponse()
            return Response(response.status, response.getheaders(), response.read(MAX_BODY))
        finally:
            conn.close()

    def has_record(self, host: str) -> bool:
        """Whether DNS gives the host an address (a host given to --connect-to has one); Failed
        when the resolver's answer cannot tell."""
        if any(name == host for name, _ in self.connect_to):
            return True
        try:
            socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in NO_SUCH_NAME:
                return False
            raise Failed(f"cannot tell whether {host} has a DNS record: {exc}") from None
        return True

    def handshake(self, host: str, version: ssl.TLSVersion) -> str:
        """The TLS version the host's HTTPS endpoint agrees to when offered only ``version``."""
        context = self._context(version)
        if version < ssl.TLSVersion.TLSv1_2:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this machine offer what it probes
        with self._socket(host, 443) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
            return str(tls.version())


def tls_detail(net: Network, host: str) -> str:
    """TLS 1.2 accepted and TLS 1.1 refused by the server, or Failed."""
    accepted = net.handshake(host, ssl.TLSVersion.TLSv1_2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1: probed on purpose
        try:
            old = net.handshake(host, ssl.TLSVersion.TLSv1_1)
        except ssl.SSLError as exc:
            if exc.reason == "NO_PROTOCOLS_AVAILABLE":
                raise Failed("not proven: this machine's OpenSSL cannot offer TLS 1.1") from None
            return f"{accepted} accepted; TLS 1.1 refused ({exc.reason})"
        except (ConnectionError, TimeoutError):
            return f"{accepted} accepted; TLS 1.1 refused (connection closed)"
    raise Failed(f"accepts {old}")


def redirect_detail(net: Network, host: str, path: str) -> str:
    response = net.get(f"http://{host}{path}")
    location = response.header("Location")
    if response.status not in REDIRECTS or not location.startswith(f"https://{host}"):
        raise Failed(f"http://{host}{path} answered {response.status} {location}".strip())
    return f"{response.status} -> {location}"


def ok_response(net: Network, url: str) -> Response:
    response = net.get(url)
    if response.status != 200:
        raise Failed(f"{url} answered {response.status}")
    return response


def after(need: Callable[[], None], check: Callable[[], str]) -> Callable[[], str]:
    """``check``, once ``need`` has not raised (Waiting or Failed when what it checks cannot be)."""
    def run() -> str:
        need()
        return check()
    return run


@dataclass(frozen=True)
class Expected:
    """What a stack's rendered template says verify should find."""

    region: str
    outputs: list[str]
    alarms: list[str]
    api_alarms: set[str]  # those watching the API's service, target group or load balancer
    parameter_outputs: set[str]  # outputs that return a parameter (may be empty, e.g. the image)
    output_resources: dict[str, str]  # output -> the logical ID of the resource it returns (a Ref)


def template_outputs_and_alarms(cfg: Config) -> dict[str, Expected]:
    """Stack name -> what its template (rendered from the vars) says verify should find."""
    from ..cfn_yaml import references
    from ..output import check_template
    from ..rendering import render_stack, stacks

    found = {}
    for stack in stacks(cfg):
        template = check_template(render_stack(cfg, stack), f"{cfg.environment}/{stack.output}")
        resources = template["Resources"]
        api = {lid for lid, r in resources.items() if r["Type"] in API_TYPES}
        alarms = {r["Properties"]["AlarmName"]: set(references(r["Properties"])) for r in resources.values()
                  if r["Type"] == "AWS::CloudWatch::Alarm"}
        outputs = template.get("Outputs", {})
        returned = {k: o["Value"]["Ref"] for k, o in outputs.items()
                    if isinstance(o["Value"], dict) and "Ref" in o["Value"]}
        found[stack.name] = Expected(
            stack.region, list(outputs), list(alarms), {a for a, refs in alarms.items() if refs & api},
            {k for k, ref in returned.items() if ref in template.get("Parameters", {})},
            {k: ref for k, ref in returned.items() if ref in resources})
    return found


@dataclass
class Verifier:
    aws: Aws
    net: Network
    warm_up: datetime.timedelta
    restore_window: datetime.timedelta
    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
    lacks: frozenset[str] = frozenset()  # STAND_IN_FACTS the stand-in cannot hold (--stand-in-lacks)
    # host -> whether it has its DNS record, or why that cannot be told: looked up once per run
    records: dict[str, bool | Failed] = field(default_factory=dict, init=False)

    @property
    def cfg(self) -> Config:
        return self.aws.cfg

    @cached_property
    def expected(self) -> dict[str, Expected]:
        return template_outputs_and_alarms(self.cfg)

    @cached_property
    def deployed(self) -> dict[str, dict[str, Any] | None]:
        return {name: self.aws.describe_stack(name, e.region) for name, e in self.expected.items()}

    def outputs(self, name: str) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in (self.deployed[name] or {}).get("Outputs", [])}

    def stand_in_holds(self, *facts: str) -> None:
        """NotJudged when the stand-in cannot hold one of ``facts`` (STAND_IN_FACTS keys)."""
        lacking = [f"{STAND_IN_FACTS[f]} (--stand-in-lacks {f})" for f in facts if f in self.lacks]
        if lacking:
            raise NotJudged(f"not judged here: the stand-in {'; it '.join(lacking)}")

    def resource_behind(self, name: str, output: str) -> str:
        """The physical ID of the resource the stack's output returns by Ref, from the stack's own
        list of what it made (ListStackResources' PhysicalResourceId: "the name or unique
        identifier that corresponds to a physical instance ID of a resource", CloudFormation API
        Reference, StackResourceSummary; a bucket's is its name, as its Ref). Read so, it needs no
        filled outputs. (moto 5.2.5's DescribeStackResource answers 500 when an earlier resource
        is of a type it does not model; its list answers.) Failed when there is no such resource."""
        expected = self.expected[name]
        logical_id = expected.output_resources.get(output)
        found = [r["PhysicalResourceId"] for r in self.aws.resources(name, expected.region)
                 if logical_id and r["LogicalResourceId"] == logical_id]
        if not found:
            raise Failed(f"{name} has no resource {logical_id or '(none: the output returns no Ref)'} "
                         f"behind its output {output}")
        return str(found[0])

    @cached_property
    def released(self) -> bool:
        """Whether the regional stack runs an image (ApiImageDigest set by release-image)."""
        from .aws import parameters

        return bool(parameters(self.deployed.get(self.cfg.stack_name)).get("ApiImageDigest"))

    def require_release(self) -> None:
        if not self.released:
            raise Skipped(NOT_RELEASED)

    def require_record(self, host: str, stack: str, output: str) -> None:
        """Waiting when the host has no DNS record yet and one is to be created by hand (no hosted
        zone: the stack's output names it); Failed when the stack made it and it does not resolve."""
        if host not in self.records:
            try:
                self.records[host] = self.net.has_record(host)
            except Failed as exc:
                self.records[host] = exc
        found = self.records[host]
        if isinstance(found, Failed):
            raise Failed(str(found))
        if found:
            return
        zone = self.cfg.dns.hosted_zone_id
        if zone:
            raise Failed(f"{host} has no DNS record, though the stack creates it in Route 53 zone {zone}")
        record = self.outputs(stack).get(output) or f"Create the record {stack}'s output {output} names."
        raise Waiting(f"no DNS record for {host} yet. {record}")

    def require_api_record(self) -> None:
        self.require_record(self.cfg.api.domain, self.cfg.stack_name, "ApiDnsRecord")

    def require_site_record(self) -> None:
        self.require_record(self.cfg.frontend.domain, self.cfg.edge_stack_name, "FrontendDnsRecord")

    @cached_property
    def site_bucket(self) -> str:
        """The bucket behind the edge stack's output FrontendBucketName (looked up once a run)."""
        from botocore.exceptions import ClientError

        try:
            return self.resource_behind(self.cfg.edge_stack_name, "FrontendBucketName")
        except (ClientError, Failed) as exc:
            raise Failed(f"cannot tell whether a site is published: no site bucket found ({exc})") from None

    def require_published(self) -> None:
        """Waiting when the site bucket (the resource behind the edge stack's FrontendBucketName)
        holds no index.html (HeadObject answers 404: the deploy role may list the bucket; without
        s3:ListBucket S3 answers 403, S3 API Reference, HeadObject); Failed when the bucket cannot
        be found or cannot tell."""
        from botocore.exceptions import ClientError

        bucket = self.site_bucket
        try:
            self.aws.client("s3", EDGE_REGION).head_object(Bucket=bucket, Key=SITE_INDEX)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise Waiting(NOT_PUBLISHED.format(env=self.cfg.environment)) from None
            raise Failed(f"cannot tell whether a site is published (s3://{bucket}/{SITE_INDEX}): "
                         f"{exc}") from None

    def require_site(self) -> None:
        """The site's record and a published site; every reason to wait in one."""
        waits = []
        for need in (self.require_site_record, self.require_published):
            try:
                need()
            except Waiting as exc:
                waits.append(str(exc))
        if waits:
            raise Waiting("; ".join(waits))

    @cached_property
    def headers(self) -> dict[str, str]:
        from ..rendering import edge_headers

        return edge_headers(self.cfg)

    @cached_property
    def site_root(self) -> Response:
        return ok_response(self.net, f"https://{self.cfg.frontend.domain}/")

    # --- the checks: each returns the detail of a pass or raises Failed --------------------

    def stack_status(self, name: str) -> str:
        stack = self.deployed[name]
        if stack is None:
            raise Failed("does not exist")
        if stack["StackStatus"] not in COMPLETE:
            raise Failed(stack["StackStatus"])
        return stack["StackStatus"]

    def stack_outputs(self, name: str) -> str:
        self.stand_in_holds("Outputs")
        expected = self.expected[name]
        given = self.outputs(name)
        # an output returning a parameter may be empty by design (ApiImageDigest before a release)
        present = {k for k, v in given.items() if v or k in expected.parameter_outputs}
        missing = [key for key in expected.outputs if key not in present]
        if missing:
            raise Failed(f"missing or empty: {', '.join(missing)}")
        return f"{len(expected.outputs)} present"

    def api_health(self) -> str:
        self.require_release()
        self.require_api_record()
        url = f"https://{self.cfg.api.domain}{self.cfg.api.health_check.path}"
        return f"{ok_response(self.net, url).status} from {url}"

    def site_headers(self) -> str:
        problems = header_problems(self.site_root.headers, self.headers)
        if problems:
            raise Failed("; ".join(problems))
        return f"{len(self.headers)} configured headers as configured"

    def site_route(self) -> str:
        response = ok_response(self.net, f"https://{self.cfg.frontend.domain}{CLIENT_ROUTE}")
        if not response.header("Content-Type").startswith("text/html"):
            raise Failed(f"{CLIENT_ROUTE} is {response.header('Content-Type')}, not the app's HTML")
        return f"200 text/html on {CLIENT_ROUTE}"

    def site_asset(self) -> str:
        page = self.site_root.body.decode("utf-8", "replace")
        asset = next((a for a in ASSET_REFERENCE.findall(page) if HASHED_ASSET.match(a)), None)
        if asset is None:
            raise Failed("index.html references no content-hashed asset (assets/<name>-<hash>.<ext>)")
        response = ok_response(self.net, f"https://{self.cfg.frontend.domain}/{asset}")
        cache = response.header("Cache-Control")
        if f"max-age={self.cfg.frontend.cache.assets_seconds}" not in cache:
            raise Failed(f"/{asset} has Cache-Control {cache!r}")
        return f"/{asset}: {cache}"

    def topic_subscriptions(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(topic ARN, its subscriptions) of every alarm topic among the stacks' outputs."""
        for name, expected in self.expected.items():
            for key, arn in sorted(self.outputs(name).items()):
                if key.endswith("TopicArn"):
                    sns = self.aws.client("sns", expected.region)
                    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
                    yield arn, [s for page in pages for s in page["Subscriptions"]]

    def subscriptions(self) -> str:
        self.stand_in_holds("Outputs", "AWS::SNS::Subscription")
        topics, count, problems = 0, 0, []
        for arn, subs in self.topic_subscriptions():
            topics, count = topics + 1, count + len(subs)
            pending = [s["Endpoint"] for s in subs if s["SubscriptionArn"] == "PendingConfirmation"]
            if pending:
                problems.append(f"{arn.rsplit(':', 1)[-1]}: pending {', '.join(pending)}")
            elif not subs:
                problems.append(f"{arn.rsplit(':', 1)[-1]}: no subscription")
        if not topics:
            raise Failed("no alarm topic among the stacks' outputs (*TopicArn)")
        if problems and not self.released and all(": pending " in p for p in problems):
            raise Waiting("; ".join(problems) + " (confirm the e-mails; fails once an image is released)")
        if problems:
            raise Failed("; ".join(problems))
        return f"{count} confirmed on {topics} topics"

    @cached_property
    def alarms(self) -> tuple[list[dict[str, Any]], list[str]]:
        """(the environment's alarms as DescribeAlarms returns them, names not found)."""
        self.stand_in_holds("AWS::CloudWatch::Alarm")
        found, missing = [], []
        for expected in self.expected.values():
            names = expected.alarms
            if not names:
                continue
            answer = self.aws.client("cloudwatch", expected.region).describe_alarms(AlarmNames=names)
            alarms = answer["MetricAlarms"] + answer["CompositeAlarms"]
            found += alarms
            missing += sorted(set(names) - {a["AlarmName"] for a in alarms})
        return found, missing

    def alarms_quiet(self) -> str:
        alarms, missing = self.alarms
        if not alarms:
            raise Failed("no alarm of the stacks found")
        firing = [a for a in alarms if a["StateValue"] == "ALARM"]
        api_alarms = {a for e in self.expected.values() for a in e.api_alarms}
        expected = [a["AlarmName"] for a in firing if not self.released and a["AlarmName"] in api_alarms]
        broken = [a["AlarmName"] for a in firing if a["AlarmName"] not in expected]
        problems = [f"{what}: {', '.join(names)}" for what, names in (("in ALARM", broken),
                                                                        ("missing", missing)) if names]
        if problems:
            raise Failed("; ".join(problems))
        if expected:
            raise Waiting(f"in ALARM until the first release: {', '.join(expected)} ({NOT_RELEASED})")
        return f"{len(alarms)} alarms, none in ALARM"

    def alarms_reporting(self) -> str:
        alarms, _ = self.alarms
        if not alarms:
            raise Failed("no alarm of the stacks found")
        waiting = [a for a in alarms if a["StateValue"] == "INSUFFICIENT_DATA"]
        stuck = [a["AlarmName"] for a in waiting
                 if self.now - a["AlarmConfigurationUpdatedTimestamp"] > self.warm_up]
        if stuck and not self.released:
            raise Waiting(f"INSUFFICIENT_DATA on a new environment: {', '.join(stuck)} ({NOT_RELEASED})")
        if stuck:
            raise Failed(f"INSUFFICIENT_DATA past the {self.warm_up} warm-up: {', '.join(stuck)}")
        return f"{len(alarms) - len(waiting)} with data, {len(waiting)} still warming up"

    @cached_property
    def cluster(self) -> dict[str, Any]:
        self.stand_in_holds("AWS::RDS::DBCluster")
        rds = self.aws.client("rds")
        return rds.describe_db_clusters(DBClusterIdentifier=self.cfg.stack_name)["DBClusters"][0]

    def database_available(self) -> str:
        members = len(self.cluster.get("DBClusterMembers", []))
        if self.cluster["Status"] != "available" or members < self.cfg.database.instances:
            raise Failed(f"{self.cluster['Status']}, {members} instances "
                         f"(expected available, {self.cfg.database.instances})")
        return f"available, {members} instances"

    def database_backups(self) -> str:
        days, wanted = self.cluster["BackupRetentionPeriod"], self.cfg.database.backup_retention_days
        if days < wanted:
            raise Failed(f"backups kept {days} days (vars: {wanted})")
        return f"backups kept {days} days"

    def database_restorable(self) -> str:
        latest = self.cluster.get("LatestRestorableTime")
        if latest is None or self.now - latest > self.restore_window:
            raise Failed(f"latest restorable time {latest} is older than {self.restore_window}")
        return f"restorable from {self.cluster.get('EarliestRestorableTime')} to {latest}"

    @cached_property
    def service(self) -> dict[str, Any]:
        self.stand_in_holds("Outputs")
        cluster, service = required_outputs(self.outputs(self.cfg.stack_name), self.cfg.stack_name,
                                            ("EcsClusterName", "ApiServiceName"), self.cfg.environment)
        return self.aws.client("ecs").describe_services(cluster=cluster, services=[service])["services"][0]

    def service_tasks(self) -> str:
        self.require_release()
        running = self.service["runningCount"]
        if running < self.cfg.api.min_tasks:
            raise Failed(f"{running} running (minimum {self.cfg.api.min_tasks})")
        return f"{running} running (minimum {self.cfg.api.min_tasks})"

    def targets(self) -> str:
        self.require_release()
        elbv2 = self.aws.client("elbv2")
        states = [t["TargetHealth"]["State"]
                  for lb in self.service.get("loadBalancers", [])
                  for t in elbv2.describe_target_health(
                      TargetGroupArn=lb["targetGroupArn"])["TargetHealthDescriptions"]]
        if not states or any(state != "healthy" for state in states):
            raise Failed(f"target states: {', '.join(states) or 'no target'}")
        return f"{len(states)} healthy"

    def checks(self) -> Iterator[tuple[str, Callable[[], str]]]:
        api, site = self.cfg.api.domain, self.cfg.frontend.domain
        for name in self.expected:
            yield f"stack {name}", lambda name=name: self.stack_status(name)
            yield f"stack {name} outputs", lambda name=name: self.stack_outputs(name)
        yield "api /health over https", self.api_health
        yield "api tls 1.2+ only", after(self.require_api_record, lambda: tls_detail(self.net, api))
        yield "api http redirects to https", after(self.require_api_record, lambda: redirect_detail(
            self.net, api, self.cfg.api.health_check.path))
        yield "site / answers 200", after(self.require_site,
                                          lambda: f"{self.site_root.status} from https://{site}/")
        yield "site security headers", after(self.require_site, self.site_headers)
        yield "site client-side route", after(self.require_site, self.site_route)
        yield "site hashed asset cached long", after(self.require_site, self.site_asset)
        yield "site tls 1.2+ only", after(self.require_site_record, lambda: tls_detail(self.net, site))
        yield "site http redirects to https", after(self.require_site_record,
                                                    lambda: redirect_detail(self.net, site, "/"))
        yield "alarm subscriptions confirmed", self.subscriptions
        yield "alarms none in ALARM", self.alarms_quiet
        yield "alarms reporting data", self.alarms_reporting
        yield "database available", self.database_available
        yield "database backups", self.database_backups
        yield "database point-in-time recovery", self.database_restorable
        yield "api service running tasks", self.service_tasks
        yield "api targets healthy", self.targets

    def rows(self) -> list[Row]:
        from botocore.exceptions import BotoCoreError, ClientError

        rows = []
        for name, check in self.checks():
            try:
                rows.append(Row(name, "PASS", check()))
            except (Failed, Skipped, Waiting, NotJudged) as exc:
                rows.append(Row(name, STATES[type(exc)], str(exc)))
            except (ClientError, BotoCoreError, OSError, http.client.HTTPException, UserError) as exc:
                rows.append(Row(name, "FAIL", f"{type(exc).__name__}: {exc}"))
        return rows


def print_table(rows: list[Row]) -> None:
    """One row per check; on a terminal the verdicts are coloured and each line fits its width."""
    from ..terminal import clip, paint, width

    left, states = max(len(r.check) for r in rows), max(len(r.state) for r in rows)
    columns = width()
    for r in rows:
        line = f"{r.check:<{left}}  {r.state:<{states}}  {r.detail}"
        print(paint(clip(line, columns) if columns else line))


def summary(env: str, rows: list[Row], seconds: float) -> str:
    counts = {state: sum(r.state == state for r in rows)
              for state in ("PASS", "FAIL", "SKIP", "WAIT", "LIMITED")}
    limited = f", {counts['LIMITED']} not judged (the stand-in cannot hold them)" if counts["LIMITED"] else ""
    return (f"{env}: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped, "
            f"{counts['WAIT']} waiting{limited} in {seconds:.1f} s")


def parse_connect_to(value: str) -> tuple[tuple[str, int], tuple[str, int]]:
    host, port, address, address_port = (value.split(":") + ["", "", "", ""])[:4]
    if not (host and port.isdigit() and address and address_port.isdigit()):
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT:ADDRESS:PORT")
    return (host, int(port)), (address, int(address_port))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("--connect-to", type=parse_connect_to, action="append", default=[],
                        metavar="HOST:PORT:ADDRESS:PORT",
                        help="connect to ADDRESS:PORT for HOST:PORT (repeatable; for stand-ins)")
    parser.add_argument("--ca-file", type=Path, metavar="PEM",
                        help="trust this CA for HTTPS (default: the system's)")
    parser.add_argument("--stand-in-lacks", action="append", default=[], choices=sorted(STAND_IN_FACTS),
                        metavar="FACT", help="for stand-ins: the stand-in cannot hold FACT (repeatable; "
                        f"one of {', '.join(sorted(STAND_IN_FACTS))}); the rows that read it are "
                        "LIMITED, not judged")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="per HTTP request (default: 10)")
    parser.add_argument("--warm-up-minutes", type=int, default=30, metavar="N",
                        help="alarms younger than this may lack data (default: 30)")
    parser.add_argument("--restore-window-minutes", type=int, default=15, metavar="N",
                        help="the latest restorable time must be this recent (default: 15)")


def run(args: argparse.Namespace) -> int:
    from .aws import connect

    cfg = load(args.vars, args.env)
    if args.ca_file and not args.ca_file.is_file():
        raise UserError(str(args.ca_file), "--ca-file", "no such file (allowed: a PEM CA file)")
    if args.stand_in_lacks and not os.environ.get("AWS_ENDPOINT_URL"):
        raise UserError("--stand-in-lacks", "AWS_ENDPOINT_URL", "is not set (allowed: only against a "
                        "stand-in AWS_ENDPOINT_URL points at; against AWS every row is judged)")
    started = time.perf_counter()
    verifier = Verifier(connect(cfg), Network(dict(args.connect_to), args.ca_file, args.timeout),
                        datetime.timedelta(minutes=args.warm_up_minutes),
                        datetime.timedelta(minutes=args.restore_window_minutes),
                        lacks=frozenset(args.stand_in_lacks))
    rows = verifier.rows()
    print_table(rows)
    print(summary(cfg.environment, rows, time.perf_counter() - started))
    return EXIT_VERIFY_FAILED if any(not r.ok for r in rows) else 0
