"""The typed schema of the merged variables (vars/defaults.yaml + vars/<env>.yaml).

Every field is documented here (the JSON Schema in vars/schema.json is exported from these models,
so editors show the same text). Every check raises ValueError with a message that says what is
wrong and what is allowed; ``config`` adds the file and key path.
"""

import ipaddress
import json
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# --- reusable value types -------------------------------------------------------------------

_HOSTNAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CERT_ARN = re.compile(
    r"^arn:aws:acm:(?P<region>[a-z]{2}(-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"certificate/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
# What CloudFormation accepts in a tag value: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$, up to 256
# characters: Unicode letters, separators (spaces) and numbers, and _ . : / = + - @.
_TAG_VALUE_SYMBOLS = frozenset("_.:/=+-@")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]{1,1783}$")  # printable ASCII; CloudFront caps CSP at 1,783

# CloudWatch Logs accepts only these retention values (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)

# Fargate (Linux) task sizes: cpu units -> allowed memory (MiB). AWS ECS user guide,
# "Task CPU and memory".
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

STANDARD_TAGS = ("Environment", "Application", "CostCenter", "Owner", "ManagedBy", "Project")


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError(f"{value!r} is not a domain name (allowed: lower-case DNS name like "
                         "app.example.com, labels of letters, digits and hyphens)")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address (allowed: name@example.com)")
    return value


def _cert_arn(value: str) -> str:
    if not _CERT_ARN.match(value):
        raise ValueError(f"{value!r} is not an ACM certificate ARN (allowed: "
                         "arn:aws:acm:<region>:<12-digit account>:certificate/<uuid>)")
    return value


def _tag_value(value: str) -> str:
    bad = [c for c in value if c not in _TAG_VALUE_SYMBOLS and unicodedata.category(c)[0] not in "LZN"]
    if bad or len(value) > 256:
        what = f"character {bad[0]!r}" if bad else f"{len(value)} characters"
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError(f"{shown!r} is not a valid tag value: {what} (allowed: up to 256 letters, "
                         "digits, spaces and _ . : / = + - @; no newlines or tabs)")
    return value


def _acu(value: float) -> float:
    if not 0.5 <= value <= 256 or (value * 2) != int(value * 2):
        raise ValueError(f"{value:g} ACU is not allowed (allowed: 0.5 to 256 in steps of 0.5)")
    return value


def _tag_key(value: str) -> str:
    if not re.match(r"^[A-Za-z][A-Za-z0-9_.:/=+@-]{0,127}$", value) or value.startswith("aws:"):
        raise ValueError(f"{value!r} is not a tag key (allowed: up to 128 letters, digits and "
                         "_ . : / = + - @, not starting with aws:)")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]
TagKey = Annotated[str, AfterValidator(_tag_key)]
TagValue = Annotated[str, AfterValidator(_tag_value)]
Email = Annotated[str, AfterValidator(_email)]
CertificateArn = Annotated[str, AfterValidator(_cert_arn)]
Acu = Annotated[float, AfterValidator(_acu)]


class _Model(BaseModel):
    # strict: "512" is not 512 and "yes" is not true; forbid: an unknown key is an error.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# --- sections ---------------------------------------------------------------------------------


class Network(_Model):
    vpc_cidr: str = Field(description="IPv4 CIDR of the VPC, a private range, /16 to /24. Split at "
                          "render time into 2 public and 2 private subnets of a quarter each.")
    nat_gateways: Literal[1, 2] = Field(description="NAT gateways: 2 (one per AZ) for resilience, "
                                        "1 to save cost where an AZ outage may cut egress (dev).")

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 network in CIDR form (allowed: e.g. "
                             "10.0.0.0/16, host bits zero)") from None
        if not net.is_private or not 16 <= net.prefixlen <= 24:
            raise ValueError(f"{value} is not allowed (allowed: a private range, 10/8, 172.16/12 "
                             "or 192.168/16, with a prefix from /16 to /24)")
        return value


class Database(_Model):
    engine_version: str = Field(pattern=r"^1[5-9]\.\d{1,2}$", description="Aurora PostgreSQL "
                                "engine version, major 15 or newer (e.g. 17.7).")
    min_acu: Acu = Field(description="Aurora Serverless v2 minimum capacity (ACU).")
    max_acu: Acu = Field(description="Aurora Serverless v2 maximum capacity (ACU), >= min_acu.")
    instances: Literal[2] = Field(description="A writer and a reader in the other AZ, in every "
                                  "environment: the database must span two availability zones "
                                  "(correctness property 5). A single instance is refused.")
    backup_retention_days: int = Field(ge=7, le=35, description="Automated backup retention "
                                       "(days), 7 to 35; point-in-time recovery covers it.")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Initial database name.")
    master_username: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$",
                                 description="Master user name (the password is generated).")
    app_username: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$", description="The API's own "
                              "database user (rotation alternates it with <name>_clone).")
    rotation_days: int = Field(ge=1, le=365, description="Secret rotation interval (days).")

    @field_validator("max_acu")
    @classmethod
    def _max_ge_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_acu")
        if low is not None and value < low:
            raise ValueError(f"max_acu {value} is below min_acu {low} (allowed: max_acu >= min_acu)")
        return value


class HealthCheck(_Model):
    path: str = Field(pattern=r"^/[A-Za-z0-9/._-]{0,1023}$", description="Target health check path.")
    interval_seconds: int = Field(ge=5, le=300)
    timeout_seconds: int = Field(ge=2, le=120)
    healthy_threshold: int = Field(ge=2, le=10)
    unhealthy_threshold: int = Field(ge=2, le=10)

    @field_validator("timeout_seconds")
    @classmethod
    def _timeout_below_interval(cls, value: int, info: ValidationInfo) -> int:
        interval = info.data.get("interval_seconds")
        if interval is not None and value >= interval:
            raise ValueError(f"timeout {value}s is not below the interval {interval}s "
                             "(allowed: timeout_seconds < interval_seconds)")
        return value


class Api(_Model):
    cpu: int = Field(description="Fargate task CPU units; with memory, a pair Fargate offers.")
    memory: int = Field(description="Fargate task memory (MiB).")
    min_tasks: int = Field(ge=1, le=100)
    max_tasks: int = Field(ge=1, le=100)
    container_port: int = Field(ge=1024, le=65535, description="Port the container listens on "
                                "(HTTPS from the ALB). Unprivileged (1024 or above): the "
                                "container runs as a non-root user, which cannot bind below 1024.")
    health_check: HealthCheck
    cpu_target_percent: int = Field(ge=10, le=95, description="Auto scaling CPU target.")
    memory_target_percent: int = Field(ge=10, le=95, description="Auto scaling memory target.")
    domain: Hostname = Field(description="The API's public name (also the CSP connect-src).")
    certificate_arn: CertificateArn = Field(description="ACM certificate for the ALB, in the "
                                            "environment's region.")

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int) -> int:
        if value not in FARGATE_MEMORY:
            raise ValueError(f"{value} CPU units is not a Fargate size (allowed: "
                             f"{', '.join(map(str, FARGATE_MEMORY))})")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int, info: ValidationInfo) -> int:
        cpu = info.data.get("cpu")
        if cpu in FARGATE_MEMORY and value not in FARGATE_MEMORY[cpu]:
            allowed = FARGATE_MEMORY[cpu]
            shown = (", ".join(map(str, allowed)) if len(allowed) <= 4
                     else f"{allowed[0]} to {allowed[-1]} in steps of {allowed[1] - allowed[0]}")
            raise ValueError(f"{value} MiB with {cpu} CPU units is not a Fargate pair "
                             f"(allowed with {cpu}: {shown})")
        return value

    @field_validator("max_tasks")
    @classmethod
    def _max_ge_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_tasks")
        if low is not None and value < low:
            raise ValueError(f"max_tasks {value} is below min_tasks {low} "
                             "(allowed: max_tasks >= min_tasks)")
        return value


class CacheTtls(_Model):
    # At least 1 s: a cache policy whose TTLs are all 0 disables caching, and CloudFront then
    # rejects the gzip/brotli settings every policy here carries.
    html_seconds: int = Field(ge=1, le=31536000, description="*.html (5 minutes by default).")
    assets_seconds: int = Field(ge=1, le=31536000, description="Content-hashed *.js, *.css, "
                                "images and fonts (1 year by default).")
    default_seconds: int = Field(ge=1, le=31536000, description="Everything else (1 hour).")
    error_seconds: int = Field(ge=0, le=31536000, description="How long CloudFront caches 5xx "
                               "errors (10 s).")


class Frontend(_Model):
    domain: Hostname = Field(description="The site's name, the CloudFront alias.")
    certificate_arn: CertificateArn = Field(description="ACM certificate for CloudFront; must be "
                                            "in us-east-1.")
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"]
    cache: CacheTtls
    security_headers: dict[str, str] = Field(description="Response headers the edge function sets "
                                             "(canonical name -> value), CSP excepted.")
    content_security_policy: dict[str, list[str]] = Field(description="CSP directives -> sources. "
                                                          "connect-src gets the API origin "
                                                          "appended at render time.")
    csp_report_only: bool = Field(description="Send the CSP as Content-Security-Policy-Report-Only.")

    @field_validator("certificate_arn")
    @classmethod
    def _us_east_1(cls, value: str) -> str:
        match = _CERT_ARN.match(value)
        if match and match["region"] != "us-east-1":
            raise ValueError(f"certificate is in {match['region']} (allowed: us-east-1 only; "
                             "CloudFront reads certificates from us-east-1)")
        return value

    @field_validator("security_headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.match(r"^[A-Z][A-Za-z0-9]*(-[A-Za-z0-9]+)*$", name):
                raise ValueError(f"{name!r} is not a header name (allowed: Canonical-Case-Name)")
            if name.lower().startswith("content-security-policy"):
                raise ValueError(f"{name} belongs in content_security_policy (allowed here: "
                                 "other headers)")
            if not _HEADER_VALUE.match(text):
                raise ValueError(f"{name} value {text!r} is not allowed (allowed: 1 to 1,783 "
                                 "printable ASCII characters)")
        return value

    @field_validator("content_security_policy")
    @classmethod
    def _csp(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for directive, sources in value.items():
            if not re.match(r"^[a-z]+(-[a-z]+)*$", directive):
                raise ValueError(f"{directive!r} is not a CSP directive name (allowed: "
                                 "lower-case words joined by hyphens)")
            for source in sources:
                if not re.match(r"^[\x21-\x7e]+$", source) or any(c in source for c in ";,"):
                    raise ValueError(f"{directive} source {source!r} is not allowed (allowed: "
                                     "one token of printable ASCII without ; or ,)")
        return value


class AlarmWindow(_Model):
    """When an alarm fires: every one of evaluation_periods consecutive periods breaches."""

    period_seconds: int = Field(ge=60, le=86400, multiple_of=60, description="Length of one "
                                "period (s): whole minutes, standard-resolution metrics.")
    evaluation_periods: int = Field(ge=1, le=1440, description="Consecutive breaching periods "
                                    "before the alarm fires (period x count <= 1 day).")
    severity: Literal["critical", "warning"] = Field(description="critical goes to the critical "
                                                     "topic where this environment has one "
                                                     "(monitoring.critical_topic); everything "
                                                     "else, and critical elsewhere, to the "
                                                     "warning topic.")

    @field_validator("evaluation_periods")
    @classmethod
    def _within_a_day(cls, value: int, info: ValidationInfo) -> int:
        period = info.data.get("period_seconds")
        if period is not None and period * value > 86400:
            raise ValueError(f"{value} periods of {period} s span more than a day (allowed: "
                             "period_seconds x evaluation_periods <= 86400)")
        return value


class ThresholdAlarm(AlarmWindow):
    threshold: float = Field(ge=0, description="The value the statistic must exceed (unit: "
                             "see the alarm).")


class Alarms(_Model):
    """Thresholds and windows of the alarms. Their values live in vars/defaults.yaml (the
    design's numbers), the one place they are written; an environment overrides any of them."""

    api_latency_p95: ThresholdAlarm = Field(description="ALB TargetResponseTime p95 above threshold seconds.")
    api_error_rate: ThresholdAlarm = Field(
        description="Target 5xx as a percentage of requests above threshold.")
    api_running_tasks: AlarmWindow = Field(
        description="Running tasks below api.min_tasks (the threshold comes from there).")
    api_healthy_targets: AlarmWindow = Field(description="No healthy target behind the load balancer.")
    database_connection_failures: ThresholdAlarm = Field(
        description="Failed connection attempts in the PostgreSQL log: more than threshold per period.")
    database_acu_utilization: ThresholdAlarm = Field(
        description="Aurora ACUUtilization above threshold percent (5 periods of 1 minute: for 5 minutes).")
    cloudfront_5xx_error_rate: ThresholdAlarm = Field(
        description="CloudFront 5xxErrorRate above threshold percent.")
    edge_function_errors: ThresholdAlarm = Field(
        description="Lambda@Edge Errors (executions served from us-east-1) above threshold per period.")


class Monitoring(_Model):
    log_retention_days: int = Field(description="Retention of every log group (days), one of "
                                    "CloudWatch's allowed values.")
    alarm_emails: list[Email] = Field(description="E-mail addresses subscribed to the warning "
                                      "topic (every alarm outside production, warnings in it).")
    critical_topic: bool = Field(default=False, description="This environment has a critical "
                                 "topic (production): alarms of severity critical go there.")
    critical_alarm_emails: list[Email] = Field(default_factory=list, description="E-mail "
                                               "addresses subscribed to the critical topic; "
                                               "required with critical_topic, empty without.")
    cloudfront_additional_metrics: bool = Field(default=True, description="Turn on CloudFront's "
                                                "additional metrics (cache hit rate, origin "
                                                "latency, per-status error rates): billed as "
                                                "up to 8 custom metrics per distribution.")
    alarms: Alarms = Field(description="Alarm thresholds and windows (their values: vars/defaults.yaml).")

    @field_validator("critical_alarm_emails")
    @classmethod
    def _critical_emails(cls, value: list[str], info: ValidationInfo) -> list[str]:
        has_topic = info.data.get("critical_topic")
        if has_topic and not value:
            raise ValueError("is empty while critical_topic is true (allowed: at least one "
                             "address, or critical_topic: false)")
        if has_topic is False and value:
            raise ValueError("lists addresses while critical_topic is false, so nobody would "
                             "use them (allowed: [] or critical_topic: true)")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} days is not a CloudWatch Logs retention (allowed: "
                             f"{', '.join(map(str, LOG_RETENTION_DAYS))})")
        return value


class Dns(_Model):
    hosted_zone_id: str | None = Field(default=None, pattern=r"^Z[A-Z0-9]{1,31}$",
                                       description="Route 53 public hosted zone holding both "
                                       "domains: the stacks create alias records (A and AAAA to "
                                       "CloudFront, A to the load balancer). null: no records; "
                                       "the stacks' outputs name the records to create at your "
                                       "DNS provider.")


class Deploy(_Model):
    github_repository: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$",
                                   description="owner/name of the GitHub repository whose deploy "
                                   "workflow may assume the environment's deploy role (GitHub OIDC; "
                                   "bootstrap/<account>.yaml).")


class Config(_Model):
    """The merged variables of one environment."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True,
                              json_schema_extra={"title": "tracker-infra environment variables"})

    environment: str = Field(pattern=r"^[a-z][a-z0-9]{1,15}$", description="Environment name; "
                             "must equal the file name (vars/<environment>.yaml).")
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{1,19}$", description="Short name used in "
                         "stack and resource names: <project>-<environment>[-edge].")
    description: str = Field(max_length=800, description="Free text for the stacks' Description.")
    account: str = Field(pattern=r"^\d{12}$", description="AWS account id (12 digits, quoted).")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="Region of the regional "
                        "stack (the edge stack is always in us-east-1).")
    lifecycle: Literal["disposable", "protected"] = Field(description="disposable: the "
                                                          "environment may be deleted with its "
                                                          "data (no deletion protection, resources "
                                                          "deleted with the stack, buckets emptied "
                                                          "on delete, render.py destroy allowed). "
                                                          "protected: deletion protection on, data "
                                                          "kept on stack deletion, destroy refused.")
    dns: Dns = Field(default_factory=Dns, description="Optional Route 53 records.")
    deploy: Deploy = Field(description="Who may deploy: the GitHub repository trusted by the "
                           "bootstrap roles <project>-<environment>-plan and -deploy.")
    network: Network
    database: Database
    api: Api
    frontend: Frontend
    monitoring: Monitoring
    tags: dict[TagKey, TagValue] = Field(description="Tags on every taggable resource and on both stacks; "
                                 "must hold the six standard keys.")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [key for key in STANDARD_TAGS if key not in value]
        if missing:
            raise ValueError(f"missing {', '.join(missing)} (allowed: a mapping holding at least "
                             f"{', '.join(STANDARD_TAGS)})")
        return value

    @property
    def stack_name(self) -> str:
        return f"{self.project}-{self.environment}"

    @property
    def edge_stack_name(self) -> str:
        return f"{self.stack_name}-edge"

    @property
    def protected(self) -> bool:
        """Deletion protection on, data kept when a stack is deleted (lifecycle: protected)."""
        return self.lifecycle == "protected"

    # The bootstrap stack's roles and boundary (bootstrap/<account>.yaml) live under their own IAM
    # path, outside `role/<project>-<environment>-*`, the names the stacks' own roles may take.
    @property
    def bootstrap_path(self) -> str:
        return f"/{self.project}-bootstrap/"

    def _bootstrap_arn(self, kind: str, suffix: str) -> str:
        return f"arn:aws:iam::{self.account}:{kind}{self.bootstrap_path}{self.stack_name}-{suffix}"

    def github_subject(self, github_environment: str) -> str:
        """The `sub` of GitHub's OIDC token for a job of this repository's main branch in that GitHub
        environment, with the repository's subject template set to include the ref (repo,
        context, ref: docs/deploying.md): an environment's default subject names no branch."""
        return f"repo:{self.deploy.github_repository}:environment:{github_environment}:ref:refs/heads/main"

    @property
    def plan_role_arn(self) -> str:
        """What the unapproved plan job assumes: change sets made and read, nothing executed."""
        return self._bootstrap_arn("role", "plan")

    @property
    def deploy_role_arn(self) -> str:
        """What the approved deploy job (and a person) assumes: executes change sets, passes the
        execution role, writes no IAM."""
        return self._bootstrap_arn("role", "deploy")

    @property
    def execution_role_arn(self) -> str:
        """The CloudFormation execution role (trusted by CloudFormation only): the resources' rights."""
        return self._bootstrap_arn("role", "cfn-exec")

    @property
    def boundary_arn(self) -> str:
        """The permissions boundary every role of the stacks carries."""
        return self._bootstrap_arn("policy", "boundary")

    @property
    def artifact_bucket(self) -> str:
        """The bucket `sam deploy` uploads templates and code to (created by the account's
        bootstrap stack in us-east-1, the edge stack's region: Lambda reads code only from its own
        region, CloudFormation reads templates from any commercial region)."""
        return f"{self.project}-artifacts-{self.account}"


def cross_checks(cfg: Config) -> list[tuple[str, str]]:
    """Rules that relate two sections: (key path, problem) for each one broken."""
    problems = []
    if cfg.tags["Environment"] != cfg.environment:
        problems.append(("tags.Environment", f"is {cfg.tags['Environment']!r} (allowed: the "
                         f"environment name, {cfg.environment!r})"))
    for path, arn, region in (("api.certificate_arn", cfg.api.certificate_arn, cfg.region),
                              ("frontend.certificate_arn", cfg.frontend.certificate_arn, None)):
        match = _CERT_ARN.match(arn)
        assert match  # the field validator has checked the shape
        if region and match["region"] != region:
            problems.append((path, f"certificate is in {match['region']} (allowed: the "
                             f"environment's region, {region})"))
        if match["account"] != cfg.account:
            problems.append((path, f"certificate belongs to account {match['account']} "
                             f"(allowed: the environment's account, {cfg.account})"))
    return problems


def json_schema() -> str:
    """The JSON Schema of a merged vars file (vars/schema.json), for editors."""
    schema = Config.model_json_schema()
    # Each file holds part of the variables, so no key is required in any one file; render.py
    # checks that the merged result holds them all.
    for model in [schema, *schema["$defs"].values()]:
        model.pop("required", None)
    schema["$comment"] = ("Generated from tracker_infra/schema.py by `python render.py --all`. "
                          "Describes vars/defaults.yaml and vars/<env>.yaml; keys are optional in "
                          "each file but required once merged.")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
