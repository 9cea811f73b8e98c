"""The one way the operational commands reach AWS: a boto3 session checked against vars first.

``connect(cfg)`` makes the session, then asks STS who the caller is before any other call and
refuses (UserError, exit 2) when the account or the region differs from the environment's vars,
naming both. Every command that talks to AWS starts here, so a command can never act on the
wrong account. ``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points everything at a stand-in
such as a local moto server in the tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from ..rendering import EDGE_REGION
from ..schema import Config


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


def configured_region(session: Any) -> str | None:
    """The region the caller's environment or profile names, if any."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or session.region_name


def connect(cfg: Config, session: Any = None) -> Aws:
    """A session for ``cfg``'s account and region; UserError before any other call on a mismatch.

    The region the caller configured (AWS_REGION, AWS_DEFAULT_REGION or the profile), when set,
    must be the environment's region; when unset, the environment's region is used.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    vars_file = f"vars/{cfg.environment}.yaml"
    session = session or boto3.Session()
    region = configured_region(session)
    if region and region != cfg.region:
        raise UserError(vars_file, "region", f"the AWS session is configured for {region} "
                        f"(allowed: {cfg.region}, the environment's region; set AWS_REGION)")
    try:
        identity = session.client("sts", region_name=cfg.region).get_caller_identity()
    except NoCredentialsError:
        raise UserError(vars_file, "account", "no AWS credentials found (allowed: credentials "
                        f"for account {cfg.account})") from None
    except (ClientError, BotoCoreError) as exc:
        raise UserError(vars_file, "account", f"cannot ask STS who the caller is: {exc} "
                        f"(allowed: working credentials for account {cfg.account})") from None
    account = identity["Account"]
    if account != cfg.account:
        raise UserError(vars_file, "account", f"the AWS credentials belong to account {account} "
                        f"(allowed: {cfg.account}, the {cfg.environment} account); nothing was "
                        "called besides STS")
    return Aws(cfg, session, account)
