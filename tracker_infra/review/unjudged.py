"""Fail closed: every changed security-bearing property that no rule judges is said.

SECURITY_BEARING is the one table of what guards the stacks, by resource type and property path
under Properties ("" for every property of the type, "*" for any list item, ``[Key=...]`` for the
list item so named). NEUTRAL names the properties that are explicitly not security-bearing
(tags, descriptions). A change of a resource present on both sides is judged when one of these
covers its path:

  security.py     every policy document (under any property name, as an object or JSON text:
                  policy.as_document), what attaches a policy or bounds a role (ATTACHMENTS), a
                  Lambda permission, and every security-group rule (inline, standalone), when
                  security.py reports the change (a row of its IAM or rule table for the
                  resource): a change it does not see is not judged;
  widening.py     a hand rule's ``paths``;
  catalogue.py    an entry whose property it is, when its verdict is proven (widens, tighter,
                  unchanged);
  cleartext.py    a container's or function's environment variables (a secret there widens,
                  any other value is no secret in the clear).

Every other changed security-bearing property is NOT JUDGED: the report's head lists it with
its path and both values, and `render.py diff --fail-on-unjudged` exits 9 on it. An added or
removed resource is not a changed property: it is in the report's stack section, and the rules
for a resource that starts weak or is removed (widening.py) speak for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import catalogue, cleartext
from .policy import as_document
from .report import IamChange, RuleChange, Unjudged
from .values import diff_values, format_path
from .widening import RULES

ALL = ("",)
SECURITY_BEARING: dict[str, tuple[str, ...]] = {
    # identity and access
    "AWS::IAM::Role": ALL, "AWS::IAM::Policy": ALL, "AWS::IAM::ManagedPolicy": ALL,
    "AWS::IAM::User": ALL, "AWS::IAM::Group": ALL, "AWS::IAM::InstanceProfile": ALL,
    "AWS::IAM::OIDCProvider": ALL, "AWS::Lambda::Permission": ALL,
    # networks
    "AWS::EC2::SecurityGroup": ALL, "AWS::EC2::SecurityGroupIngress": ALL,
    "AWS::EC2::SecurityGroupEgress": ALL, "AWS::EC2::NetworkAcl": ALL, "AWS::EC2::NetworkAclEntry": ALL,
    "AWS::EC2::VPCEndpoint": ("PolicyDocument", "PrivateDnsEnabled", "SecurityGroupIds"),
    # keys, secrets and resource policies
    "AWS::KMS::Key": ALL, "AWS::KMS::Alias": ALL,
    "AWS::SecretsManager::Secret": ALL, "AWS::SecretsManager::RotationSchedule": ALL,
    "AWS::SecretsManager::SecretTargetAttachment": ALL, "AWS::SecretsManager::ResourcePolicy": ALL,
    "AWS::S3::BucketPolicy": ALL, "AWS::SNS::TopicPolicy": ALL, "AWS::SQS::QueuePolicy": ALL,
    "AWS::Logs::ResourcePolicy": ALL,
    # compute
    "AWS::ECS::TaskDefinition": (
        "TaskRoleArn", "ExecutionRoleArn", "NetworkMode", "PidMode", "IpcMode", "Volumes",
        "ContainerDefinitions.*.Environment", "ContainerDefinitions.*.Secrets",
        "ContainerDefinitions.*.User", "ContainerDefinitions.*.Privileged",
        "ContainerDefinitions.*.ReadonlyRootFilesystem", "ContainerDefinitions.*.LinuxParameters",
        "ContainerDefinitions.*.MountPoints", "ContainerDefinitions.*.PortMappings",
        "ContainerDefinitions.*.LogConfiguration", "ContainerDefinitions.*.DockerSecurityOptions",
    ),
    "AWS::ECS::Service": ("NetworkConfiguration", "LoadBalancers", "EnableExecuteCommand"),
    "AWS::Lambda::Function": ("Role", "Environment", "KmsKeyArn", "VpcConfig", "LoggingConfig"),
    "AWS::Serverless::Function": ("Role", "Policies", "PermissionsBoundary", "Environment",
                                  "KmsKeyArn", "VpcConfig", "FunctionUrlConfig", "AutoPublishAlias"),
    "AWS::Lambda::Url": ALL,
    # the edge and the load balancer
    "AWS::ElasticLoadBalancingV2::Listener": ALL, "AWS::ElasticLoadBalancingV2::ListenerRule": ALL,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("Scheme", "SecurityGroups", "Subnets",
                                                  "LoadBalancerAttributes"),
    "AWS::CloudFront::Distribution": (
        "DistributionConfig.ViewerCertificate", "DistributionConfig.WebACLId",
        "DistributionConfig.Logging", "DistributionConfig.Origins",
        "DistributionConfig.DefaultCacheBehavior.ViewerProtocolPolicy",
        "DistributionConfig.DefaultCacheBehavior.LambdaFunctionAssociations",
        "DistributionConfig.DefaultCacheBehavior.ResponseHeadersPolicyId",
        "DistributionConfig.CacheBehaviors",
    ),
    "AWS::CloudFront::OriginAccessControl": ALL, "AWS::CloudFront::ResponseHeadersPolicy": ALL,
    # stateful resources' protection
    "AWS::S3::Bucket": ("PublicAccessBlockConfiguration", "BucketEncryption", "LoggingConfiguration",
                        "VersioningConfiguration", "OwnershipControls", "AccessControl",
                        "ObjectLockConfiguration", "WebsiteConfiguration", "CorsConfiguration"),
    "AWS::RDS::DBCluster": ("StorageEncrypted", "KmsKeyId", "DeletionProtection", "BackupRetentionPeriod",
                            "EnableCloudwatchLogsExports", "EnableIAMDatabaseAuthentication",
                            "EnableHttpEndpoint", "MasterUsername", "MasterUserPassword",
                            "ManageMasterUserPassword", "MasterUserSecret", "VpcSecurityGroupIds",
                            "DBSubnetGroupName", "DBClusterParameterGroupName"),
    "AWS::RDS::DBInstance": ("PubliclyAccessible", "StorageEncrypted", "KmsKeyId", "DBSubnetGroupName",
                             "VPCSecurityGroups", "EnableIAMDatabaseAuthentication"),
    "AWS::RDS::DBClusterParameterGroup": ALL, "AWS::RDS::DBParameterGroup": ALL,
    "AWS::SNS::Topic": ("KmsMasterKeyId",), "AWS::SQS::Queue": ("KmsMasterKeyId", "SqsManagedSseEnabled"),
    "AWS::ECR::Repository": ("EncryptionConfiguration", "ImageScanningConfiguration",
                             "ImageTagMutability", "RepositoryPolicyText"),
    # logs, trails and alarms
    "AWS::Logs::LogGroup": ALL, "AWS::Logs::MetricFilter": ALL, "AWS::Logs::SubscriptionFilter": ALL,
    "AWS::CloudTrail::Trail": ALL, "AWS::EC2::FlowLog": ALL,
    "AWS::CloudWatch::Alarm": ("AlarmActions", "OKActions", "InsufficientDataActions", "ActionsEnabled"),
}
NEUTRAL = ("Tags", "Description", "AlarmDescription")  # say nothing about what guards a resource

# security.py judges these wherever they are: policy documents, and security-group rules.
SECURITY_GROUP_RULES = {"AWS::EC2::SecurityGroup": ("SecurityGroupIngress", "SecurityGroupEgress"),
                        "AWS::EC2::SecurityGroupIngress": ALL, "AWS::EC2::SecurityGroupEgress": ALL}

_STEP = re.compile(r"\[[^\]]*\]|[^.\[\]]+")


def steps(pattern: str) -> tuple[str, ...]:
    return tuple(_STEP.findall(pattern))


def normalised(path: tuple[Any, ...]) -> tuple[str, ...]:
    """A changed path's steps as the patterns write them: positions as "*", named list items as
    ``[Key=...]``."""
    out = []
    for step in path:
        if isinstance(step, int):
            out.append("*")
        elif isinstance(step, tuple):
            out.append(f"[{step[0]}={step[1]}]")
        else:
            out.append(str(step))
    return tuple(out)


def _covers(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """One is a prefix of the other ("*" matches any step): a rule reading a.b judges a change
    of a.b.c, and of a (which holds a.b)."""
    return all(p == q or "*" in (p, q) for p, q in zip(pattern, path, strict=False))


def _any(patterns: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return any(_covers(steps(p), path) for p in patterns)


def bearing(type_: str, path: tuple[str, ...]) -> bool:
    """Whether a property path of this type guards something (the NEUTRAL ones never do)."""
    patterns = SECURITY_BEARING.get(type_, ())
    return bool(path) and path[0] not in NEUTRAL and _any(patterns, path)


@dataclass(frozen=True)
class _Seen:
    """What security.py reported for one resource."""

    statements: bool  # a row of the IAM table
    rules: bool  # a row of the security-group rule table


# What security.py judges besides documents: policies attached, boundaries, who a policy is for,
# and every field of a Lambda permission (security.py reads it as a statement).
ATTACHMENTS = ("ManagedPolicyArns", "PermissionsBoundary", "Roles", "Users", "Groups")


def _document_at(side: Any, path: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The path of the policy document the changed path lies in on this side, or None."""
    node = side
    for depth, step in enumerate(path):
        if as_document(node) is not None:
            return path[:depth]
        node = _step_into(node, step)
    return path if as_document(node) is not None else None


def _in_document(props: tuple[Any, Any], path: tuple[Any, ...]) -> bool:
    """Whether the changed path lies in a policy document security.py can read, on either side."""
    return any(_document_at(side, path) is not None for side in props)


def _step_into(node: Any, step: Any) -> Any:
    """The value one step of a diff_values path down (a key, a position, or a (key, value) named
    list item), or None."""
    if isinstance(node, dict) and isinstance(step, str):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and step < len(node):
        return node[step]
    if isinstance(node, list) and isinstance(step, tuple):
        return next((i for i in node if isinstance(i, dict) and i.get(step[0]) == step[1]), None)
    return None


def _judged(type_: str, path: tuple[str, ...], proven: list[tuple[str, ...]], seen: _Seen,
            in_document: bool = False) -> bool:
    if in_document or path[0] in ATTACHMENTS or type_ == "AWS::Lambda::Permission":
        # judged when security.py said something of the resource: it compares every statement it
        # reads whole, so a changed one always gives it a row (a widening, or none)
        return seen.statements
    if _any(SECURITY_GROUP_RULES.get(type_, ()), path):
        return seen.rules
    rules = [p for r in RULES if type_ in r.types for p in r.paths] + list(cleartext.PATHS.get(type_, ()))
    return _any(tuple(rules), path) or any(_covers(p, path) for p in proven)


def _resource_unjudged(logical_id: str, a: dict[str, Any], b: dict[str, Any], seen: _Seen) -> list[Unjudged]:
    """One resource's changed security-bearing properties that no rule judges."""
    type_ = str(b.get("Type", ""))
    proven = [v.entry.path for v in catalogue.judge(a, b) if v.proven]
    props = (a.get("Properties") or {}, b.get("Properties") or {})
    found = []
    for path, x, y in diff_values(*props):
        steps_ = normalised(path)
        if bearing(type_, steps_) and not _judged(type_, steps_, proven, seen, _in_document(props, path)):
            found.append(Unjudged(logical_id, type_, format_path(("Properties", *path)), x, y))
    return found


def unjudged(old: dict[str, Any], new: dict[str, Any], iam: list[IamChange],
             rules: list[RuleChange]) -> list[Unjudged]:
    """Every changed security-bearing property of the resources on both sides that no rule
    judges (``iam`` and ``rules``: security.py's rows for the same change)."""
    with_rows = {c.resource.split()[0] for c in iam}
    groups = {c.group for c in rules}
    found = []
    for logical_id in sorted(set(old) & set(new)):
        a, b = old[logical_id], new[logical_id]
        type_ = str(b.get("Type", ""))
        if type_ not in SECURITY_BEARING or a.get("Type") != type_:
            continue
        standalone = type_ != "AWS::EC2::SecurityGroup"  # a rule resource: its group's rows
        seen = _Seen(logical_id in with_rows, logical_id in groups or (standalone and bool(groups)))
        found += _resource_unjudged(logical_id, a, b, seen)
    return found
