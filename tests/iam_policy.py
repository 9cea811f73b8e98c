"""IAM policy evaluation with moto's own evaluator (moto.iam.access_control), given the real
resource ARN and request context of a call.

moto's server, with its access control on, passes "*" as the resource of most services' calls
and no condition values, so it cannot judge a policy whose statements name resources or carry
conditions (the bootstrap roles' do). Here the evaluator gets what AWS would give it: the ARN the
call acts on and the context keys (aws:RequestedRegion, iam:PassedToService,
iam:PermissionsBoundary, ...).

moto's statement evaluator matches actions (Action and NotAction) and resources as IAM does, so it
decides those. Its conditions are not sound enough to judge an attacker's request: a key the
request lacks passes every condition, an unmatched condition of an Allow denies instead of not
applying, and operators other than StringEquals are ignored. So conditions are decided here, by
IAM's rules (IAM User Guide, "Condition operators"): StringEquals, StringNotEquals and
StringLike and Bool on single-valued keys; a key the request lacks makes StringEquals, StringLike
and Bool false
and StringNotEquals true; an operator not listed here is refused below, never guessed. Action
names match case-insensitively, as IAM matches them (IAM User Guide, "IAM JSON policy elements:
Action": "The prefix and the action name are case insensitive"); moto's matching is
case-sensitive, so both sides are lower-cased before it sees them.

A permissions boundary is evaluated as IAM does for a role's own requests: allowed only when the
identity policies allow it, the boundary allows it, and neither denies it (IAM User Guide,
"Policy evaluation logic", permissions boundaries).
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

Document = dict[str, Any]


def _values(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _one(operator: str, expected: list[str], actual: str | None) -> bool:
    if operator == "StringEquals":
        return actual is not None and actual in expected
    if operator == "StringNotEquals":
        return actual is None or actual not in expected
    if operator == "StringLike":
        return actual is not None and any(fnmatch.fnmatchcase(actual, e) for e in expected)
    if operator == "Bool":  # "true"/"false", as the request context carries a boolean key
        return actual is not None and actual.lower() in [str(e).lower() for e in expected]
    raise AssertionError(f"tests/iam_policy.py does not evaluate the condition operator {operator}")


def conditions_hold(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """Every operator's every key holds for this request (IAM ANDs them)."""
    return all(_one(operator, _values(expected), context.get(key))
               for operator, keys in condition.items() for key, expected in keys.items())


def statement_effect(statement: Document, action: str, resource: str,
                     context: dict[str, str]) -> PermissionResult:
    """PERMITTED, DENIED (an explicit Deny) or NEUTRAL (the statement does not apply)."""
    if not conditions_hold(statement.get("Condition", {}), context):
        return PermissionResult.NEUTRAL
    plain = {k: [a.lower() for a in _values(v)] if k in ("Action", "NotAction") else v
             for k, v in statement.items() if k not in ("Condition", "NotResource")}
    if "NotResource" in statement:  # moto reads no NotResource: the statement covers what it omits
        omitted = IAMPolicyStatement({"Resource": statement["NotResource"]})
        if omitted._check_element_matches("Resource", resource):
            return PermissionResult.NEUTRAL
        plain["Resource"] = "*"
    return IAMPolicyStatement(plain).is_action_permitted(action.lower(), resource)


def _results(documents: list[Document], action: str, resource: str,
             context: dict[str, str]) -> set[PermissionResult]:
    return {statement_effect(statement, action, resource, context)
            for document in documents for statement in _values_list(document["Statement"])}


def _values_list(statements: Any) -> list[Document]:
    return [statements] if isinstance(statements, dict) else list(statements)


def allows(documents: list[Document], action: str, resource: str, context: dict[str, str],
           boundary: list[Document] | None = None) -> bool:
    """Whether these identity policies (within this permissions boundary, if any) allow the call:
    some statement allows it and none denies it, in both."""
    layers = [documents] + ([boundary] if boundary is not None else [])
    for layer in layers:
        results = _results(layer, action, resource, context)
        if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
            return False
    return True


def bootstrap_template(cfg: Any) -> Document:
    from tracker_infra.cfn_yaml import load_template
    from tracker_infra.rendering import ROOT

    return load_template((ROOT / "bootstrap" / f"{cfg.account}.yaml").read_text())


def logical_role(cfg: Any, kind: str) -> str:
    """The logical ID of the environment's bootstrap role of this kind (plan, deploy, cfn-exec)."""
    return f"{cfg.environment.capitalize()}{kind.replace('-', ' ').title().replace(' ', '')}Role"


def role_documents(cfg: Any, kind: str = "deploy") -> list[Document]:
    """The policy documents bootstrap/<account>.yaml gives the environment's role of this kind."""
    role = logical_role(cfg, kind)
    return [r["Properties"]["PolicyDocument"] for r in bootstrap_template(cfg)["Resources"].values()
            if r["Type"] == "AWS::IAM::ManagedPolicy" and r["Properties"].get("Roles") == [{"Ref": role}]]


def boundary_document(cfg: Any) -> Document:
    """The permissions boundary of the environment's roles (bootstrap/<account>.yaml)."""
    found = bootstrap_template(cfg)["Resources"][f"{cfg.environment.capitalize()}Boundary"]
    return dict(found["Properties"]["PolicyDocument"])


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
