"""The per-account bootstrap stack: bootstrap/<account>.yaml from templates/bootstrap.yaml.j2.

One per AWS account named in vars/: GitHub's OIDC provider and, for each environment in that
account, the role `<project>-<env>-deploy` that the deploy workflow assumes (trusted only for
the repository's GitHub environments `<env>` and `<env>-plan`). Deployed once by hand
(docs/deploying.md); written by `render.py --all`, kept fresh by `--check`, linted like the stacks.

The role's policy is what the environment's two stacks need, computed: for every resource type in
them (and those their transforms create, EXPANDS), the permissions CloudFormation's resource
schema lists for its create, read, update and delete handlers (deploy_permissions.yaml, taken from
the schemas by permissions.py through `make regen`), plus what the commands themselves call (PLUMBING),
the account's artifact bucket under the environment's prefixes, and the hosted rotation's code.
Names are limited to the environment's (`<project>-<env>-*`) where the service's ARNs carry them
(stacks, roles, functions, buckets), to its regions elsewhere; read-only actions are granted as
`service:Describe*`/`Get*`/`List*` to keep the policies within IAM's size limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .cfn_yaml import load_vars
from .errors import UserError
from .output import StackSummary, check_template
from .rendering import EDGE_REGION, jinja_environment
from .schema import Config

PERMISSIONS = Path(__file__).with_name("deploy_permissions.yaml")
# What a transform turns one resource into: the types whose handlers CloudFormation then runs.
EXPANDS = {
    "AWS::Serverless::Function": ("AWS::Lambda::Function", "AWS::Lambda::Version",
                                  "AWS::Lambda::Alias", "AWS::IAM::Role"),
    # HostedRotationLambda: a nested stack from the Serverless Application Repository
    "AWS::SecretsManager::RotationSchedule": ("AWS::CloudFormation::Stack", "AWS::Lambda::Function",
                                              "AWS::Lambda::Permission", "AWS::IAM::Role"),
}
# What plan/status/drift/destroy and the SAM CLI call besides the resource handlers.
PLUMBING = (
    "cloudformation:CreateChangeSet", "cloudformation:DeleteChangeSet",
    "cloudformation:DescribeChangeSet", "cloudformation:ExecuteChangeSet",
    "cloudformation:ListChangeSets", "cloudformation:DeleteStack", "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents", "cloudformation:ListStackResources",
    "cloudformation:GetTemplate", "cloudformation:GetTemplateSummary",
    "cloudformation:DetectStackDrift", "cloudformation:DetectStackResourceDrift",
    "cloudformation:DescribeStackResourceDrifts", "cloudformation:DescribeStackDriftDetectionStatus",
    "cloudformation:ValidateTemplate", "cloudwatch:DescribeAlarms", "sns:ListSubscriptionsByTopic",
    "s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation",
    "s3:DeleteObject", "s3:DeleteObjectVersion",
    "cloudfront:CreateInvalidation", "cloudfront:GetInvalidation",
    "serverlessrepo:CreateCloudFormationTemplate", "serverlessrepo:GetCloudFormationTemplate",
    "serverlessrepo:GetApplication", "lambda:EnableReplication*", "lambda:DisableReplication",
    # a custom resource: CloudFormation invokes its function with the caller's credentials
    "lambda:InvokeFunction",
)
# The services that may create a service-linked role: those of the stacks' resources, Lambda@Edge's
# replicator and CloudFront's standard-logging writer.
SERVICE_LINKED = ("ecs.amazonaws.com", "elasticloadbalancing.amazonaws.com", "rds.amazonaws.com",
                  "ecs.application-autoscaling.amazonaws.com", "replicator.lambda.amazonaws.com",
                  "logger.cloudfront.amazonaws.com")
PASSED_TO = ("ecs-tasks.amazonaws.com", "lambda.amazonaws.com", "edgelambda.amazonaws.com",
             "vpc-flow-logs.amazonaws.com", "monitoring.rds.amazonaws.com")
# What `sam deploy` does with the account's artifact bucket (s3_bucket in samconfig.toml): it
# looks for an object (HeadObject = s3:GetObject), uploads templates and code (PutObject) and
# reads the bucket's region; only under the environment's own stack prefixes.
ARTIFACT_ACTIONS = ("s3:GetObject", "s3:PutObject")
ARTIFACT_BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket")
# Where the SecretsManager transform's hosted rotation code lies: the Serverless Application
# Repository's change-set bucket and the rotation applications' bucket. CloudFormation reads them
# with the caller's credentials; AWS's managed policy SecretsManagerReadWrite grants s3:GetObject
# on exactly these for that reason (Secrets Manager User Guide, "Rotation by Lambda function:
# permissions"; AWS managed policy SecretsManagerReadWrite).
ROTATION_CODE = ("arn:aws:s3:::awsserverlessrepo-changesets*", "arn:aws:s3:::secrets-manager-rotation-apps-*")
READ_VERBS = ("Describe", "Get", "List")
SERVICE_OF = {"ElasticLoadBalancingV2": "elasticloadbalancing",
              "ApplicationAutoScaling": "application-autoscaling"}
POLICY_LIMIT = 6144  # characters of a managed policy, whitespace not counted
ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")


@dataclass
class Statement:
    sid: str
    actions: list[str]
    resources: list[str]
    condition: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"Sid": self.sid, "Effect": "Allow", "Action": self.actions,
                               "Resource": self.resources}
        if self.condition:
            doc["Condition"] = self.condition
        return doc


def service_of(resource_type: str) -> str:
    """The IAM service prefix of a resource type (AWS::ECS::Service -> ecs)."""
    family = resource_type.split("::")[1]
    return SERVICE_OF.get(family, family.lower())


def resource_types(docs: Iterable[dict[str, Any]]) -> set[str]:
    """Every resource type CloudFormation handles for these templates, transforms expanded."""
    found = set()
    for doc in docs:
        for resource in doc["Resources"].values():
            kind = resource["Type"]
            if kind in EXPANDS and (kind.startswith("AWS::Serverless::")
                                    or "HostedRotationLambda" in resource.get("Properties", {})):
                found.update(EXPANDS[kind])
            if not kind.startswith(("AWS::Serverless::", "Custom::")):  # custom: PLUMBING
                found.add(kind)
    return found


@lru_cache(maxsize=1)
def _permission_table() -> dict[str, list[str]]:
    """deploy_permissions.yaml, read once (libyaml): resource type -> handler permissions."""
    table: dict[str, list[str]] = load_vars(PERMISSIONS.read_text())["types"]
    return table


def handler_actions(types: Iterable[str]) -> set[str]:
    table = _permission_table()
    missing = sorted(set(types) - set(table))
    if missing:
        raise UserError(f"tracker_infra/{PERMISSIONS.name}", "types", f"lacks {', '.join(missing)}, "
                        "used by the templates (allowed: every resource type the stacks use; "
                        "refresh it with `make regen`)")
    return {action for kind in types for action in table[kind]}


def check_permissions(docs: Iterable[dict[str, Any]]) -> None:
    """Every resource type these rendered stacks use has its handler permissions in
    deploy_permissions.yaml (what the deploy roles are built from): checked on every render, of
    one environment or all, so the same inputs meet the same checks."""
    handler_actions(resource_types(docs))


def _compact(actions: Iterable[str]) -> list[str]:
    """Read-only actions as service:Describe*/Get*/List*, the others as they are."""
    out = set()
    for action in actions:
        service, name = action.split(":", 1)
        verb = next((v for v in READ_VERBS if name.startswith(v)), None)
        out.add(f"{service}:{verb}*" if verb else action)
    return sorted(out)


def statements(cfg: Config, types: set[str]) -> list[Statement]:
    name = f"{cfg.project}-{cfg.environment}"
    account = cfg.account
    regions = list(dict.fromkeys([cfg.region, EDGE_REGION]))
    services = {service_of(t) for t in types}
    needed = {a for a in handler_actions(types) | set(PLUMBING) if ACTION.match(a)}

    def take(prefix: str) -> list[str]:
        taken = sorted(a for a in needed if a.startswith(prefix))
        needed.difference_update(taken)
        return taken

    stacks = [f"arn:aws:cloudformation:{r}:{account}:stack/{n}/*"
              for r in regions for n in (name, f"{name}-*")]
    transforms = [f"arn:aws:cloudformation:{r}:aws:transform/{t}" for r in regions
                  for t in ("Serverless-2016-10-31", "SecretsManager-2024-09-16")]
    role = f"arn:aws:iam::{account}:role/{name}-*"
    functions = [f"arn:aws:lambda:{r}:{account}:function:{name}-*{q}" for r in regions for q in ("", ":*")]
    buckets = [f"arn:aws:s3:::{name}-*", f"arn:aws:s3:::{name}-*/*"]
    artifacts = f"arn:aws:s3:::{cfg.artifact_bucket}"
    found = [
        Statement("Artifacts", list(ARTIFACT_ACTIONS), [f"{artifacts}/{name}/*", f"{artifacts}/{name}-*"]),
        Statement("ArtifactBucket", list(ARTIFACT_BUCKET_ACTIONS), [artifacts]),
        Statement("RotationCode", ["s3:GetObject"], [f"{b}/*" for b in ROTATION_CODE]),
        Statement("Transforms", ["cloudformation:CreateChangeSet"], transforms),
        Statement("PassOwnRoles", take("iam:PassRole"), [role],
                  {"StringEquals": {"iam:PassedToService": list(PASSED_TO)}}),
        Statement("ServiceLinkedRoles", take("iam:CreateServiceLinkedRole"),
                  [f"arn:aws:iam::{account}:role/aws-service-role/*"],
                  {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED)}}),
        Statement("Stacks", _compact(take("cloudformation:")), stacks),
        Statement("OwnRoles", _compact(take("iam:")), [role]),
        Statement("Functions", _compact(take("lambda:")), functions),
        Statement("Buckets", _compact(take("s3:")), buckets),
        Statement("Templates", take("serverlessrepo:"), ["*"]),
    ]
    # the rest: services whose resources have generated names, limited to the regions
    rest = _compact(a for a in needed if a.split(":")[0] in services)
    found.append(Statement("Resources", rest, ["*"], {"StringEquals": {"aws:RequestedRegion": regions}}))
    return [s for s in found if s.actions]


def _size(statements_: list[Statement]) -> int:
    doc = {"Version": "2012-10-17", "Statement": [s.document() for s in statements_]}
    return len(json.dumps(doc, separators=(",", ":")))


def policies(found: list[Statement]) -> list[list[Statement]]:
    """The statements packed into managed policies within IAM's size limit (a statement too big
    for one is split by actions). Sizes grow by each action's JSON, so packing stays linear."""
    packed: list[list[Statement]] = [[]]
    for statement in found:
        part = Statement(statement.sid, [], statement.resources, statement.condition)
        size = _size([*packed[-1], part])
        for action in statement.actions:
            grow = len(json.dumps(action)) + (1 if part.actions else 0)  # "a" or ,"a"
            if size + grow <= POLICY_LIMIT:
                part.actions.append(action)
                size += grow
                continue
            if part.actions:
                packed[-1].append(part)
            packed.append([])
            part = Statement(f"{statement.sid}{len(packed)}", [action], statement.resources,
                             statement.condition)
            size = _size([part])
        packed[-1].append(part)
    return packed


def bootstrap_files(configs: Iterable[Config], summaries: list[StackSummary],
                    out_dir: Path) -> dict[Path, bytes]:
    """<out_dir>/<account>.yaml for every account, checked like a stack template."""
    docs: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        docs.setdefault(s.stack.name, []).append(s.doc)
    by_account: dict[str, list[tuple[Config, list[list[Statement]]]]] = {}
    for cfg in configs:
        types = resource_types(docs[cfg.stack_name] + docs[cfg.edge_stack_name])
        by_account.setdefault(cfg.account, []).append((cfg, policies(statements(cfg, types))))
    template = jinja_environment().get_template("bootstrap.yaml.j2")
    files = {}
    for account, envs in sorted(by_account.items()):
        path = out_dir / f"{account}.yaml"
        text = template.render(account=account, envs=envs)
        check_template(text, str(path))
        files[path] = text.encode("utf-8")
    return files
