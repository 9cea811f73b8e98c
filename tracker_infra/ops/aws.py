"""The one way the operational commands reach AWS: a boto3 session checked against vars first.

``connect(cfg)`` makes the session, then asks STS who the caller is before any other call and
refuses (UserError, exit 2) when the account differs from the environment's vars, naming both; a
session that cannot ask names its cause (the credentials, the profile, the endpoint). Every command
that talks to AWS starts here, so a command can never act on the wrong account.
``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points everything at a stand-in such as a local
moto server in the tests.
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


# STS is the first call of every command: when AWS cannot be reached, say so within seconds
# rather than after botocore's default retries (60 s connect timeout, several attempts).
STS_CONNECT_SECONDS = 3
STS_ATTEMPTS = 2
# STS error codes that mean the credentials themselves are no good (expired, revoked, mistyped);
# https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html
BAD_CREDENTIALS = ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
                   "SignatureDoesNotMatch", "UnrecognizedClientException", "IncompleteSignature",
                   "InvalidAccessKeyId", "AuthFailure")


def session_for(profile: str | None = None, flag: str = "AWS_PROFILE") -> Any:
    """A boto3 session, of ``profile`` or the default one; a profile that does not exist is the
    caller's setup (exit 2, naming ``flag``, where the profile came from)."""
    import boto3
    from botocore.exceptions import ConfigParseError, ProfileNotFound

    try:
        return boto3.Session(profile_name=profile)
    except ProfileNotFound as exc:
        named = profile or os.environ.get("AWS_PROFILE", "")
        raise UserError(f"{flag}={named}" if named else flag, "", f"{exc} (allowed: a profile in "
                        "~/.aws/config or ~/.aws/credentials; `aws configure list-profiles` lists "
                        "them)") from None
    except ConfigParseError as exc:
        raise UserError(f"AWS_CONFIG_FILE={os.environ.get('AWS_CONFIG_FILE', '~/.aws/config')}", "",
                        f"{exc} (allowed: an INI file of [profile NAME] sections)") from None


def endpoint_name(region: str) -> str:
    """The STS endpoint the session calls, as the person set it: AWS_ENDPOINT_URL(_STS)=URL, or
    AWS's own (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html)."""
    for variable in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
        if os.environ.get(variable):
            return f"{variable}={os.environ[variable]}"
    return f"AWS (https://sts.{region}.amazonaws.com)"


def credentials_name(session: Any) -> str:
    """Where the session's credentials come from, as the person can find it: the profile (and
    the variable that chose it), else the kind of source botocore found them in."""
    profile = getattr(session, "profile_name", None) or "default"
    if os.environ.get("AWS_PROFILE") == profile:
        return f"AWS_PROFILE={profile}"
    if profile != "default":
        return f"the AWS profile {profile}"
    from botocore.exceptions import BotoCoreError

    try:
        method = getattr(session.get_credentials(), "method", None) or ""
    except BotoCoreError:  # the very failure being named
        method = ""
    return "AWS_ACCESS_KEY_ID" if method == "env" else f"AWS credentials ({method or 'none'})"


def _answered_by_aws(exc: Exception) -> bool:
    """Whether a failed GetCallerIdentity was answered by AWS (or a faithful stand-in): an error
    with an AWS error code, not a bare HTTP status or a reply without the account in it."""
    from botocore.exceptions import ClientError

    code = _error_code(exc)
    return isinstance(exc, ClientError) and bool(code) and not code.isdigit() and code != "Unknown"


def _sts_failure(exc: Exception, session: Any, cfg: Config) -> UserError:
    """What a failed GetCallerIdentity means, named by its cause: the credentials, or the
    endpoint; never the vars, which nothing here has read yet."""
    from botocore.exceptions import ConnectionError as NoConnection
    from botocore.exceptions import NoCredentialsError

    endpoint = endpoint_name(cfg.region)
    fix = f"allowed: credentials for account {cfg.account}, e.g. `export AWS_PROFILE=NAME`"
    if isinstance(exc, NoCredentialsError):
        where = credentials_name(session)
        return UserError("AWS credentials" if where.startswith("AWS credentials") else where, "",
                         "none found (not in AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials or "
                         f"an instance role); nothing was called ({fix})")
    if isinstance(exc, NoConnection):
        return UserError(endpoint, "", f"cannot connect ({exc}); nothing was called (allowed: a "
                         "network that reaches it; for a stand-in, one that is running)")
    if _is_credentials_error(exc) or _error_code(exc) in BAD_CREDENTIALS:
        return UserError(credentials_name(session), "", f"the credentials are refused or expired "
                         f"({_said(exc)}) ({fix}; renew them, e.g. `aws sso login`)")
    if not _answered_by_aws(exc):
        return UserError(endpoint, "", f"does not answer as AWS STS ({_said(exc)}) (allowed: AWS's "
                         "endpoints, or a stand-in such as moto; unset AWS_ENDPOINT_URL for AWS)")
    return UserError(credentials_name(session), "", f"STS cannot say who the caller is "
                     f"({_said(exc)}) ({fix})")


def _error_code(exc: Exception) -> str:
    """AWS's error code of a ClientError ('' for anything else)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _is_credentials_error(exc: Exception) -> bool:
    """botocore could not load or refresh the credentials (an SSO token, a credential_process,
    a role to assume)."""
    from botocore.exceptions import (
        CredentialRetrievalError,
        PartialCredentialsError,
        SSOError,
        TokenRetrievalError,
    )

    return isinstance(exc, CredentialRetrievalError | PartialCredentialsError | SSOError
                      | TokenRetrievalError)


def _said(exc: Exception) -> str:
    """What the failure said, on one line: AWS's error code and message, else botocore's text."""
    error = getattr(exc, "response", {}).get("Error", {})
    if error:
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip().rstrip(":")
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if not isinstance(exc, KeyError) else f"a reply without {text}"


def _caller_account(session: Any, cfg: Config) -> str:
    """The caller's account, from STS (no permission needed); UserError naming the cause when
    it cannot say."""
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    quick = BotoConfig(connect_timeout=STS_CONNECT_SECONDS,
                       retries={"max_attempts": STS_ATTEMPTS, "mode": "standard"})
    try:
        sts = session.client("sts", region_name=cfg.region, config=quick)
    except ValueError as exc:  # botocore: "Invalid endpoint: ..." (no scheme, a bad host)
        raise UserError(endpoint_name(cfg.region), "", f"{exc} (allowed: a URL such as "
                        "http://localhost:5000)") from None
    try:
        return str(sts.get_caller_identity()["Account"])
    except (ClientError, BotoCoreError, ResponseParserError, KeyError) as exc:
        raise _sts_failure(exc, session, cfg) from None


def connect(cfg: Config, session: Any = None) -> Aws:
    """A session for ``cfg``'s account; UserError before any other call on a mismatch.

    Every call goes to the environment's region (vars' ``region``; the edge stack's calls to
    us-east-1): each client names its region, and the SAM CLI gets it from the config-env
    (samconfig.toml), so a region the caller configured (AWS_REGION, AWS_DEFAULT_REGION, the
    profile's) is not used and not refused.
    """
    from . import timing

    session = session or session_for()
    timing.watch(session)
    account = _caller_account(session, cfg)
    if account != cfg.account:
        raise UserError(f"vars/{cfg.environment}.yaml", "account", f"is {cfg.account}, but the AWS "
                        f"credentials ({credentials_name(session)}) belong to account {account}; nothing "
                        "was called besides STS (allowed: credentials for the account vars names)")
    return Aws(cfg, session, account)


def parameters(stack: dict[str, Any] | None) -> dict[str, str]:
    """A described stack's parameters (key -> value)."""
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters", [])}
