"""IAM policy evaluation by moto's own evaluator (moto.iam.access_control.IAMPolicy), given the
real resource ARN and request context of a call.

moto's server, with its access control on, passes "*" as the resource of most services' calls
and no condition values, so it cannot judge a policy whose statements name resources or carry
conditions (the deploy roles' do). Here the evaluator gets what AWS would give it: the ARN the
call acts on and the context keys (aws:RequestedRegion, iam:PassedToService, ...). Its limits,
which the callers respect: only StringEquals is evaluated (a policy using another operator is
refused below), a context key the call does not supply is not checked (callers supply every key
the policies use), and action names match case-sensitively (callers use AWS's spelling).
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult

SUPPORTED_OPERATORS = {"StringEquals"}


def _check_operators(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        unknown = set(statement.get("Condition", {})) - SUPPORTED_OPERATORS
        assert not unknown, f"moto's evaluator ignores {unknown} in {statement.get('Sid')}"


def allows(documents: list[dict[str, Any]], action: str, resource: str,
           context: dict[str, str]) -> bool:
    """Whether these identity policies together allow the call: some statement allows it and none
    denies it."""
    results = []
    for document in documents:
        _check_operators(document)
        policy = IAMPolicy({"policy_document": json.dumps(document)})
        results.append(policy.is_action_permitted(action, resource, incoming_condition_values=context))
    return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results
