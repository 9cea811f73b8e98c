"""The per-account bootstrap stack: bootstrap/<account>.yaml from templates/bootstrap.yaml.j2.

One per AWS account named in vars/: GitHub's OIDC provider, the artifact bucket and, for each
environment in that account, rights split after CDK's modern bootstrap, so that no job can raise
its own rights (docs/design.md, "Who may change what"):

- `<project>-<env>-plan`: the unapproved plan job (GitHub environment `<env>-plan`). Reads, makes
  and describes change sets, passes the execution role to CloudFormation for them; executes,
  deletes and writes IAM nothing, and uploads artifacts only under the plan prefixes, which no
  role that runs a change set reads.
- `<project>-<env>-deploy`: the approved job (GitHub environment `<env>`) and people of the
  account. Executes change sets, updates and deletes its stacks through CloudFormation with the
  execution role, and the operational commands' own calls (publish-site, release-image, verify,
  restore-database, destroy); no IAM write of its own.
- `<project>-<env>-cfn-exec`: the CloudFormation execution role, trusted by
  cloudformation.amazonaws.com only, holding the resources' rights: for every resource type in the
  environment's stacks (and those their transforms create, EXPANDS), the permissions
  CloudFormation's resource schema lists for its create, read, update and delete handlers
  (deploy_permissions.yaml, taken from the schemas by permissions.py through `make regen`). It may
  create a role, or change one's policies, only when the role carries the boundary.
- `<project>-<env>-boundary`: the permissions boundary every role the stacks create carries
  (PermissionsBoundary on each AWS::IAM::Role of the templates). The three roles above carry none:
  their own policies are the limit, and the boundary denies passing them.

All four live under the IAM path `/<project>-bootstrap/`, outside `role/<project>-<env>-*` (the
names the stacks' roles take), and each role and the boundary deny every change to them and to
the OIDC provider (PROTECT). Names are limited to the environment's where the service's ARNs
carry them (stacks, roles, functions, buckets), to its regions elsewhere; read-only actions are
granted as `service:Describe*`/`Get*`/`List*` to keep the policies within IAM's size limit,
less the reads that return secrets (SECRET_READS), which only the execution role gets.
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
from .samconfig import plan_prefix
from .schema import Config

PERMISSIONS = Path(__file__).with_name("deploy_permissions.yaml")
# What a transform turns one resource into: the types whose handlers CloudFormation then runs.
EXPANDS = {
    "AWS::Serverless::Function": ("AWS::Lambda::Function", "AWS::Lambda::Version",
                                  "AWS::Lambda::Alias", "AWS::IAM::Role"),
}
# What the commands and the SAM CLI call on their own stacks, besides the resource handlers:
# the plan role's (plan, status, outputs, drift; the change sets of `sam deploy --no-execute-changeset`)
PLAN_STACK_CALLS = (
    "cloudformation:CreateChangeSet", "cloudformation:DeleteChangeSet",
    "cloudformation:DescribeChangeSet", "cloudformation:ListChangeSets", "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents", "cloudformation:ListStackResources",
    "cloudformation:DescribeStackResource", "cloudformation:DescribeStackResources",
    "cloudformation:GetTemplate", "cloudformation:GetTemplateSummary",
    "cloudformation:DetectStackDrift", "cloudformation:DetectStackResourceDrift",
    "cloudformation:DescribeStackResourceDrifts", "cloudformation:DescribeStackDriftDetectionStatus",
    "cloudformation:ValidateTemplate",
)
# and the deploy role's besides: execute (plan --execute), update (release-image), delete
# (destroy, discarding a first create's empty stack) and the way out of a failed rollback
DEPLOY_STACK_CALLS = (
    "cloudformation:ExecuteChangeSet", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
    "cloudformation:CancelUpdateStack", "cloudformation:ContinueUpdateRollback",
)
# The deploy role's own calls outside CloudFormation: publish-site (objects, invalidation),
# destroy (stopping access logs, emptying versioned buckets), restore-database (a cluster restored
# beside the stack's, its writer; KMS grants for the encrypted copy).
DEPLOY_BUCKET_CALLS = (
    "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucket",
    "s3:ListBucketVersions", "s3:GetBucketLogging", "s3:PutBucketLogging", "s3:GetBucketLocation",
)
DEPLOY_OTHER_CALLS = (
    "cloudfront:CreateInvalidation", "cloudfront:GetInvalidation",
    "rds:RestoreDBClusterToPointInTime", "rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance",
    "rds:AddTagsToResource", "kms:DescribeKey",
)
# RDS creates a grant on the cluster's key for a restore, with the caller's rights: allowed only
# for such a grant (kms:GrantIsForAWSResource, KMS Developer Guide, "AWS KMS condition keys").
DEPLOY_GRANTS = ("kms:CreateGrant",)
# What CloudFormation calls as the execution role besides the resource handlers: a custom
# resource's function is invoked with the stack's role; Lambda@Edge replication.
EXECUTION_CALLS = ("lambda:InvokeFunction", "lambda:EnableReplication*", "lambda:DisableReplication")
# Reads that return a secret or a credential (cloudsplaining's catalogue of the calls that return
# credentials, tests/test_escalation.py): granted to no role GitHub's tokens reach (the plan job's
# code is unreviewed), and denied to the plan and deploy roles outright, since their reads are
# granted as ecr:Get*, secretsmanager:Get*. No job pulls or pushes an image (release-image only
# describes them).
SECRET_READS = ("secretsmanager:GetSecretValue", "ecr:GetAuthorizationToken")
# Role changes the execution role makes only on a role that carries the boundary (iam:PermissionsBoundary,
# IAM User Guide: "Permissions boundaries for IAM entities", and the condition key's reference);
# removing a boundary it never does.
BOUNDED_IAM = ("iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy",
               "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:DeleteRolePolicy")
NEVER_IAM = ("iam:DeleteRolePermissionsBoundary",)
PASSING = ("iam:PassRole", "iam:CreateServiceLinkedRole")  # each in a statement with its condition
# What the boundary denies every role it bounds, besides PROTECT: users, access keys and policy
# rewrites (the escalation moves no stack needs), a role made without the boundary, a boundary removed.
BOUNDARY_DENIES = (
    "iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile",
    "iam:AddUserToGroup", "iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:AttachGroupPolicy",
    "iam:PutGroupPolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
    "iam:DeleteRolePermissionsBoundary",
)
# Changing a function's code or settings runs code as its role: only the environment's own.
FUNCTION_EDITS = ("lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration")
# What each role and the boundary leave alone on the bootstrap's own roles, policies and GitHub's
# OIDC provider: every action but reading them and passing the execution role (PROTECT).
PROTECT_ALLOWS = ("iam:Get*", "iam:List*", "iam:PassRole")
# The services that may create a service-linked role: those of the stacks' resources, Lambda@Edge's
# replicator and CloudFront's standard-logging writer.
SERVICE_LINKED = ("ecs.amazonaws.com", "elasticloadbalancing.amazonaws.com", "rds.amazonaws.com",
                  "ecs.application-autoscaling.amazonaws.com", "replicator.lambda.amazonaws.com",
                  "logger.cloudfront.amazonaws.com")
# The services the stacks' roles are passed to, each documented with iam:PassedToService: ECS task
# roles (ECS Developer Guide, task IAM role), Lambda execution roles (Lambda Developer Guide,
# execution role), VPC flow logs (VPC User Guide, IAM role for publishing flow logs).
PASSED_TO = ("ecs-tasks.amazonaws.com", "lambda.amazonaws.com", "vpc-flow-logs.amazonaws.com")
# RDS enhanced monitoring's role: the RDS User Guide ("Setting up and enabling Enhanced
# Monitoring") names no iam:PassedToService value for it, so its PassRole names the role alone.
MONITORING_ROLE = "DatabaseMonitoringRole"
# What `sam deploy` does with the account's artifact bucket (s3_bucket in samconfig.toml): it
# looks for an object (HeadObject = s3:GetObject), uploads templates and code (PutObject) and
# reads the bucket's region. The deploy role under the environment's stack prefixes (s3_prefix),
# which the execution role reads when a change set runs (Lambda takes a function's code from S3
# then); the plan role only under the plan prefixes (samconfig.plan_prefix), which no role that
# runs a change set reads: what the unapproved job uploads is never deployed.
ARTIFACT_ACTIONS = ("s3:GetObject", "s3:PutObject")
ARTIFACT_BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket")
READ_VERBS = ("Describe", "Get", "List")
SERVICE_OF = {"ElasticLoadBalancingV2": "elasticloadbalancing",
              "ApplicationAutoScaling": "application-autoscaling"}
POLICY_LIMIT = 6144  # characters of a managed policy, whitespace not counted
ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
ROLE_KINDS = ("plan", "deploy", "cfn-exec")


@dataclass
class Statement:
    sid: str
    actions: list[str]
    resources: list[str]
    condition: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    effect: str = "Allow"
    not_action: bool = False  # actions are the NotAction list
    not_resource: bool = False  # resources are the NotResource list

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect,
                               "NotAction" if self.not_action else "Action": self.actions,
                               "NotResource" if self.not_resource else "Resource": self.resources}
        if self.condition:
            doc["Condition"] = self.condition
        return doc


@dataclass
class BootstrapRole:
    """One of an environment's bootstrap roles: its kind (ROLE_KINDS) and its policies' statements."""
    kind: str
    statements: list[Statement]


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
            found.update(EXPANDS.get(kind, ()))
            if not kind.startswith(("AWS::Serverless::", "Custom::")):  # custom: EXECUTION_CALLS
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
    deploy_permissions.yaml (what the execution roles are built from): checked on every render, of
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


def _reads(actions: Iterable[str]) -> list[str]:
    return [a for a in actions if a.split(":", 1)[1].startswith(READ_VERBS)]


@dataclass
class Scope:
    """The ARNs an environment's statements name."""
    cfg: Config
    types: set[str]

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.name = cfg.stack_name
        self.regions = list(dict.fromkeys([cfg.region, EDGE_REGION]))
        self.services = {service_of(t) for t in self.types}
        account, name, regions = cfg.account, self.name, self.regions
        self.stacks = [f"arn:aws:cloudformation:{r}:{account}:stack/{n}/*"
                       for r in regions for n in (name, f"{name}-*")]
        self.transforms = [f"arn:aws:cloudformation:{r}:aws:transform/Serverless-2016-10-31" for r in regions]
        self.roles = f"arn:aws:iam::{account}:role/{name}-*"
        self.functions = [f"arn:aws:lambda:{r}:{account}:function:{name}-*{q}" for r in regions
                          for q in ("", ":*")]
        self.buckets = [f"arn:aws:s3:::{name}-*", f"arn:aws:s3:::{name}-*/*"]
        self.artifacts = f"arn:aws:s3:::{cfg.artifact_bucket}"
        self.stack_artifacts = [f"{self.artifacts}/{name}/*", f"{self.artifacts}/{name}-*"]
        self.plan_artifacts = [f"{self.artifacts}/{plan_prefix(name)}/*",
                               f"{self.artifacts}/{plan_prefix(name)}-*"]
        self.protected = [f"arn:aws:iam::{account}:role{cfg.bootstrap_path}*",
                          f"arn:aws:iam::{account}:policy{cfg.bootstrap_path}*",
                          f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"]

    @property
    def region_only(self) -> dict[str, dict[str, list[str]]]:
        return {"StringEquals": {"aws:RequestedRegion": self.regions}}

    def handler(self) -> set[str]:
        return {a for a in handler_actions(self.types) if ACTION.match(a)}

    def service_reads(self) -> list[str]:
        """The stacks' services' read actions outside CloudFormation, IAM and S3 (scoped apart)."""
        return _compact(a for a in _reads(self.handler()) if a.split(":")[0] in self.services
                        and not a.startswith(("cloudformation:", "iam:", "s3:", "lambda:")))


def protect(scope: Scope) -> Statement:
    """The Deny on every change to the bootstrap's roles, policies and the OIDC provider."""
    return Statement("ProtectTheBootstrap", list(PROTECT_ALLOWS), scope.protected, effect="Deny",
                     not_action=True)


def _shared(scope: Scope, artifacts: list[str]) -> list[Statement]:
    """What the plan and deploy roles both need to make change sets with the execution role, the
    artifacts under their own prefixes."""
    cfg = scope.cfg
    return [
        Statement("Artifacts", list(ARTIFACT_ACTIONS), artifacts),
        Statement("ArtifactBucket", list(ARTIFACT_BUCKET_ACTIONS), [scope.artifacts]),
        Statement("Transforms", ["cloudformation:CreateChangeSet"], scope.transforms),
        Statement("PassExecutionRole", ["iam:PassRole"], [cfg.execution_role_arn],
                  {"StringEquals": {"iam:PassedToService": ["cloudformation.amazonaws.com"]}}),
        Statement("Reads", scope.service_reads(), ["*"], scope.region_only),
        Statement("FunctionReads", _compact(_reads(a for a in scope.handler() if a.startswith("lambda:"))),
                  scope.functions),
        protect(scope),
    ]


def plan_statements(scope: Scope) -> list[Statement]:
    return [Statement("Stacks", _compact(PLAN_STACK_CALLS), scope.stacks),
            *_shared(scope, scope.plan_artifacts),
            Statement("NoSecretReads", list(SECRET_READS), ["*"], effect="Deny")]


def deploy_statements(scope: Scope) -> list[Statement]:
    buckets = [*_reads(a for a in scope.handler() if a.startswith("s3:")), *DEPLOY_BUCKET_CALLS]
    return [Statement("Stacks", _compact(PLAN_STACK_CALLS + DEPLOY_STACK_CALLS), scope.stacks),
            *_shared(scope, scope.stack_artifacts),
            Statement("Buckets", _compact(buckets), scope.buckets),
            Statement("Operations", sorted(DEPLOY_OTHER_CALLS), ["*"], scope.region_only),
            Statement("GrantsForRestores", list(DEPLOY_GRANTS), ["*"],
                      {**scope.region_only, "Bool": {"kms:GrantIsForAWSResource": ["true"]}}),
            Statement("NoSecretReads", list(SECRET_READS), ["*"], effect="Deny")]


def _role_statements(scope: Scope, needed: set[str]) -> list[Statement]:
    """The execution role's IAM statements: its stacks' roles, bounded; service-linked roles."""
    cfg, account = scope.cfg, scope.cfg.account
    every = {a for a in needed if a.startswith("iam:")}
    needed.difference_update(every)
    iam = every - set(NEVER_IAM)
    bounded = {"StringEquals": {"iam:PermissionsBoundary": [cfg.boundary_arn]}}
    return [
        Statement("BoundedRoles", sorted(iam & set(BOUNDED_IAM)), [scope.roles], bounded),
        Statement("OwnRoles", _compact(iam - set(BOUNDED_IAM) - set(PASSING)), [scope.roles]),
        Statement("PassOwnRoles", ["iam:PassRole"], [scope.roles],
                  {"StringEquals": {"iam:PassedToService": list(PASSED_TO)}}),
        Statement("PassMonitoringRole", ["iam:PassRole"], [f"{scope.roles[:-1]}{MONITORING_ROLE}-*"]),
        Statement("ServiceLinkedRoles", ["iam:CreateServiceLinkedRole"],
                  [f"arn:aws:iam::{account}:role/aws-service-role/*"],
                  {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED)}}),
    ]


def execution_statements(scope: Scope) -> list[Statement]:
    needed = scope.handler() | {a for a in EXECUTION_CALLS if ACTION.match(a)}

    def take(prefix: str) -> list[str]:
        taken = sorted(a for a in needed if a.startswith(prefix))
        needed.difference_update(taken)
        return taken

    found = [Statement("Artifacts", ["s3:GetObject"], scope.stack_artifacts),
             Statement("Transforms", ["cloudformation:CreateChangeSet"], scope.transforms),
             *_role_statements(scope, needed),
             Statement("Stacks", _compact(take("cloudformation:")), scope.stacks),
             Statement("Functions", _compact(take("lambda:")), scope.functions),
             Statement("Buckets", _compact(take("s3:")), scope.buckets)]
    # the rest: services whose resources have generated names, limited to the regions
    rest = _compact(a for a in needed if a.split(":")[0] in scope.services)
    found.append(Statement("Resources", rest, ["*"], scope.region_only))
    found.append(protect(scope))
    return found


def _role_services(docs: Iterable[dict[str, Any]]) -> set[str]:
    """The services the stacks' own roles' inline policies name (rds-data, for one)."""
    found = set()
    for doc in docs:
        for resource in doc["Resources"].values():
            if resource["Type"] == "AWS::IAM::Role":
                for policy in resource["Properties"].get("Policies", []):
                    for statement in policy["PolicyDocument"]["Statement"]:
                        actions = statement["Action"]
                        actions = [actions] if isinstance(actions, str) else actions
                        found |= {a.split(":")[0] for a in actions}
    return found


def boundary_statements(scope: Scope, role_services: set[str]) -> list[Statement]:
    """The permissions boundary (IAM User Guide, "Permissions boundaries for IAM entities"; after
    CDK's example boundary, `cdk bootstrap --example-permissions-boundary`): a ceiling of the
    services the stacks use, IAM and STS only where the stacks' roles' own policies name them (a
    ceiling of iam:* would let a role rewrite the account's identity providers, delete its other
    roles or users' credentials: every IAM write not denied below); within it a role changes only
    roles that carry this boundary, passes only the environment's roles, edits only the
    environment's functions, assumes no role, and leaves the bootstrap alone (PROTECT)."""
    cfg = scope.cfg
    not_bounded = {"StringNotEquals": {"iam:PermissionsBoundary": [cfg.boundary_arn]}}
    services = sorted(scope.services - {"iam", "sts"} | role_services)
    return [
        Statement("CeilingTheStacksServices", [f"{s}:*" for s in services], ["*"]),
        protect(scope),
        Statement("OnlyBoundedRoles", list(BOUNDED_IAM), ["*"], not_bounded, effect="Deny"),
        Statement("NoUsersKeysOrPolicyRewrites", list(BOUNDARY_DENIES), ["*"], effect="Deny"),
        Statement("NoRoleAssumed", ["sts:AssumeRole"], ["*"], effect="Deny"),
        Statement("PassOnlyTheEnvironmentsRoles", ["iam:PassRole"], [scope.roles], effect="Deny",
                  not_resource=True),
        Statement("TrustOnlyOfTheEnvironmentsRoles", ["iam:UpdateAssumeRolePolicy"], [scope.roles],
                  effect="Deny", not_resource=True),
        Statement("EditOnlyTheEnvironmentsFunctions", list(FUNCTION_EDITS), scope.functions, effect="Deny",
                  not_resource=True),
    ]


STATEMENTS = {"plan": plan_statements, "deploy": deploy_statements, "cfn-exec": execution_statements}


def roles(cfg: Config, types: set[str]) -> list[BootstrapRole]:
    scope = Scope(cfg, types)
    return [BootstrapRole(kind, [s for s in STATEMENTS[kind](scope) if s.actions]) for kind in ROLE_KINDS]


def _size(statements_: list[Statement]) -> int:
    doc = {"Version": "2012-10-17", "Statement": [s.document() for s in statements_]}
    return len(json.dumps(doc, separators=(",", ":")))


def _part(statement: Statement, sid: str, actions: list[str]) -> Statement:
    return Statement(sid, actions, statement.resources, statement.condition, statement.effect,
                     statement.not_action, statement.not_resource)


def policies(found: list[Statement]) -> list[list[Statement]]:
    """The statements packed into managed policies within IAM's size limit (a statement too big
    for one is split by actions). Sizes grow by each action's JSON, so packing stays linear."""
    packed: list[list[Statement]] = [[]]
    for statement in found:
        part = _part(statement, statement.sid, [])
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
            part = _part(statement, f"{statement.sid}{len(packed)}", [action])
            size = _size([part])
        packed[-1].append(part)
    return packed


@dataclass
class EnvironmentRoles:
    """What the bootstrap template renders for one environment: its Config, each role's
    statements packed into managed policies, and the boundary's statements."""
    cfg: Config
    policies: dict[str, list[list[Statement]]]
    boundary: list[Statement]


def environment_roles(cfg: Config, docs: list[dict[str, Any]]) -> EnvironmentRoles:
    types = resource_types(docs)
    boundary = boundary_statements(Scope(cfg, types), _role_services(docs))
    if _size(boundary) > POLICY_LIMIT:  # one document: a boundary is one managed policy
        raise UserError("templates/bootstrap.yaml.j2", "boundary", "exceeds IAM's 6,144 characters")
    return EnvironmentRoles(cfg, {r.kind: policies(r.statements) for r in roles(cfg, types)}, boundary)


def bootstrap_files(configs: Iterable[Config], summaries: list[StackSummary],
                    out_dir: Path) -> dict[Path, bytes]:
    """<out_dir>/<account>.yaml for every account, checked like a stack template."""
    docs: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        docs.setdefault(s.stack.name, []).append(s.doc)
    by_account: dict[str, list[EnvironmentRoles]] = {}
    for cfg in configs:
        stacks = docs[cfg.stack_name] + docs[cfg.edge_stack_name]
        by_account.setdefault(cfg.account, []).append(environment_roles(cfg, stacks))
    template = jinja_environment().get_template("bootstrap.yaml.j2")
    files = {}
    for account, envs in sorted(by_account.items()):
        path = out_dir / f"{account}.yaml"
        text = template.render(account=account, envs=envs, kinds=ROLE_KINDS)
        check_template(text, str(path))
        files[path] = text.encode("utf-8")
    return files
