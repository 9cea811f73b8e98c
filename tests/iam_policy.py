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

import base64
import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from moto.iam.access_control import IAMPolicy, PermissionResult

SUPPORTED_OPERATORS = {"StringEquals"}


def _check_operators(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        unknown = set(statement.get("Condition", {})) - SUPPORTED_OPERATORS
        assert not unknown, f"moto's evaluator ignores {unknown} in {statement.get('Sid')}"


def role_documents(cfg: Any) -> list[dict[str, Any]]:
    """The policy documents bootstrap/<account>.yaml gives the environment's deploy role."""
    from tracker_infra.cfn_yaml import load_template
    from tracker_infra.rendering import ROOT

    doc = load_template((ROOT / "bootstrap" / f"{cfg.account}.yaml").read_text())
    role = f"{cfg.environment.capitalize()}DeployRole"
    return [r["Properties"]["PolicyDocument"] for r in doc["Resources"].values()
            if r["Type"] == "AWS::IAM::ManagedPolicy" and r["Properties"]["Roles"] == [{"Ref": role}]]


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


# --- requests recorded by moto's recorder, as IAM requests ------------------------------------

# Calls that need no permission (STS GetCallerIdentity: "No permissions are required", STS API
# Reference). S3's REST calls, whose actions differ from their operations, are named by _s3_request.
NO_PERMISSION = {("sts", "GetCallerIdentity")}
# Signing names that differ from the IAM service prefix.
SIGNING_TO_IAM = {"monitoring": "cloudwatch"}


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    region: str
    access_key: str


def _s3_request(method: str, path: str, query: dict[str, list[str]]) -> tuple[str, str]:
    """(IAM action, resource) of an S3 REST call (path-style URL: /bucket[/key])."""
    bucket, _, key = path.lstrip("/").partition("/")
    if key:
        action = {"GET": "GetObject", "HEAD": "GetObject", "PUT": "PutObject",
                  "DELETE": "DeleteObject", "POST": "PutObject"}[method]
        return f"s3:{action}", f"arn:aws:s3:::{bucket}/{unquote(key)}"
    if method == "POST" and "delete" in query:  # DeleteObjects: s3:DeleteObject on each key
        return "s3:DeleteObject", f"arn:aws:s3:::{bucket}/*"
    if method == "GET":
        action = ("ListBucketVersions" if "versions" in query else "GetBucketLocation"
                  if "location" in query else "ListBucket")
        return f"s3:{action}", f"arn:aws:s3:::{bucket}"
    return f"s3:{ {'PUT': 'CreateBucket', 'DELETE': 'DeleteBucket', 'HEAD': 'ListBucket'}[method]}", \
        f"arn:aws:s3:::{bucket}"


@functools.cache
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(HTTP method, path pattern, operation) of a REST service's operations, from botocore's
    model of it."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = http["requestUri"].split("?")[0]
        pattern = re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
        pattern = re.sub(r"\{[^}]+\+\}", ".+", re.sub(r"\{[^}+]+\}", "[^/]+", pattern))
        routes.append((http["method"], re.compile(pattern), name))
    # the most specific first: longer literal paths before shorter ones
    return sorted(routes, key=lambda r: -len(r[1].pattern))


def rest_operation(service: str, method: str, path: str) -> str:
    return next((name for m, pattern, name in _rest_routes(service)
                 if m == method and pattern.fullmatch(path)), f"{method} {path}")


def _stack_arn(params: dict[str, Any], region: str, account: str, stack_of: Any) -> str:
    """The stack a CloudFormation call acts on (change-set calls are authorized on their stack;
    ``stack_of`` names the stack of a change set's ARN)."""
    name = params.get("StackName") or ""
    if not name and str(params.get("ChangeSetName", "")).startswith("arn:"):
        return str(stack_of(params["ChangeSetName"]))
    if name.startswith("arn:"):
        return name
    return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/recorded" if name else "*"


def _function_arn(path: str, region: str, account: str) -> str:
    """The function a Lambda REST call acts on (/2015-03-31/functions/<name or ARN>/...)."""
    match = re.match(r"/[0-9-]+/functions/([^/]+)", path)
    if not match:
        return "*"
    name = unquote(match.group(1))
    return name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"


def recorded_requests(lines: list[str], account: str, stack_of: Any) -> list[Request]:
    """The IAM requests of moto's recording (MOTO_ENABLE_RECORDING): one per call, with the
    resource it acts on where the call names one (stacks, buckets, objects and functions), "*"
    otherwise."""
    found = []
    created: dict[str, str] = {}  # change set name -> its stack, from the CreateChangeSet calls

    def stack_of_change_set(arn: str) -> str:
        name = arn.split(":changeSet/")[-1].split("/")[0]
        return (f"arn:aws:cloudformation:{arn.split(':')[3]}:{account}:stack/{created[name]}/recorded"
                if name in created else str(stack_of(arn)))

    for line in lines:
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        credential = headers.get("authorization", "").split("Credential=")[-1].split(",")[0].split("/")
        if len(credential) < 4:
            continue  # unsigned (the moto API itself)
        key, region, service = credential[0], credential[2], credential[3]
        url = urlsplit(entry["url"])
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode(errors="replace")
        if service == "s3":
            query = parse_qs(url.query, keep_blank_values=True)
            action, resource = _s3_request(entry["method"], url.path, query)
        else:
            params = {k: v[0] for k, v in parse_qs(body).items()}
            target = headers.get("x-amz-target", "")
            operation = target.split(".")[-1] if target else params.get("Action", "") or rest_operation(
                service, entry["method"], url.path)
            if (service, operation) in NO_PERMISSION:
                continue
            action = f"{SIGNING_TO_IAM.get(service, service)}:{operation}"
            if operation == "CreateChangeSet":
                created[params.get("ChangeSetName", "")] = params.get("StackName", "")
            resource = (_stack_arn(params, region, account, stack_of_change_set)
                        if service == "cloudformation" else
                        _function_arn(url.path, region, account) if service == "lambda" else "*")
        found.append(Request(action, resource, region, key))
    return found
