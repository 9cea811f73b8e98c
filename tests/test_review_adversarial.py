"""render.py diff against an adversarial table: one-line-ish edits to partials/, vars/, edge/ and the
bootstrap's sources, written as an attacker or a careless colleague would write them, each in the
throwaway git repository of tracker_infra/review/example.checkout. Each row says what the review
must make of its edit:

- WIDENS: a line in the report's head naming the stack and resource and what it now allows; the
  gate --fail-on-broadening exits EXIT_BROADENING for a security widening, --fail-on-replace
  EXIT_REPLACE for data at risk;
- NOT JUDGED: a line in the head naming the resource and the property no rule judges;
  --fail-on-unjudged exits EXIT_UNJUDGED (tracker_infra/errors.py);
- clean (a tightening or a neutral edit): no alarm at all, and exit 0 under every gate.

Each gate is run on its own, for production (its account's bootstrap file included), before and
after `render.py --all`, in the runtime and the dev install: the twelve reports must be one text.

Rows are reviewed in batches, one checkout state per batch: rows that expect the same exit under
every gate, touch different resources and edit different lines, so that each report line belongs to
one row and the batch's exit codes are each row's."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.review_checkout import alarms, reset, run
from tracker_infra import errors
from tracker_infra.review import example

Edit = example.Edit
REPLACE, BROADENING, UNJUDGED = "--fail-on-replace", "--fail-on-broadening", "--fail-on-unjudged"
GATES = (REPLACE, BROADENING, UNJUDGED)
WIDENS, NOT_JUDGED, CLEAN = "WIDENS", "NOT JUDGED", ""
BOOTSTRAP = "bootstrap/333333333333.yaml"  # production's account has no other environment
# The head's sections: the title line of each kind of flagged line.
TITLES = {WIDENS: r"change\(s\) (widen security|loosen data protection)", NOT_JUDGED: r"that no rule judges"}
BATCH = 10


@dataclass(frozen=True)
class Row:
    name: str
    edits: tuple[Edit, ...]
    kind: str  # WIDENS, NOT_JUDGED or CLEAN
    where: str = ""  # "<stack> <logical ID pattern>": the resource the line names
    says: tuple[str, ...] = ()  # what the line says it now allows (or the property), any case
    security: bool = False  # a security widening: --fail-on-broadening fails
    data: bool = False  # data at risk: --fail-on-replace fails

    def exits(self) -> dict[str, int | None]:
        return {
            REPLACE: errors.EXIT_REPLACE if self.data else 0,
            BROADENING: errors.EXIT_BROADENING if self.security else 0,
            UNJUDGED: getattr(errors, "EXIT_UNJUDGED", None) if self.kind == NOT_JUDGED else 0,
        }

    @property
    def signature(self) -> tuple[bool, bool, str]:
        return self.security, self.data, self.kind

    @property
    def lines(self) -> set[tuple[str, str]]:
        return {(path, line) for path, old, _ in self.edits for line in old.splitlines() if line.strip()}


def _where(where: str) -> str:
    stack, resource = where.split(" ", 1)
    return f"{stack if '/' in stack else 'production/' + stack} {resource}"


def widens(name: str, edits: Edit | tuple[Edit, ...], where: str, *says: str, data: bool = False) -> Row:
    edits = edits if isinstance(edits[0], tuple) else (edits,)  # type: ignore[assignment]
    return Row(name, edits, WIDENS, _where(where), says, security=True, data=data)  # type: ignore[arg-type]


def loosens(name: str, edit: Edit, where: str, *says: str) -> Row:
    """Data protection loosened: --fail-on-replace's, not --fail-on-broadening's."""
    return Row(name, (edit,), WIDENS, _where(where), says, data=True)


def unjudged(name: str, edit: Edit, where: str, prop: str) -> Row:
    return Row(name, (edit,), NOT_JUDGED, _where(where), (prop,))


def clean(name: str, edit: Edit) -> Row:
    return Row(name, (edit,), CLEAN)


ROLES, SERVICE, NETWORK = (
    "partials/api_roles.yaml.j2",
    "partials/api_service.yaml.j2",
    "partials/network.yaml.j2",
)
FRONTEND, KMS, DATABASE = "partials/frontend.yaml.j2", "partials/kms.yaml.j2", "partials/database.yaml.j2"
MONITORING, IMAGE = "partials/monitoring.yaml.j2", "partials/api_image.yaml.j2"
DEFAULTS, PRODUCTION, BOOT = "vars/defaults.yaml", "vars/production.yaml", "tracker_infra/bootstrap.py"
TASK_ROLE = '      {{ m.boundary() }}\n      Description: {{ ("The API application of "'
SITE_READ_ARN = (
    '                AWS:SourceArn: !Sub "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:'
    'distribution/${Distribution}"'
)
LOG_BUCKET_DENY = (
    '          - Sid: DenyRequestsWithoutTls\n            Effect: Deny\n            Principal: "*"\n'
    '            Action: "s3:*"\n            Resource:\n              - !GetAtt DistributionLogBucket.Arn\n'
    '              - !Sub "${DistributionLogBucket.Arn}/*"\n            Condition:\n              Bool:\n'
    '                aws:SecureTransport: "false"\n'
)
EXECUTION_KMS = (
    "                Resource: !GetAtt StackKey.Arn\n                Condition:\n                  StringEqu"
    "als:\n"
    '                    kms:ViaService: !Sub "secretsmanager.${AWS::Region}.amazonaws.com"\n'
    "      {{ m.tags(6) }}\n\n  # The application"
)
GITHUB_TRUST = (
    "              StringEquals:\n                token.actions.githubusercontent.com:aud: sts.amazonaws.com"
    "\n"
    "                token.actions.githubusercontent.com:sub: {{ cfg.github_subject(github_environment) | ya"
    "ml }}"
)
PLAN_ROLE = '    return [Statement("Stacks", _compact(PLAN_STACK_CALLS), scope.stacks),\n'
NO_MATCH_EGRESS = (
    "      SecurityGroupEgress:\n        # No egress: a rule that matches nothing replaces the default "
    "allow-all.\n        - Description: Disallow all traffic\n          IpProtocol: icmp\n"
    "          FromPort: 252\n          ToPort: 86\n          CidrIp: 255.255.255.255/32\n"
)

POLICIES = [
    widens(
        "AdministratorAccess on the task role",
        (
            ROLES,
            TASK_ROLE,
            "      ManagedPolicyArns:\n        - arn:aws:iam::aws:policy/AdministratorAccess\n" + TASK_ROLE,
        ),
        "app.yaml ApiTaskRole",
        "AdministratorAccess",
    ),
    widens(
        "S3 full access on the edge function's role",
        (
            "partials/edge_function.yaml.j2",
            '      Description: {{ ("Runs " ~ function_name',
            "      ManagedPolicyArns:\n        - arn:aws:iam::aws:policy/AmazonS3FullAccess\n"
            '      Description: {{ ("Runs " ~ function_name',
        ),
        "edge.yaml SecurityHeadersFunctionRole",
        "AmazonS3FullAccess",
    ),
    widens(
        "site bucket readable by anyone",
        (
            FRONTEND,
            "            Principal:\n              Service: cloudfront.amazonaws.com\n            Action: s3"
            ":GetObject",
            '            Principal: "*"\n            Action: s3:GetObject',
        ),
        "edge.yaml SiteBucketPolicy",
        "principal",
        "*",
    ),
    widens(
        "site read condition StringEquals -> StringLike with a wildcard",
        (
            FRONTEND,
            "              StringEquals:\n" + SITE_READ_ARN,
            "              StringLike:\n" + SITE_READ_ARN.replace("${Distribution}", "*"),
        ),
        "edge.yaml SiteBucketPolicy",
        "condition loosened",
        "StringLike",
    ),
    widens(
        "site bucket's TLS deny narrowed to writes",
        (
            FRONTEND,
            '            Action: "s3:*"\n            Resource:\n              - !GetAtt SiteBucket.Arn',
            '            Action: "s3:PutObject"\n            Resource:\n              - !GetAtt SiteBucket.A'
            "rn",
        ),
        "edge.yaml SiteBucketPolicy",
        "deny narrowed",
    ),
    widens(
        "log bucket's TLS deny removed",
        (FRONTEND, LOG_BUCKET_DENY, ""),
        "edge.yaml DistributionLogBucketPolicy",
        "deny removed",
    ),
    widens(
        "alarm topics publishable by anyone",
        (
            MONITORING,
            "            Principal:\n              Service: cloudwatch.amazonaws.com\n            Action: sn"
            "s:Publish",
            '            Principal:\n              AWS: "*"\n            Action: sns:Publish',
        ),
        "app.yaml AlarmWarningTopicPolicy",
        "principal",
    ),
    widens(
        "alarm topics' source account condition removed",
        (
            MONITORING,
            "            Condition:\n              StringEquals:\n                aws:SourceAccount: !Ref AW"
            "S::AccountId\n"
            "              ArnLike:",
            "            Condition:\n              ArnLike:",
        ),
        "app.yaml AlarmWarningTopicPolicy",
        "condition removed",
        "aws:SourceAccount",
    ),
    widens(
        "key policy administered by anyone",
        (
            KMS,
            '              AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"',
            '              AWS: "*"',
        ),
        "app.yaml StackKey",
        "principal",
    ),
    widens(
        "key policy's log-group condition removed",
        (
            KMS,
            '            Resource: "*"\n            Condition:\n              ArnLike:\n                kms:'
            "EncryptionContext:aws:logs:arn: "
            '!Sub "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"\n',
            '            Resource: "*"\n',
        ),
        "app.yaml StackKey",
        "condition removed",
        "kms:EncryptionContext:aws:logs:arn",
    ),
    widens(
        "repository policy: pull from anywhere",
        (
            IMAGE,
            "      LifecyclePolicy:\n",
            '      RepositoryPolicyText:\n        Version: "2012-10-17"\n        Statement:\n          - Sid'
            ": PullFromAnywhere\n"
            '            Effect: Allow\n            Principal: "*"\n            Action:\n              - ecr'
            ":BatchGetImage\n"
            "              - ecr:GetDownloadUrlForLayer\n      LifecyclePolicy:\n",
        ),
        "app.yaml ApiRepository",
        "ecr:BatchGetImage",
    ),
    widens(
        "execution role assumable by anyone",
        (
            ROLES,
            "            Principal:\n              Service: ecs-tasks.amazonaws.com",
            '            Principal:\n              AWS: "*"',
        ),
        "app.yaml ApiTaskExecutionRole",
        "principal",
    ),
    widens(
        "task role's trust: source ARN condition removed",
        (
            ROLES,
            '              ArnLike:\n                aws:SourceArn: !Sub "arn:${AWS::Partition}:ecs:${AWS::R'
            "egion}:"
            '${AWS::AccountId}:*"\n',
            "",
        ),
        "app.yaml ApiTaskRole",
        "condition removed",
        "aws:SourceArn",
    ),
    widens(
        "rotation permission's source dropped",
        (DATABASE, "      SourceArn: !Ref {{ secret | logical_id }}\n", ""),
        "app.yaml DatabaseSecretRotationPermission",
        "condition removed",
        "SourceArn",
        data=True,
    ),  # a permission's properties are create-only, its function fixed: the update is refused
    widens(
        "task role's permissions boundary removed",
        (ROLES, TASK_ROLE, TASK_ROLE.split("\n")[1]),
        "app.yaml ApiTaskRole",
        "permissions boundary removed",
    ),
    widens(
        "every Secrets Manager action for the execution role",
        (
            ROLES,
            "                Action: secretsmanager:GetSecretValue\n",
            "                Action: secretsmanager:*\n",
        ),
        "app.yaml ApiTaskExecutionRole",
        "secretsmanager:*",
    ),
    widens(
        "execution role writes every log group",
        (ROLES, "                Resource: !GetAtt ApiLogGroup.Arn", '                Resource: "*"'),
        "app.yaml ApiTaskExecutionRole",
        "resource *",
    ),
    widens(
        "execution role decrypts outside Secrets Manager",
        (
            ROLES,
            EXECUTION_KMS,
            "                Resource: !GetAtt StackKey.Arn\n      {{ m.tags(6) }}\n\n  # The application",
        ),
        "app.yaml ApiTaskExecutionRole",
        "condition removed",
        "kms:ViaService",
    ),
]

NETWORKS = [
    widens(
        "database's match-nothing egress removed",
        (NETWORK, NO_MATCH_EGRESS, ""),
        "app.yaml DatabaseSecurityGroup",
        "egress",
        "0.0.0.0/0",
        "default allow-all",
    ),
    widens(
        "database open to the internet",
        (
            NETWORK,
            "      GroupId: !Ref DatabaseSecurityGroup\n      SourceSecurityGroupId: !Ref ApiSecurityGroup",
            "      GroupId: !Ref DatabaseSecurityGroup\n      CidrIp: 0.0.0.0/0",
        ),
        "app.yaml DatabaseSecurityGroup",
        "ingress",
        "5432",
        "open to the internet",
    ),
    widens(
        "database port range widened",
        (
            NETWORK,
            "      FromPort: 5432\n      ToPort: 5432\n{% endmacro %}",
            "      FromPort: 0\n      ToPort: 65535\n{% endmacro %}",
        ),
        "app.yaml DatabaseSecurityGroup",
        "ingress",
        "0-65535",
    ),
    widens(
        "load balancer's HTTPS rule widened to every port",
        (
            NETWORK,
            "          FromPort: 443\n          ToPort: 443\n          CidrIp: 0.0.0.0/0",
            "          FromPort: 0\n          ToPort: 65535\n          CidrIp: 0.0.0.0/0",
        ),
        "app.yaml AlbSecurityGroup",
        "ingress",
        "0-65535",
        "open to the internet",
    ),
    widens(
        "load balancer's egress to the tasks: all protocols",
        (
            NETWORK,
            "        - Description: HTTPS to the API tasks\n          IpProtocol: tcp",
            '        - Description: HTTPS to the API tasks\n          IpProtocol: "-1"',
        ),
        "app.yaml AlbSecurityGroup",
        "egress",
        "all traffic",
    ),
    widens(
        "tasks' egress: all protocols",
        (
            NETWORK,
            "        - Description: HTTPS out through NAT (ECR, Secrets Manager, CloudWatch Logs)\n         "
            " IpProtocol: tcp",
            "        - Description: HTTPS out through NAT (ECR, Secrets Manager, CloudWatch Logs)\n         "
            ' IpProtocol: "-1"',
        ),
        "app.yaml ApiSecurityGroup",
        "egress",
        "all traffic",
    ),
    widens(
        "SSH from a bastion's group ID, written out",
        (
            NETWORK,
            "  ApiEgressToDatabase:\n",
            "  ApiIngressFromBastion:\n    Type: AWS::EC2::SecurityGroupIngress\n    Properties:\n"
            "      GroupId: !Ref ApiSecurityGroup\n      SourceSecurityGroupId: sg-0a1b2c3d4e5f67890\n"
            "      IpProtocol: tcp\n      FromPort: 22\n      ToPort: 22\n\n  ApiEgressToDatabase:\n",
        ),
        "app.yaml ApiSecurityGroup",
        "ingress",
        "sg-0a1b2c3d4e5f67890",
    ),
    widens(
        "load balancer's egress to the VPC's CIDR by reference, every port",
        (
            NETWORK,
            "          FromPort: {{ cfg.api.container_port | yaml }}\n          ToPort: {{ cfg.api.container"
            "_port | yaml }}\n"
            "          CidrIp: {{ cfg.network.vpc_cidr | yaml }}",
            "          FromPort: 0\n          ToPort: 65535\n          CidrIp: !GetAtt VPC.CidrBlock",
        ),
        "app.yaml AlbSecurityGroup",
        "egress",
        "VPC.CidrBlock",
    ),
    widens(
        "tasks reachable from the whole VPC",
        (
            NETWORK,
            "      GroupId: !Ref ApiSecurityGroup\n      SourceSecurityGroupId: !Ref AlbSecurityGroup",
            "      GroupId: !Ref ApiSecurityGroup\n      CidrIp: {{ cfg.network.vpc_cidr | yaml }}",
        ),
        "app.yaml ApiSecurityGroup",
        "ingress",
        "10.2.0.0/16",
    ),
]

CONTAINERS = [
    widens(
        "writable root file system",
        (SERVICE, "ReadonlyRootFilesystem: true", "ReadonlyRootFilesystem: false"),
        "app.yaml ApiTaskDefinition",
        "read-only root",
    ),
    widens(
        "privileged container",
        (SERVICE, "Privileged: false", "Privileged: true"),
        "app.yaml ApiTaskDefinition",
        "privileged",
    ),
    widens(
        "container runs as root",
        (SERVICE, '{% set container_user = "1000:1000" %}', '{% set container_user = "0:0" %}'),
        "app.yaml ApiTaskDefinition",
        "root",
    ),
    unjudged(
        "container gains SYS_ADMIN",
        (
            SERVICE,
            "          Privileged: false\n",
            "          Privileged: false\n          LinuxParameters:\n            Capabilities:\n           "
            "   Add: [SYS_ADMIN]\n",
        ),
        "app.yaml ApiTaskDefinition",
        "LinuxParameters",
    ),
    unjudged(
        "ECS Exec into the tasks",
        (
            SERVICE,
            "      EnableECSManagedTags: true\n",
            "      EnableECSManagedTags: true\n      EnableExecuteCommand: true\n",
        ),
        "app.yaml ApiService",
        "EnableExecuteCommand",
    ),
]

SECRETS = [
    widens(
        "a password in the container's plain environment",
        (
            SERVICE,
            "              Value: !Ref ApiDatabaseSecret\n",
            "              Value: !Ref ApiDatabaseSecret\n            - Name: ADMIN_PASSWORD\n              "
            'Value: "Tr4cker-prod!"\n',
        ),
        "app.yaml ApiTaskDefinition",
        "ADMIN_PASSWORD",
    ),
    widens(
        "the API user's password as an output",
        (
            SERVICE,
            "  ApiServiceName:\n",
            '  ApiDatabasePassword:\n    Description: For the load test\n    Value: !Sub "{% raw %}{{resolve'
            ":secretsmanager:"
            '${ApiDatabaseSecret}:SecretString:password}}{% endraw %}"\n\n  ApiServiceName:\n',
        ),
        "app.yaml ApiDatabasePassword",
        "secret",
    ),
    widens(
        "a password in the rotation function's environment",
        (
            DATABASE,
            "          CLUSTER_ARN: !GetAtt DatabaseCluster.DBClusterArn\n",
            '          CLUSTER_ARN: !GetAtt DatabaseCluster.DBClusterArn\n          MASTER_PASSWORD: "ch4nge'
            'me-now"\n',
        ),
        "app.yaml DatabaseRotationFunction",
        "MASTER_PASSWORD",
    ),
]

LOGGING = [
    loosens(
        "log retention cut to three days",
        (PRODUCTION, "log_retention_days: 90", "log_retention_days: 3"),
        "app.yaml ApiLogGroup",
        "RetentionInDays",
    ),
    widens(
        "load balancer access logs off",
        (
            "partials/api_load_balancer.yaml.j2",
            "          Value: {{ keep | string | lower | yaml }}",
            '          Value: "false"',
        ),
        "app.yaml ApiLoadBalancer",
        "access log",
    ),
    widens(
        "alarms notify no one",
        ("partials/macros.yaml.j2", "      AlarmActions:\n        - !Ref {{ topic | logical_id }}\n", ""),
        "app.yaml ApiErrorRateAlarm",
        "alarm actions",
    ),
    widens(
        "alarm actions disabled",
        ("partials/macros.yaml.j2", "      ActionsEnabled: true", "      ActionsEnabled: false"),
        "app.yaml ApiErrorRateAlarm",
        "ActionsEnabled",
    ),
    unjudged(
        "flow log keeps rejected traffic only",
        (NETWORK, "      TrafficType: ALL", "      TrafficType: REJECT"),
        "app.yaml FlowLog",
        "TrafficType",
    ),
]

HEADERS = [
    widens(
        "HSTS shortened to an hour",
        (DEFAULTS, "max-age=63072000; includeSubDomains; preload", "max-age=3600"),
        "edge.yaml SecurityHeadersFunction",
        "Strict-Transport-Security",
    ),
    widens(
        "HSTS off in production only",
        (
            PRODUCTION,
            "  price_class: PriceClass_All\n",
            "  price_class: PriceClass_All\n  security_headers:\n    Strict-Transport-Security: max-age=0\n",
        ),
        "edge.yaml SecurityHeadersFunction",
        "Strict-Transport-Security",
    ),
    widens(
        "CSP allows inline scripts",
        (DEFAULTS, "    script-src: [\"'self'\"]", "    script-src: [\"'self'\", \"'unsafe-inline'\"]"),
        "edge.yaml SecurityHeadersFunction",
        "Content-Security-Policy",
        "unsafe-inline",
    ),
    widens(
        "CSP lets any site frame the app",
        (DEFAULTS, "    frame-ancestors: [\"'none'\"]", '    frame-ancestors: ["*"]'),
        "edge.yaml SecurityHeadersFunction",
        "Content-Security-Policy",
        "frame-ancestors",
    ),
    widens(
        "CSP only reported",
        (DEFAULTS, "csp_report_only: false", "csp_report_only: true"),
        "edge.yaml SecurityHeadersFunction",
        "Content-Security-Policy",
    ),
    widens(
        "X-Frame-Options removed",
        (DEFAULTS, "    X-Frame-Options: DENY\n", ""),
        "edge.yaml SecurityHeadersFunction",
        "X-Frame-Options",
    ),
    unjudged(
        "the edge function skips the CSP",
        (
            "edge/handler.py",
            '    for lower, name, value in config:\n        headers[lower] = [{"key": name, "value": value}]',
            '    for lower, name, value in config:\n        if lower != "content-security-policy":  # the wi'
            "dget\n"
            '            headers[lower] = [{"key": name, "value": value}]',
        ),
        "edge.yaml SecurityHeadersFunction",
        "handler.py",
    ),
]

ENCRYPTION = [
    widens(
        "repository's KMS key removed",
        (
            IMAGE,
            "        EncryptionType: KMS\n        KmsKey: !GetAtt StackKey.Arn\n",
            "        EncryptionType: AES256\n",
        ),
        "app.yaml ApiRepository",
        "KMS",
        data=True,
    ),  # create-only: the repository is replaced too
    widens(
        "the API secret's KMS key removed",
        (
            DATABASE,
            ' Aurora PostgreSQL cluster") | yaml }}\n      KmsKeyId: !GetAtt StackKey.Arn\n      GenerateSec'
            "retString:\n"
            "        SecretStringTemplate: !Sub",
            ' Aurora PostgreSQL cluster") | yaml }}\n      GenerateSecretString:\n'
            "        SecretStringTemplate: !Sub",
        ),
        "app.yaml ApiDatabaseSecret",
        "KMS key",
    ),
    widens(
        "site bucket's default encryption removed",
        (
            FRONTEND,
            "      BucketEncryption:\n        # SSE-S3: the content is the public site; SSE-KMS would need t"
            "he key "
            "policy to name the\n        # distribution, which itself depends on this bucket\n"
            "        ServerSideEncryptionConfiguration:\n          - ServerSideEncryptionByDefault:\n"
            "              SSEAlgorithm: AES256\n",
            "",
        ),
        "edge.yaml SiteBucket",
        "encryption",
    ),
    widens(
        "key rotation off",
        (KMS, "EnableKeyRotation: true", "EnableKeyRotation: false"),
        "app.yaml StackKey",
        "EnableKeyRotation",
    ),
    unjudged(
        "secrets rotated once a year",
        (DEFAULTS, "  rotation_days: 30\n", "  rotation_days: 365\n"),
        "app.yaml DatabaseSecretRotation",
        "AutomaticallyAfterDays",
    ),
]

TLS = [
    widens(
        "CloudFront accepts TLS 1.1",
        (FRONTEND, "MinimumProtocolVersion: TLSv1.2_2021", "MinimumProtocolVersion: TLSv1.1_2016"),
        "edge.yaml Distribution",
        "TLSv1.1_2016",
    ),
    widens(
        "load balancer accepts TLS 1.0",
        (
            "partials/api_load_balancer.yaml.j2",
            "SslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06",
            "SslPolicy: ELBSecurityPolicy-2016-08",
        ),
        "app.yaml ApiHttpsListener",
        "ELBSecurityPolicy-2016-08",
    ),
    widens(
        "load balancer forwards invalid headers",
        (
            "partials/api_load_balancer.yaml.j2",
            '        - Key: routing.http.drop_invalid_header_fields.enabled\n          Value: "true"',
            '        - Key: routing.http.drop_invalid_header_fields.enabled\n          Value: "false"',
        ),
        "app.yaml ApiLoadBalancer",
        "invalid header",
    ),
]

BOOTSTRAPS = [
    widens(
        "GitHub trust widened to every repository of the organisation",
        (
            "templates/bootstrap.yaml.j2",
            GITHUB_TRUST,
            GITHUB_TRUST.replace("StringEquals", "StringLike").replace(
                "cfg.github_subject(github_environment)",
                '("repo:" ~ cfg.deploy.github_repository.split("/")[0] ~ "/*")',
            ),
        ),
        f"{BOOTSTRAP} ProductionPlanRole",
        "condition loosened",
        "token.actions.githubusercontent.com:sub",
    ),
    widens(
        "an IAM write for the plan role",
        (BOOT, PLAN_ROLE, PLAN_ROLE + '            Statement("FixRoles", ["iam:PutRolePolicy"], ["*"]),\n'),
        f"{BOOTSTRAP} ProductionPlanRolePolicy\\d+",
        "iam:PutRolePolicy",
    ),
    widens(
        "the plan role may read secrets",
        (
            BOOT,
            '            Statement("NoSecretReads", list(SECRET_READS), ["*"], effect="Deny")]\n\n\ndef depl'
            "oy",
            "            ]\n\n\ndef deploy",
        ),
        f"{BOOTSTRAP} ProductionPlanRolePolicy\\d+",
        "no longer denies",
    ),
    # a header the header rule has no order for: one added may loosen (CORS), so it is said
    unjudged(
        "a header the header rule does not know added",
        (
            DEFAULTS,
            "    X-Content-Type-Options: nosniff\n",
            "    X-Content-Type-Options: nosniff\n    X-Permitted-Cross-Domain-Policies: none\n",
        ),
        "production/edge.yaml SecurityHeadersFunction",
        "X-Permitted-Cross-Domain-Policies",
    ),
    unjudged(
        "deploy roles' sessions last twelve hours",
        ("templates/bootstrap.yaml.j2", "      MaxSessionDuration: 7200", "      MaxSessionDuration: 43200"),
        f"{BOOTSTRAP} ProductionPlanRole",
        "MaxSessionDuration",
    ),
]

TIGHTENINGS = [
    clean("a tag's value", (DEFAULTS, "  Owner: devops-team\n", "  Owner: platform-team\n")),
    clean(
        "a role's description",
        (ROLES, '" (its own AWS permissions)"', '" (its own AWS permissions: the database secret)"'),
    ),
    clean(
        "load balancer's egress narrowed inside the VPC",
        (
            NETWORK,
            "          CidrIp: {{ cfg.network.vpc_cidr | yaml }}",
            '          CidrIp: {{ (cfg.network.vpc_cidr.split("/")[0] ~ "/20") | yaml }}',
        ),
    ),
    clean(
        "tasks' egress narrowed to private addresses",
        (
            NETWORK,
            '          ToPort: 443\n          CidrIp: 0.0.0.0/0\n      {{ m.tags(6, Name=stack.name ~ "-api"'
            ") }}",
            '          ToPort: 443\n          CidrIp: 10.0.0.0/8\n      {{ m.tags(6, Name=stack.name ~ "-api'
            '") }}',
        ),
    ),
    clean("a policy action removed", (ROLES, "                  - ecr:BatchCheckLayerAvailability\n", "")),
    clean(
        "a tighter condition on the site read",
        (FRONTEND, SITE_READ_ARN, SITE_READ_ARN + "\n                AWS:SourceAccount: !Ref AWS::AccountId"),
    ),
    clean(
        "task role's trust narrowed to tasks",
        (ROLES, '${AWS::AccountId}:*"\n      Policies:', '${AWS::AccountId}:task/*"\n      Policies:'),
    ),
    clean(
        "a new deny on the alarm topics",
        (
            MONITORING,
            "          - Sid: TlsOnly\n",
            "          - Sid: NoSubscriptionsFromOtherAccounts\n            Effect: Deny\n            Princi"
            'pal: "*"\n'
            "            Action: sns:Subscribe\n            Resource: !Ref {{ logical_id | logical_id }}\n"
            "            Condition:\n              StringNotEquals:\n                aws:SourceAccount: !Ref"
            " AWS::AccountId\n"
            "          - Sid: TlsOnly\n",
        ),
    ),
    clean(
        "restricted TLS 1.3 ciphers",
        (
            "partials/api_load_balancer.yaml.j2",
            "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        ),
    ),
    clean(
        "an alarm's threshold lowered",
        (
            DEFAULTS,
            "      threshold: 5\n      period_seconds: 60\n      evaluation_periods: 2\n      severity: crit"
            "ical",
            "      threshold: 3\n      period_seconds: 60\n      evaluation_periods: 2\n      severity: crit"
            "ical",
        ),
    ),
    clean("longer backups", (PRODUCTION, "backup_retention_days: 14", "backup_retention_days: 21")),
]

CATEGORIES = {
    "policies": POLICIES,
    "network": NETWORKS,
    "container hardening": CONTAINERS,
    "secrets": SECRETS,
    "logging and alarms": LOGGING,
    "edge headers": HEADERS,
    "encryption": ENCRYPTION,
    "TLS": TLS,
    "bootstrap": BOOTSTRAPS,
    "tightenings and neutral edits": TIGHTENINGS,
}
ROWS = [row for rows in CATEGORIES.values() for row in rows]


def _fits(batch: list[Row], row: Row) -> bool:
    return (
        len(batch) < BATCH
        and batch[0].signature == row.signature
        and all((r.where != row.where or not row.where) and not (r.lines & row.lines) for r in batch)
    )


def batches(rows: list[Row]) -> list[tuple[Row, ...]]:
    """The rows in batches: each row in the first batch it fits (see the module's docstring)."""
    out: list[list[Row]] = []
    for row in rows:
        home = next((b for b in out if _fits(b, row)), None)
        if home is None:
            out.append([row])
        else:
            home.append(row)
    return [tuple(b) for b in out]


BATCHES = batches(ROWS)
BATCH_OF = {row.name: i for i, batch in enumerate(BATCHES) for row in batch}
Reviews = dict[tuple[str, str, str], CompletedProcess[str]]  # (moment, install, gate) -> the run


def _review(repo: Path, runtime: Path, edits: tuple[Edit, ...]) -> Reviews:
    reset(repo)
    for edit in edits:
        example.apply(edit, repo)
    reviews: Reviews = {}
    for moment in ("before rendering", "after rendering"):
        if moment == "after rendering":
            rendered = run(sys.executable, "render.py", "--all", cwd=repo)
            assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        for install, python in (("dev", Path(sys.executable)), ("runtime", runtime)):
            for gate in GATES:
                reviews[(moment, install, gate)] = run(
                    python, "render.py", "diff", "--env", "production", gate, cwd=repo
                )
    return reviews


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory, runtime_python: Path):
    """Batch number -> its reviews, each batch reviewed once, in one checkout."""
    repo = example.checkout(tmp_path_factory.mktemp("adversarial"))

    @cache
    def of(index: int) -> Reviews:
        return _review(repo, runtime_python, tuple(e for row in BATCHES[index] for e in row.edits))

    return of


def sections(text: str) -> dict[str, list[str]]:
    """The head's sections: each title with its lines (a resource's further lines included)."""
    found: dict[str, list[str]] = {}
    title = ""
    for line in alarms(text).splitlines():
        if re.match(r"!! \S", line):
            title = line[3:]
            found[title] = []
        else:
            found.setdefault(title, []).append(line[2:])  # indented: 3 spaces, a further line more
    return found


def flagged(row: Row, text: str) -> list[str]:
    """The head's lines of the row's kind that name its resource and say what it says."""
    named = re.compile(rf"(^|\s){re.escape(row.where.split(' ')[0])} {row.where.split(' ', 1)[1]}[\s:(]")
    return [
        line
        for title, lines in sections(text).items()
        if re.search(TITLES[row.kind], title)
        for line in map(str.strip, lines)
        if line.startswith(row.kind)
        and named.search(line)
        and all(s.lower() in line.lower() for s in row.says)
    ]


def _one_text(reviews: Reviews, gates: tuple[str, ...]) -> str:
    runs = [done for (_, _, gate), done in reviews.items() if gate in gates]
    assert all(done.stderr == "" for done in runs), {k: d.stderr for k, d in reviews.items() if d.stderr}
    texts = {done.stdout for done in runs}
    assert len(texts) == 1, "the reports differ between installs, moments or gates"
    return texts.pop()


def _assert_verdict(row: Row, text: str) -> None:
    head = alarms(text)
    if row.kind == CLEAN:
        assert not head, head
        return
    assert flagged(row, text), f"no {row.kind} line in the head for {row.where} saying {row.says}:\n{head}"


def _assert_exits(row: Row, reviews: Reviews, gates: tuple[str, ...]) -> None:
    want = row.exits()
    got = {
        (moment, install, gate): done.returncode
        for (moment, install, gate), done in reviews.items()
        if gate in gates and done.returncode != want[gate]
    }
    head = alarms(next(iter(reviews.values())).stdout)
    assert not got, f"expected {want}, got {got}; the batch's head:\n{head}"


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_each_edit_gets_its_verdict_and_exit_under_each_gate_in_both_installs(row: Row, reviewed) -> None:
    reviews = reviewed(BATCH_OF[row.name])
    # the gates the report has always had first, so that a row's verdict is shown on its own
    text = _one_text(reviews, (REPLACE, BROADENING))
    assert text.startswith("Template review: rendered/ committed at HEAD (")
    _assert_verdict(row, text)
    _assert_exits(row, reviews, (REPLACE, BROADENING))
    assert getattr(errors, "EXIT_UNJUDGED", None) is not None, (
        "tracker_infra/errors.py defines no EXIT_UNJUDGED"
    )
    assert _one_text(reviews, GATES) == text
    _assert_exits(row, reviews, GATES)


ORDERED = (  # one batch: a stateful resource losing data protection, exposure, the rest
    ("vars/production.yaml", "backup_retention_days: 14", "backup_retention_days: 7"),
    ("partials/frontend.yaml.j2", "        BlockPublicAcls: true\n", "        BlockPublicAcls: false\n"),
    (
        "partials/frontend.yaml.j2",
        "      LoggingConfiguration:\n        DestinationBucketName: !Ref DistributionLogBucket\n"
        "        LogFilePrefix: s3/\n",
        "",
    ),
    (
        "partials/api_load_balancer.yaml.j2",
        "SslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06",
        "SslPolicy: ELBSecurityPolicy-2016-08",
    ),
)


@pytest.mark.slow
def test_the_head_is_one_item_per_resource_the_most_harmful_first(tmp_path: Path) -> None:
    repo = example.checkout(tmp_path)
    for edit in ORDERED:
        example.apply(edit, repo)
    done = run(sys.executable, "render.py", "diff", "--env", "production", cwd=repo)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    widened = [lines for title, lines in sections(done.stdout).items() if re.search(TITLES[WIDENS], title)]
    assert len(widened) == 1, "the widenings and the losses of data protection are one list"
    items = [line for line in widened[0] if re.match(r" {3}\S", line)]  # each resource's first line
    owners = [re.search(r"production/\S+ (\w+)", line)[1] for line in items]  # type: ignore[index]
    assert owners == ["DatabaseCluster", "SiteBucket", "ApiHttpsListener"], items
    assert len(widened[0]) > len(items)  # the site bucket's second widening below its first


def test_the_table_covers_every_category() -> None:
    assert sum(r.kind != CLEAN for r in ROWS) >= 40 and len(TIGHTENINGS) >= 10
    assert all(r.kind == CLEAN for r in TIGHTENINGS)
    assert all(rows for rows in CATEGORIES.values())
    assert {r.kind for r in ROWS} == {WIDENS, NOT_JUDGED, CLEAN}
    assert any(r.data and not r.security for r in ROWS) and any(r.data and r.security for r in ROWS)
    assert len({r.name for r in ROWS}) == len(ROWS)


def test_no_batch_mixes_verdicts_resources_or_lines() -> None:
    for batch in BATCHES:
        assert len({r.signature for r in batch}) == 1
        named = [r.where for r in batch if r.where]
        assert len(named) == len(set(named))
        lines = [line for r in batch for line in r.lines]
        assert len(lines) == len(set(lines))
    assert len(BATCHES) < len(ROWS) / 3  # batching is what keeps the module's time down
