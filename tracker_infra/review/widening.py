"""Widenings: changes that expose, weaken or put data at risk, found resource by resource.

Each rule reads one resource on both sides of a change (None where it does not exist) and says
why the change loosens it, or nothing. The categories:

  exposure    public access blocks, policies open to "*", PubliclyAccessible, AssignPublicIp, the
              load balancer's scheme;
  transport   CloudFront's viewer protocol and minimum TLS version, the ALB's TLS policy, a
              listener that serves plain HTTP, a removed aws:SecureTransport deny;
  encryption  storage encryption, KMS keys removed, bucket encryption, secrets, topics, logs,
              repositories;
  data        deletion protection, DeletionPolicy / UpdateReplacePolicy losing Retain or
              Snapshot, shorter backups, versioning suspended, shorter log retention;
  audit       flow logs, access logs and CloudFront logs removed, log exports off, alarms removed
              or their actions dropped.

The verdicts are this module's own, in the runtime install as in the dev install. Where checkov
has a CloudFormation check that says the same, the rule names it (``checkov``) and
tests/test_widening.py proves each such rule against checkov itself: the planted change must make
checkov newly fail exactly that check. Rules that checkov has no check for name their source in
AWS's documentation. `render.py diff` reports every widening in the report's head; security
categories fail --fail-on-broadening (exit 5), data protection fails --fail-on-replace (exit 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SECURITY = ("exposure", "transport", "encryption", "audit")
DATA = "data"
KEPT = ("Retain", "RetainExceptOnCreate", "Snapshot")
WEAK_TLS_POLICIES = (
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS-1-0-2015-04",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-2015-05",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
)
MODERN_CLOUDFRONT_TLS = ("TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")

Resource = dict[str, Any]
Judge = Callable[[Resource | None, Resource | None], str]


@dataclass(frozen=True)
class Rule:
    id: str
    category: str  # one of SECURITY, or DATA
    types: tuple[str, ...]
    judge: Judge  # (old resource or None, new resource or None) -> why it widens, or ""
    checkov: tuple[str, ...] = ()  # checkov checks that say the same (tests/test_widening.py)
    source: str = ""  # AWS's documentation, for a rule checkov has no check for


@dataclass(frozen=True)
class Widening:
    category: str
    rule: str
    logical_id: str
    type: str
    reason: str

    @property
    def security(self) -> bool:
        return self.category in SECURITY


# --- reading a resource ---------------------------------------------------------------------------


def _props(resource: Resource | None) -> dict[str, Any]:
    props = (resource or {}).get("Properties")
    return props if isinstance(props, dict) else {}


def _at(resource: Resource | None, path: str) -> Any:
    """The value at a dotted path under Properties (None where any step is missing)."""
    node: Any = _props(resource)
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _attributes(resource: Resource | None) -> dict[str, Any]:
    """A load balancer's attributes, key -> value."""
    items = _at(resource, "LoadBalancerAttributes") or []
    return {a.get("Key"): a.get("Value") for a in items if isinstance(a, dict)}


def _off(value: Any) -> bool:
    """Plainly off: false, "false", absent. A condition (Fn::If) counts as on when one branch is."""
    if isinstance(value, dict) and "Fn::If" in value:
        branches = value["Fn::If"][1:]
        return all(_off(b) for b in branches)
    return value in (None, False, "false", "False")


def _statements(resource: Resource | None) -> list[dict[str, Any]]:
    doc = _at(resource, "PolicyDocument") or _at(resource, "KeyPolicy") or {}
    items = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [s for s in (items if isinstance(items, list) else [items]) if isinstance(s, dict)]


def _open_to_anyone(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    anyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
    return statement.get("Effect") == "Allow" and anyone and not statement.get("Condition")


def _tls_only(statement: dict[str, Any]) -> bool:
    return statement.get("Effect") == "Deny" and "aws:SecureTransport" in str(statement.get("Condition"))


# --- kinds of rules ---------------------------------------------------------------------------------


def became(weak: Callable[[Resource], str]) -> Judge:
    """Widens when the new resource is weak in this way and the old one was not (or did not
    exist: a new resource that starts weak counts)."""

    def judge(old: Resource | None, new: Resource | None) -> str:
        if new is None:
            return ""
        reason = weak(new)
        return reason if reason and not (old is not None and weak(old)) else ""

    return judge


def lost(strong: Callable[[Resource], str]) -> Judge:
    """Widens when a property that protected the old resource is gone from the new one. A
    resource removed whole is not a widening of its properties: a removed stateful resource is
    reported as data at risk, a removed alarm or flow log by its own rule."""

    def judge(old: Resource | None, new: Resource | None) -> str:
        if old is None or new is None:
            return ""
        had = strong(old)
        return f"{had} removed" if had and not strong(new) else ""

    return judge


def shorter(path: str, what: str) -> Judge:
    """Widens when a number at ``path`` goes down (or goes away)."""

    def judge(old: Resource | None, new: Resource | None) -> str:
        a, b = _at(old, path), _at(new, path) if new is not None else None
        if not isinstance(a, (int, float)) or new is None:
            return ""
        if not isinstance(b, (int, float)):
            return f"{what} no longer set (was {a})"
        return f"{what} {a} -> {b}" if b < a else ""

    return judge


def _policy_of(kind: str) -> Callable[[Resource], str]:
    def strong(resource: Resource) -> str:
        policy = resource.get(kind)
        return f"{kind}: {policy}" if policy in KEPT else ""

    return strong


def _removed(what: str) -> Judge:
    def judge(old: Resource | None, new: Resource | None) -> str:
        return f"{what} removed" if old is not None and new is None else ""

    return judge


# --- the rules ------------------------------------------------------------------------------------


def _public_access_block(r: Resource) -> str:
    block = _at(r, "PublicAccessBlockConfiguration") or {}
    off = [
        k
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        if _off(block.get(k) if isinstance(block, dict) else None)
    ]
    return f"public access block off ({', '.join(off)})" if off else ""


def _policy_open(r: Resource) -> str:
    return (
        'policy allows anyone (Principal "*", no condition)'
        if any(_open_to_anyone(s) for s in _statements(r))
        else ""
    )


def _public_database(r: Resource) -> str:
    return "PubliclyAccessible: true" if _at(r, "PubliclyAccessible") in (True, "true") else ""


def _public_ip(r: Resource) -> str:
    value = _at(r, "NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp")
    return "tasks get public IP addresses (AssignPublicIp: ENABLED)" if value == "ENABLED" else ""


def _internet_facing(r: Resource) -> str:
    return "load balancer internet-facing" if _at(r, "Scheme") in (None, "internet-facing") else ""


def _behaviours(r: Resource) -> list[dict[str, Any]]:
    config = _at(r, "DistributionConfig") or {}
    found = [config.get("DefaultCacheBehavior"), *(config.get("CacheBehaviors") or [])]
    return [b for b in found if isinstance(b, dict)]


def _plain_http_viewers(r: Resource) -> str:
    allow = [
        b.get("PathPattern", "default")
        for b in _behaviours(r)
        if b.get("ViewerProtocolPolicy") == "allow-all"
    ]
    return (
        f"serves plain HTTP to viewers (ViewerProtocolPolicy: allow-all on {', '.join(allow)})"
        if allow
        else ""
    )


def _old_cloudfront_tls(r: Resource) -> str:
    version = _at(r, "DistributionConfig.ViewerCertificate.MinimumProtocolVersion")
    return (
        f"MinimumProtocolVersion {version} (older than TLS 1.2)"
        if (isinstance(version, str) and version not in MODERN_CLOUDFRONT_TLS)
        else ""
    )


def _weak_tls_policy(r: Resource) -> str:
    policy = _at(r, "SslPolicy")
    return f"SslPolicy {policy} accepts TLS older than 1.2" if policy in WEAK_TLS_POLICIES else ""


def _plain_http_listener(r: Resource) -> str:
    actions = _at(r, "DefaultActions") or []
    forwards = any(isinstance(a, dict) and a.get("Type") != "redirect" for a in actions)
    return (
        "HTTP listener serves instead of redirecting to HTTPS"
        if (_at(r, "Protocol") == "HTTP" and forwards)
        else ""
    )


def _tls_only_deny(r: Resource) -> str:
    return "aws:SecureTransport deny" if any(_tls_only(s) for s in _statements(r)) else ""


def _has(path: str, what: str) -> Callable[[Resource], str]:
    def strong(r: Resource) -> str:
        value = _at(r, path)
        return what if value not in (None, "", [], {}) else ""

    return strong


def _unencrypted_storage(r: Resource) -> str:
    return "StorageEncrypted off" if _off(_at(r, "StorageEncrypted")) else ""


def _no_deletion_protection(r: Resource) -> str:
    return "DeletionProtection off" if _off(_at(r, "DeletionProtection")) else ""


def _alb_deletion_protection_off(r: Resource) -> str:
    return (
        "deletion_protection.enabled off" if _off(_attributes(r).get("deletion_protection.enabled")) else ""
    )


def _alb_access_logs_off(r: Resource) -> str:
    return (
        "access logs off (access_logs.s3.enabled)"
        if _off(_attributes(r).get("access_logs.s3.enabled"))
        else ""
    )


def _versioning_suspended(r: Resource) -> str:
    status = _at(r, "VersioningConfiguration.Status")
    return f"versioning {status or 'off'}" if status != "Enabled" else ""


def _alarm_actions(r: Resource) -> str:
    return "alarm actions" if _at(r, "AlarmActions") else ""


RULES: tuple[Rule, ...] = (
    # exposure
    Rule(
        "bucket-public-access-block",
        "exposure",
        ("AWS::S3::Bucket",),
        became(_public_access_block),
        ("CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"),
    ),
    Rule(
        "policy-open-to-anyone",
        "exposure",
        ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy", "AWS::KMS::Key"),
        became(_policy_open),
        source='IAM User Guide, "Principal": "*" without a condition allows anyone',
    ),
    Rule(
        "database-publicly-accessible",
        "exposure",
        ("AWS::RDS::DBInstance",),
        became(_public_database),
        ("CKV_AWS_17",),
    ),
    Rule(
        "task-public-ip",
        "exposure",
        ("AWS::ECS::Service",),
        became(_public_ip),
        source="ECS Developer Guide, awsvpc network mode: AssignPublicIp gives each task a public address",
    ),
    Rule(
        "load-balancer-internet-facing",
        "exposure",
        ("AWS::ElasticLoadBalancingV2::LoadBalancer",),
        became(_internet_facing),
        source='ELB User Guide, "Load balancer scheme"',
    ),
    # transport
    Rule(
        "cloudfront-plain-http",
        "transport",
        ("AWS::CloudFront::Distribution",),
        became(_plain_http_viewers),
        ("CKV_AWS_34",),
    ),
    Rule(
        "cloudfront-old-tls",
        "transport",
        ("AWS::CloudFront::Distribution",),
        became(_old_cloudfront_tls),
        ("CKV_AWS_174",),
    ),
    Rule(
        "alb-weak-tls-policy",
        "transport",
        ("AWS::ElasticLoadBalancingV2::Listener",),
        became(_weak_tls_policy),
        ("CKV_AWS_103",),
    ),
    Rule(
        "alb-plain-http",
        "transport",
        ("AWS::ElasticLoadBalancingV2::Listener",),
        became(_plain_http_listener),
        ("CKV_AWS_2", "CKV_AWS_103"),
    ),
    Rule(
        "tls-only-deny-removed",
        "transport",
        ("AWS::S3::BucketPolicy",),
        lost(_tls_only_deny),
        source='S3 User Guide, "Enforce encryption in transit" (aws:SecureTransport)',
    ),
    # encryption
    Rule(
        "storage-unencrypted",
        "encryption",
        ("AWS::RDS::DBCluster",),
        became(_unencrypted_storage),
        ("CKV_AWS_96",),
    ),
    Rule(
        "database-key-removed",
        "encryption",
        ("AWS::RDS::DBCluster",),
        lost(_has("KmsKeyId", "its KMS key")),
        source='Aurora User Guide, "Encrypting Amazon Aurora resources" (no KmsKeyId: the AWS managed key)',
    ),
    Rule(
        "bucket-encryption-removed",
        "encryption",
        ("AWS::S3::Bucket",),
        lost(_has("BucketEncryption", "bucket encryption")),
        source='S3 User Guide, "Setting default server-side encryption behavior"',
    ),
    Rule(
        "secret-key-removed",
        "encryption",
        ("AWS::SecretsManager::Secret",),
        lost(_has("KmsKeyId", "its KMS key (back to the AWS managed key)")),
        ("CKV_AWS_149",),
    ),
    Rule(
        "topic-key-removed",
        "encryption",
        ("AWS::SNS::Topic",),
        lost(_has("KmsMasterKeyId", "its KMS key")),
        ("CKV_AWS_26",),
    ),
    Rule(
        "log-group-key-removed",
        "encryption",
        ("AWS::Logs::LogGroup",),
        lost(_has("KmsKeyId", "its KMS key")),
        ("CKV_AWS_158",),
    ),
    Rule(
        "repository-key-removed",
        "encryption",
        ("AWS::ECR::Repository",),
        lost(_has("EncryptionConfiguration.KmsKey", "its KMS key")),
        ("CKV_AWS_136",),
    ),
    # data protection
    Rule(
        "database-deletion-protection-off",
        "data",
        ("AWS::RDS::DBCluster",),
        became(_no_deletion_protection),
        source='Aurora User Guide, "Deletion protection"',
    ),
    Rule(
        "alb-deletion-protection-off",
        "data",
        ("AWS::ElasticLoadBalancingV2::LoadBalancer",),
        became(_alb_deletion_protection_off),
        source='ELB User Guide, "Deletion protection" (load balancer attributes)',
    ),
    Rule(
        "deletion-policy-lost",
        "data",
        (
            "AWS::RDS::DBCluster",
            "AWS::S3::Bucket",
            "AWS::Logs::LogGroup",
            "AWS::ECR::Repository",
            "AWS::KMS::Key",
            "AWS::SecretsManager::Secret",
        ),
        lost(_policy_of("DeletionPolicy")),
        source="CloudFormation User Guide, DeletionPolicy attribute: Delete removes the data with the stack",
    ),
    Rule(
        "update-replace-policy-lost",
        "data",
        (
            "AWS::RDS::DBCluster",
            "AWS::S3::Bucket",
            "AWS::Logs::LogGroup",
            "AWS::ECR::Repository",
            "AWS::KMS::Key",
        ),
        lost(_policy_of("UpdateReplacePolicy")),
        source="CloudFormation User Guide, UpdateReplacePolicy attribute",
    ),
    Rule(
        "backups-shorter",
        "data",
        ("AWS::RDS::DBCluster",),
        shorter("BackupRetentionPeriod", "BackupRetentionPeriod"),
        source='Aurora User Guide, "Backup retention period" (point-in-time restore reaches back this far)',
    ),
    Rule(
        "versioning-suspended", "data", ("AWS::S3::Bucket",), became(_versioning_suspended), ("CKV_AWS_21",)
    ),
    Rule(
        "log-retention-shorter",
        "data",
        ("AWS::Logs::LogGroup",),
        shorter("RetentionInDays", "RetentionInDays"),
        source='CloudWatch Logs User Guide, "Change log data retention"',
    ),
    # audit
    Rule(
        "flow-logs-removed",
        "audit",
        ("AWS::EC2::FlowLog",),
        _removed("VPC flow log"),
        source='VPC User Guide, "Logging IP traffic using VPC Flow Logs"',
    ),
    Rule(
        "bucket-access-logs-removed",
        "audit",
        ("AWS::S3::Bucket",),
        lost(_has("LoggingConfiguration", "server access logging")),
        ("CKV_AWS_18",),
    ),
    Rule(
        "alb-access-logs-off",
        "audit",
        ("AWS::ElasticLoadBalancingV2::LoadBalancer",),
        became(_alb_access_logs_off),
        ("CKV_AWS_91",),
    ),
    Rule(
        "cloudfront-logs-removed",
        "audit",
        ("AWS::CloudFront::Distribution",),
        lost(_has("DistributionConfig.Logging", "standard logging")),
        ("CKV_AWS_86",),
    ),
    Rule(
        "database-log-exports-off",
        "audit",
        ("AWS::RDS::DBCluster",),
        lost(_has("EnableCloudwatchLogsExports", "log exports")),
        source='Aurora User Guide, "Publishing Aurora PostgreSQL logs to Amazon CloudWatch Logs"',
    ),
    Rule(
        "alarm-removed",
        "audit",
        ("AWS::CloudWatch::Alarm",),
        _removed("alarm"),
        source='CloudWatch User Guide, "Using Amazon CloudWatch alarms"',
    ),
    Rule(
        "alarm-actions-dropped",
        "audit",
        ("AWS::CloudWatch::Alarm",),
        lost(_alarm_actions),
        source='CloudWatch User Guide, "Alarm actions": an alarm without actions notifies no one',
    ),
)


def widenings(old: dict[str, Resource], new: dict[str, Resource]) -> list[Widening]:
    """Every widening between two templates' Resources, by logical ID and rule."""
    found = []
    for logical_id in sorted(set(old) | set(new)):
        a, b = old.get(logical_id), new.get(logical_id)
        type_ = str((b or a or {}).get("Type", ""))
        for rule in RULES:
            if type_ in rule.types:
                reason = rule.judge(a if a is None or a.get("Type") == type_ else None, b)
                if reason:
                    found.append(Widening(rule.category, rule.id, logical_id, type_, reason))
    return found
