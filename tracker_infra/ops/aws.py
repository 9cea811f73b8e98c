"""The one way the operational commands reach AWS: a boto3 session checked against vars first.

``connect(cfg)`` makes the session, then asks STS who the caller is before any other call and
refuses (UserError, exit 2) when the account or the region differs from the environment's vars,
naming both. Every command that talks to AWS starts here, so a command can never act on the
wrong account. ``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points everything at a stand-in
such as a local moto server in the tests.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..rendering import EDGE_REGION, ROOT
from ..schema import Config
from .events import EventStream

# Seconds between polls of a long AWS operation (stack create/update/delete, drift detection).
POLL_SECONDS = float(os.environ.get("TRACKER_POLL_SECONDS", "10"))
# A stack whose status ends with one of these is done (successfully or not).
SETTLED = ("_COMPLETE", "_FAILED")


def add_env_arguments(parser: argparse.ArgumentParser, flag: str = "--env") -> None:
    """--env (or another flag naming an environment) and --vars, the arguments every command on a
    live environment takes."""
    parser.add_argument(flag, required=True, metavar="ENV",
                        help="the environment (a vars/ENV.yaml file)")
    add_vars_argument(parser)


def add_vars_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vars", type=Path, default=Path(os.path.relpath(ROOT / "vars")),
                        metavar="DIR", help="variables folder (default: vars/)")


def add_rendered_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rendered", type=Path, default=Path(os.path.relpath(ROOT / "rendered")),
                        metavar="DIR", help="folder of rendered templates (default: rendered/)")


def lifecycle_file(args: argparse.Namespace) -> str:
    """The vars file that sets the environment's lifecycle (its own, else defaults.yaml)."""
    from ..config import read_yaml

    env_file = Path(args.vars) / f"{args.env}.yaml"
    return str(env_file if "lifecycle" in read_yaml(env_file) else Path(args.vars) / "defaults.yaml")


def load(vars_dir: Path, env: str) -> Config:
    """One environment's config, every environment validated with it (cross-file rules)."""
    from ..config import load_all

    return load_all(vars_dir, [env])[0]


def load_config(args: argparse.Namespace) -> Config:
    return load(args.vars, args.env)


def required_outputs(outputs: dict[str, str], stack: str, keys: tuple[str, ...], env: str) -> list[str]:
    """The values of ``keys`` among a stack's outputs; UserError naming the first one missing and
    the command that deploys the environment ``env``."""
    for key in keys:
        if not outputs.get(key):
            raise UserError(f"stack {stack}", f"Outputs.{key}", "missing (allowed: a deployed "
                            f"stack with this output; deploy it first: make deploy ENV={env})")
    return [outputs[key] for key in keys]


@dataclass
class Aws:
    """A checked session for one environment: clients per (service, region), stack lookups."""

    cfg: Config
    session: Any
    account: str
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.cfg.region)
        if key not in self._clients:
            self._clients[key] = self.session.client(service, region_name=key[1])
        return self._clients[key]

    def stacks(self) -> list[tuple[str, str]]:
        """(stack name, region) of the environment's stacks: regional first, then edge."""
        return [(self.cfg.stack_name, self.cfg.region), (self.cfg.edge_stack_name, EDGE_REGION)]

    def describe_stack(self, name: str, region: str) -> dict[str, Any] | None:
        """The stack as DescribeStacks returns it, or None when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            found = self.client("cloudformation", region).describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        return found[0] if found else None

    def outputs(self, name: str, region: str) -> dict[str, str]:
        """A stack's outputs (key -> value); empty when the stack does not exist."""
        stack = self.describe_stack(name, region) or {}
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def resources(self, name: str, region: str, type_: str | None = None) -> list[dict[str, Any]]:
        """ListStackResources summaries (all pages), optionally of one resource type."""
        pages = self.client("cloudformation", region).get_paginator("list_stack_resources")
        return [r for page in pages.paginate(StackName=name) for r in page["StackResourceSummaries"]
                if type_ is None or r["ResourceType"] == type_]

    def stack_id(self, name: str, region: str) -> str:
        """The stack's ID (its events stay readable by ID once it is deleted), else its name."""
        return str((self.describe_stack(name, region) or {}).get("StackId", name))

    def events(self, name: str, region: str) -> EventStream:
        """The stack's event stream from now on (call before starting the change)."""
        return EventStream(lambda: self.client("cloudformation", region), name).prime()

    def wait_for_stack(self, name: str, region: str,
                       events: EventStream | None = None) -> dict[str, Any] | None:
        """Poll until the stack's status settles (…_COMPLETE or …_FAILED), printing its events as
        they arrive; None once it is gone."""
        while True:
            stack = self.describe_stack(name, region)
            if events is not None:
                events.poll()
            if stack is None or stack["StackStatus"].endswith(SETTLED):
                return stack
            time.sleep(POLL_SECONDS)

    def failures(self, name: str, region: str, since: Any = None) -> Iterator[str]:
        """'LogicalId (Type): reason' of each failed resource event, newest first."""
        pages = self.client("cloudformation", region).get_paginator("describe_stack_events")
        for page in pages.paginate(StackName=name):
            for event in page["StackEvents"]:
                if since is not None and event["Timestamp"] < since:
                    return
                if event["ResourceStatus"].endswith("_FAILED"):
                    yield (f"{event['LogicalResourceId']} ({event['ResourceType']}): "
                           f"{event.get('ResourceStatusReason', '')}")


def configured_region(session: Any) -> str | None:
    """The region the caller's environment or profile names, if any."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or session.region_name


# STS is the first call of every command: when AWS cannot be reached, say so within seconds
# rather than after botocore's default retries (60 s connect timeout, several attempts).
STS_CONNECT_SECONDS = 3
STS_ATTEMPTS = 2


def session_for(profile: str | None = None, flag: str = "AWS_PROFILE") -> Any:
    """A boto3 session, of ``profile`` or the default one; a profile that does not exist is the
    caller's setup (exit 2, naming ``flag``, where the profile came from)."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile)
    except ProfileNotFound as exc:
        raise UserError(flag, "", f"{exc} (allowed: a profile in ~/.aws/config or "
                        "~/.aws/credentials)") from None


def _caller_account(session: Any, cfg: Config, vars_file: str) -> str:
    """The caller's account, from STS (no permission needed); UserError when it cannot say."""
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    quick = BotoConfig(connect_timeout=STS_CONNECT_SECONDS,
                       retries={"max_attempts": STS_ATTEMPTS, "mode": "standard"})
    try:
        return str(session.client("sts", region_name=cfg.region, config=quick)
                   .get_caller_identity()["Account"])
    except NoCredentialsError:
        raise UserError(vars_file, "account", "no AWS credentials found (allowed: credentials "
                        f"for account {cfg.account})") from None
    except EndpointConnectionError as exc:
        raise UserError(vars_file, "account", f"cannot reach AWS ({exc}); nothing was called (allowed: "
                        "a network that reaches AWS's endpoints)") from None
    except (ClientError, BotoCoreError) as exc:
        raise UserError(vars_file, "account", f"cannot ask STS who the caller is: {exc} "
                        f"(allowed: working credentials for account {cfg.account})") from None


def connect(cfg: Config, session: Any = None) -> Aws:
    """A session for ``cfg``'s account and region; UserError before any other call on a mismatch.

    The region the caller configured (AWS_REGION, AWS_DEFAULT_REGION or the profile), when set,
    must be the environment's region; when unset, the environment's region is used.
    """
    vars_file = f"vars/{cfg.environment}.yaml"
    from . import timing

    session = session or session_for()
    timing.watch(session)
    region = configured_region(session)
    if region and region != cfg.region:
        raise UserError(vars_file, "region", f"the AWS session is configured for {region} "
                        f"(allowed: {cfg.region}, the environment's region; set AWS_REGION)")
    account = _caller_account(session, cfg, vars_file)
    if account != cfg.account:
        raise UserError(vars_file, "account", f"the AWS credentials belong to account {account} "
                        f"(allowed: {cfg.account}, the {cfg.environment} account); nothing was "
                        "called besides STS")
    return Aws(cfg, session, account)


def parameters(stack: dict[str, Any] | None) -> dict[str, str]:
    """A described stack's parameters (key -> value)."""
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters", [])}
