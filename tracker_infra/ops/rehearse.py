"""Rehearse an environment's life against a local moto server: plan, execute, status, outputs,
verify, drift and destroy, through the same commands as on AWS, then one summary table.

  python render.py rehearse --env dev        (make rehearse ENV=dev)

Needs the dev install (moto, the SAM CLI, the SAM translator) and nothing else: no AWS account,
no network. The server runs as the environment's account on a free localhost port and is always
stopped at the end, also on Ctrl-C. What the rehearsal sets up first, because a real account
would have it or because moto needs it (each workaround says why):

  - the account's bootstrap stack (bootstrap/<account>.yaml: deploy roles, artifact bucket);
  - the environment's certificates, requested in moto (moto makes up its own ARNs);
  - copies of the rendered templates that moto can deploy: the functions' code folders
    packaged, the transforms run offline, custom resources left out, moto's defects worked around
    (tracker_infra/rehearsal/moto_copy.py, MOTO_GAPS), the NAT gateways left out (moto cannot
    delete them, so destroy could not finish);
  - before destroy, the route tables and the internet gateway's attachment that moto's
    CloudFormation does not delete;
  - for verify, no DNS record for the API's and the site's names (the resolver answers "no such
    name" for them), as after a first create without a hosted zone: there is no network here;
    and what moto cannot hold (--stand-in-lacks, moto_copy.moto_lacks), so that verify marks the
    rows reading it LIMITED, not judged, instead of failing them.

A step is PASS, FAIL, or LIMITED: it ran as far as moto can show, and the table says what moto
cannot (e.g. verify's alarm and database rows: moto makes neither from a template; drift: moto
has no drift detection).
What a rehearsal proves and what only AWS can: docs/deploying.md, "The rehearsal".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    EXIT_AWS,
    EXIT_DRIFTED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER,
)
from ..rehearsal.server import MotoServer
from ..rendering import EDGE_REGION
from ..schema import Config
from .aws import add_env_arguments, load_config

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "every step passed, or ran as far as moto can show (LIMITED)",
    EXIT_USER: "",
    EXIT_AWS: "a step failed against the stand-in (the table names it)",
}
POLL_SECONDS = 0.1  # moto answers at once: the commands' polls need not wait 10 s


@dataclass
class Step:
    name: str
    state: str  # PASS | FAIL | LIMITED
    detail: str


@dataclass
class StandIn:
    """The running server and what the rehearsal made in it."""

    cfg: Config
    server: MotoServer
    workdir: Path
    session: Any  # boto3, pointed at the server
    swaps: dict[str, str]  # certificate ARN in vars -> moto's

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def client(self, service: str, region: str | None = None) -> Any:
        return self.session.client(service, region_name=region or self.cfg.region,
                                   endpoint_url=self.endpoint)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ as ``values`` says (AWS_*, SAM_* and HOME only from it), restored afterwards."""
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(("AWS_", "SAM_", "__SAM_"))]:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def stand_in(cfg: Config, workdir: Path) -> Iterator[StandIn]:
    """A moto server answering as the environment's account, the commands pointed at it, its
    bootstrap stack and certificates made; stopped on the way out, whatever happened."""
    import boto3

    from ..rehearsal.moto_copy import deploy_bootstrap, request_certificates, sam_env
    from . import aws as aws_module

    server = MotoServer.start(workdir / "moto.log", env={"MOTO_ACCOUNT_ID": cfg.account})
    poll = aws_module.POLL_SECONDS
    try:
        with _environment(sam_env(server, workdir / "home", cfg.region)):
            aws_module.POLL_SECONDS = POLL_SECONDS
            session = boto3.Session()
            moto = StandIn(cfg, server, workdir, session, {})
            deploy_bootstrap(moto.client("cloudformation", EDGE_REGION), cfg.account)
            moto.swaps.update(request_certificates(lambda region: moto.client("acm", region), cfg))
            yield moto
    finally:
        aws_module.POLL_SECONDS = poll
        server.stop()


def moto_rendered(moto: StandIn, vars_dir: Path) -> Path:
    """The environment rendered into the work folder, as copies moto can deploy."""
    from ..cli import run_render
    from ..rehearsal.moto_copy import deployable_copies, without_nat_gateways

    out = moto.workdir / "rendered"
    with contextlib.redirect_stdout(io.StringIO()):
        run_render(argparse.Namespace(env=[moto.cfg.environment], all=False, check=False,
                                      vars=vars_dir, out=out))
    env_dir = out / moto.cfg.environment
    deployable_copies(env_dir, moto.client("s3", EDGE_REGION), moto.cfg.artifact_bucket, moto.cfg.region,
                      moto.swaps)
    without_nat_gateways(env_dir / "app.yaml")
    return out


class _Tee(io.StringIO):
    """Writes go to the terminal as they come and are kept for the step's verdict."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text)
        return super().write(text)

    def flush(self) -> None:
        self.stream.flush()


def _command(*argv: str) -> tuple[int, str]:
    """render.py ARGV in this process, its output shown and kept: (exit code, output)."""
    from ..cli import main

    print(f"\n==> render.py {' '.join(argv)}", flush=True)
    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    if code == EXIT_INTERRUPTED:  # Ctrl-C inside a command ends the rehearsal, not just the step
        raise KeyboardInterrupt
    return code, out.getvalue() + err.getvalue()


@contextlib.contextmanager
def without_dns_records(hosts: set[str], error: int = socket.EAI_NONAME,
                        message: str = "Name or service not known") -> Iterator[None]:
    """socket.getaddrinfo fails with ``error`` for ``hosts`` (EAI_NONAME: what the resolver
    answers for a name without a record) and answers as before for every other name."""
    real = socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in hosts:
            raise socket.gaierror(error, message)
        return real(host, *args, **kwargs)

    socket.getaddrinfo = lookup
    try:
        yield
    finally:
        socket.getaddrinfo = real


# What moto cannot show, per step that it limits.
MOTO_CANNOT = {
    "outputs": "moto fills no outputs for a stack made through a change set",
    "verify": "no row fails; the rows reading what moto cannot hold are LIMITED, not judged: moto fills "
              "no outputs for a stack made through a change set, and makes no alarm, e-mail "
              "subscription or database cluster from a template",
    "drift": "moto has no drift detection (DetectStackDrift)",
}


# What no step can show against moto (docs/deploying.md says why and what proves each instead).
NOT_REHEARSED = ("the rotation schedules (moto does not model them) and the database user's custom "
                 "resource (left out of the copies), IAM as AWS evaluates it, KMS key policies, quotas, "
                 "AWS's timings")
Run = Callable[[], tuple[int, str]]


def _steps(moto: StandIn, args: argparse.Namespace, rendered: Path) -> list[tuple[str, Run]]:
    env = ["--env", moto.cfg.environment, "--vars", str(args.vars)]
    plan = moto.workdir / "plan.json"
    return [
        ("plan", lambda: _command("plan", *env, "--rendered", str(rendered), "--save", str(plan))),
        ("execute", lambda: _command("plan", *env, "--rendered", str(rendered), "--execute", str(plan))),
        ("status", lambda: _command("status", *env)),
        ("outputs", lambda: _command("outputs", *env)),
        ("verify", lambda: first_verify(moto.cfg, env)),
        ("drift", lambda: _command("drift", *env)),
        ("destroy", lambda: _destroy(moto, env)),
    ]


def verify_lacks() -> list[str]:
    """verify's arguments telling it what moto cannot hold (moto_copy.moto_lacks), so that it
    leaves the rows reading it not judged."""
    from ..rehearsal.moto_copy import moto_lacks

    return [f"--stand-in-lacks={fact}" for fact in moto_lacks()]


def first_verify(cfg: Config, env: list[str]) -> tuple[int, str]:
    """verify as after a first create without a hosted zone (neither name has a DNS record), told
    what moto cannot hold."""
    with without_dns_records({cfg.api.domain, cfg.frontend.domain}):
        return _command("verify", *env, "--timeout", "2", *verify_lacks())


def _destroy(moto: StandIn, env: list[str]) -> tuple[int, str]:
    from ..rehearsal.moto_copy import undo_what_moto_cannot_delete

    cloudformation = moto.client("cloudformation")
    if not moto.cfg.protected:
        vpc = cloudformation.describe_stack_resource(StackName=moto.cfg.stack_name, LogicalResourceId="VPC")
        undo_what_moto_cannot_delete(moto.client("ec2"), vpc["StackResourceDetail"]["PhysicalResourceId"])
    return _command("destroy", *env, "--yes")


def _limited(name: str, code: int, output: str, cfg: Config) -> bool:
    """Whether a step ran as far as moto can show (its shortfall is MOTO_CANNOT[name])."""
    stacks = (cfg.stack_name, cfg.edge_stack_name)
    if name == "outputs":
        return code == EXIT_OK and all(f"{s} (" in output for s in stacks) and "no outputs" in output
    if name == "verify":  # no row failed, and some were not judged
        return code == EXIT_OK and re.search(r"^\S.*?  LIMITED  not judged here: ", output, re.M) is not None
    return name == "drift" and code in (EXIT_AWS, EXIT_DRIFTED)


def judge(name: str, code: int, output: str, cfg: Config) -> Step:
    """A step's verdict from its exit code and what it printed."""
    if _limited(name, code, output, cfg):
        return Step(name, "LIMITED", MOTO_CANNOT[name])
    if name == "destroy" and cfg.protected and code == EXIT_USER and "lifecycle: is 'protected'" in output:
        return Step(name, "PASS", "refused: the environment is protected (as it should be)")
    if code == EXIT_OK:
        return Step(name, "PASS", "")
    return Step(name, "FAIL", f"exit {code} (the output above says why)")


def rehearse(moto: StandIn, args: argparse.Namespace) -> list[Step]:
    """Each step in order; a failed plan or execute ends the rehearsal (nothing to act on)."""
    results = [Step("stand-in", "PASS", f"moto on {moto.endpoint} as account {moto.cfg.account}; "
                    "bootstrap stack and certificates made")]
    print(f"==> stand-in: {results[0].detail}", flush=True)
    rendered = moto_rendered(moto, args.vars)
    for name, step in _steps(moto, args, rendered):
        code, output = step()
        results.append(judge(name, code, output, moto.cfg))
        if results[-1].state == "FAIL" and name in ("plan", "execute"):
            break
    return results


def print_summary(results: list[Step], port: int, seconds: float) -> None:
    from ..terminal import paint

    width = max(len(s.name) for s in results)
    print(f"\nrehearsal summary ({seconds:.0f} s; the server on port {port} is stopped):")
    for s in results:
        print(paint(f"  {s.name:<{width}}  {s.state:<7}  {s.detail}".rstrip()))
    print(f"  not rehearsed: {NOT_REHEARSED}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tracker-rehearse-") as folder:
        try:
            with stand_in(cfg, Path(folder)) as moto:
                port = moto.server.port
                results = rehearse(moto, args)
        except KeyboardInterrupt:
            print("\nrehearsal interrupted; the moto server is stopped", file=sys.stderr)
            raise
    print_summary(results, port, time.perf_counter() - started)
    return EXIT_OK if all(s.state != "FAIL" for s in results) else EXIT_AWS
