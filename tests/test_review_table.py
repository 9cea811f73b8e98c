"""render.py diff on a table of real changes, each made in a temporary git repository (a copy of
vars/, templates/, partials/, tracker_infra/, edge/ and render.py, rendered and committed:
tracker_infra/review/example.checkout) and
reviewed before and after `render.py --all` rewrites rendered/, with the runtime install
(requirements.txt only: no cfn-lint) and with the dev install. All four reports must be the same
text, with the verdict and exit code each change deserves."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.review_checkout import alarms as _alarms
from tests.review_checkout import reset
from tests.review_checkout import run as _run
from tracker_infra.review import example

FLAGS = ("--fail-on-replace", "--fail-on-broadening")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sources, rendered and committed in a throwaway git repository (as the docs example
    makes it)."""
    return example.checkout(tmp_path_factory.mktemp("review"))


def _edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        example.apply((path, old, new), repo)

    return edit


def _remove(path: str) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        (repo / path).unlink()

    return edit


def _scaling(text: str, repo: Path) -> None:
    assert not _alarms(text)
    assert "Properties.ServerlessV2ScalingConfiguration.MaxCapacity: 16.0 -> 32.0" in text
    assert "Estimated monthly cost, production: floor" in text


def _database_name(text: str, repo: Path) -> None:
    alarms = _alarms(text)
    for env in ("dev", "staging", "production"):
        assert (
            f"{env}/app.yaml DatabaseCluster (AWS::RDS::DBCluster): REPLACED: create-only "
            "property DatabaseName changed"
        ) in alarms
        assert (
            f"{env}/app.yaml DatabaseCluster (AWS::RDS::DBCluster): DBClusterIdentifier is "
            f'fixed ("tracker-{env}")'
        ) in alarms
    assert "!! CloudFormation will refuse this update: 3 custom-named resource(s)" in alarms


def _vpc(text: str, repo: Path) -> None:
    alarms = _alarms(text)
    assert (
        "!!   production/app.yaml DatabaseCluster (AWS::RDS::DBCluster): MUST MOVE TO A REPLACED NETWORK"
    ) in alarms
    assert "!!   production/app.yaml ApiService (AWS::ECS::Service): references" in alarms
    assert "!!   production/app.yaml DatabaseSubnetGroup (AWS::RDS::DBSubnetGroup): references" in alarms
    assert "staging/" not in text and "dev/" not in text
    assert 'Properties.CidrBlock: "10.2.0.0/16" -> "10.9.0.0/16" (requires replacement)' in text


def _log_group(text: str, repo: Path) -> None:
    alarms = _alarms(text)
    for env, policy in (("dev", "Delete"), ("staging", "Retain"), ("production", "Retain")):
        assert (
            f"{env}/app.yaml ApiLogGroup (AWS::Logs::LogGroup): REPLACED: create-only property "
            f"LogGroupName changed (UpdateReplacePolicy: {policy})"
        ) in alarms
    assert re.search(
        r'Properties\.LogGroupName: !Sub \["/aws/ecs/api-staging-\$\{CreateId\}", .*\] -> '
        r'!Sub \["/aws/ecs/tracker-api-staging-\$\{CreateId\}", .*\] \(requires replacement\)',
        text,
    )


def _security(text: str, repo: Path) -> None:
    head = _alarms(text)  # the widenings lead the report, each named once per stack
    assert head.count("WIDENS IAM: ") == 3 and head.count("WIDENS security group: ") == 3, head
    assert ("WIDENS IAM: production/app.yaml ApiTaskExecutionRole start-api-task: new action "
            "logs:DeleteLogGroup") in head
    iam = re.findall(
        r"^\s+\+\s+(\S+)\s+ApiTaskExecutionRole start-api-task\s+Allow\s.*"
        r"logs:DeleteLogGroup.*WIDENS: new action logs:DeleteLogGroup$",
        text,
        re.M,
    )
    assert sorted(iam) == ["dev/app.yaml", "production/app.yaml", "staging/app.yaml"]
    rules = re.findall(
        r"^\s+\+\s+(\S+)\s+AlbSecurityGroup\s+ingress\s+tcp 22\s+0\.0\.0\.0/0\s+"
        r"WIDENS: open to the internet$",
        text,
        re.M,
    )
    assert sorted(rules) == ["dev/app.yaml", "production/app.yaml", "staging/app.yaml"]
    assert text.index("IAM statement changes:") < text.index("dev/app.yaml (tracker-dev")


def _tag(text: str, repo: Path) -> None:
    assert not _alarms(text)
    grouped = re.findall(r"^  ~ (\d+) resources: tag Team: \(none\) -> \"platform\"", text, re.M)
    assert len(grouped) == 6  # one line per stack: two stacks in each of three environments
    assert sum(map(int, grouped)) > 100
    assert "Properties.Tags" not in text
    assert len(text.splitlines()) < 25


def _headers(text: str, repo: Path) -> None:
    assert not _alarms(text)
    for env in ("dev", "staging", "production"):
        assert (
            f"{env}/edge.yaml: edge function code changed: a new Lambda@Edge version is "
            "published and the distribution updated"
        ) in text
    assert (
        'edge/headers.json.headers.Referrer-Policy: "strict-origin-when-cross-origin" -> "no-referrer"'
    ) in text
    assert (
        text.count(
            "~ SecurityHeadersFunction  AWS::Serverless::Function  new code: a new version is published"
        )
        == 3
    )
    assert (
        text.count(
            "~ Distribution  AWS::CloudFront::Distribution  updated to SecurityHeadersFunction's new version"
        )
        == 3
    )
    assert "no resource changes" not in text


def _removed_env(text: str, repo: Path) -> None:
    assert not _alarms(text)
    assert "environment dev is removed from vars/: its stacks are not deleted by anything" in text
    assert "dev/app.yaml" not in text
    assert "Estimated monthly cost, dev" not in text  # its stacks keep running
    # The verdict is read after `render.py --all`, which removes what dev left behind.
    assert not (repo / "rendered" / "dev").exists()
    assert not (repo / "docs" / "architecture" / "dev.md").exists()


@dataclass(frozen=True)
class Case:
    name: str
    edits: tuple[Callable[[Path], None], ...]
    exit: int
    verdict: Callable[[str, Path], None]


CASES = [
    Case("scaling bump", (_edit(*example.SCALING),), 0, _scaling),
    Case(
        "database name",
        (_edit("vars/defaults.yaml", "  name: tracker\n", "  name: activity\n"),),
        4,
        _database_name,
    ),
    Case("vpc cidr", (_edit("vars/production.yaml", "10.2.0.0/16", "10.9.0.0/16"),), 4, _vpc),
    Case(
        "fixed log group name",
        (_edit("partials/api_service.yaml.j2", '"/aws/ecs/api-"', '"/aws/ecs/tracker-api-"'),),
        4,
        _log_group,
    ),
    Case(
        "new IAM action and a 0.0.0.0/0 rule",
        (_edit(*example.NEW_IAM_ACTION), _edit(*example.SSH_FROM_ANYWHERE)),
        5,
        _security,
    ),
    Case("tag added everywhere", (_edit(*example.TAG_EVERYWHERE),), 0, _tag),
    Case(
        "security header",
        (
            _edit(
                "vars/defaults.yaml",
                "Referrer-Policy: strict-origin-when-cross-origin",
                "Referrer-Policy: no-referrer",
            ),
        ),
        0,
        _headers,
    ),
    Case("removed environment", (_remove("vars/dev.yaml"),), 0, _removed_env),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_review_verdicts_before_and_after_rendering_in_both_installs(
    case: Case, repo: Path, runtime_python: Path
) -> None:
    reset(repo)
    for edit in case.edits:
        edit(repo)
    reports = {}
    for moment in ("before rendering", "after rendering"):
        if moment == "after rendering":
            assert _run(sys.executable, "render.py", "--all", cwd=repo).returncode == 0
        for install, python in (("dev", Path(sys.executable)), ("runtime", runtime_python)):
            done = _run(python, "render.py", "diff", *FLAGS, cwd=repo)
            assert done.stderr == "", done.stderr
            assert done.returncode == case.exit, (moment, install, done.stdout)
            reports[(moment, install)] = done.stdout
    first = reports[("before rendering", "dev")]
    assert all(text == first for text in reports.values())
    assert first.startswith("Template review: rendered/ committed at HEAD (")
    case.verdict(first, repo)


@pytest.mark.slow
def test_the_example_in_docs_is_what_the_code_prints(repo: Path) -> None:
    """docs/reviewing.md's example is what tracker_infra/review/example.py makes of its edits in
    this checkout (`make regen` writes it there)."""
    reset(repo)
    report = example.report(repo)
    for part in (
        "#### IAM statement changes",
        "#### Security-group rule changes",
        "tag Team",
        "**Estimated monthly cost, production:**",
        "<details>",
    ):
        assert part in report
    page = example.PAGE.read_text()
    assert example.page_with(report, page) == page, "stale: run `make regen` and commit docs/reviewing.md"


# --- widenings: every category in the report's head, each gate failing on its own kind ----------
# Each change is made in the checkout and reviewed for production after rendering, in both
# installs, with both gates: a security widening exits 5, a loss of data protection 4.

SITE_BLOCK = (
    "        BlockPublicAcls: true\n        BlockPublicPolicy: true\n        IgnorePublicAcls: true\n"
    "        RestrictPublicBuckets: true\n      OwnershipControls:"
)
FLOW_LOG = "  FlowLog:\n    Type: AWS::EC2::FlowLog\n"
FLOW_LOG_END = "      {{ m.tags(6, Name=stack.name) }}\n\n  AlbSecurityGroup:"


@dataclass(frozen=True)
class Widening:
    name: str
    edits: tuple[tuple[str, str, str], ...]
    exit: int  # 5: security widened; 4: data protection loosened; 0: a tightening
    head: str  # what the report's head says ("" for a tightening: no WIDENS at all)


WIDENINGS = [
    Widening(
        "site bucket public",
        (("partials/frontend.yaml.j2", SITE_BLOCK, SITE_BLOCK.replace("true", "false")),),
        5,
        "WIDENS exposure: production/edge.yaml SiteBucket (AWS::S3::Bucket): CKV_AWS_53 "
        "PublicAccessBlockConfiguration.BlockPublicAcls now false (was true)",
    ),
    Widening(
        "tasks with public IPs",
        (("partials/api_service.yaml.j2", "AssignPublicIp: DISABLED", "AssignPublicIp: ENABLED"),),
        5,
        "WIDENS exposure: production/app.yaml ApiService (AWS::ECS::Service): tasks get public IP",
    ),
    Widening(
        "database instances public",
        (("partials/database.yaml.j2", "PubliclyAccessible: false", "PubliclyAccessible: true"),),
        5,
        "(AWS::RDS::DBInstance): CKV_AWS_17 PubliclyAccessible now true (was false)",
    ),
    Widening(
        "CloudFront over plain HTTP",
        (
            (
                "partials/frontend.yaml.j2",
                "ViewerProtocolPolicy: redirect-to-https",
                "ViewerProtocolPolicy: allow-all",
            ),
        ),
        5,
        "WIDENS transport: production/edge.yaml Distribution (AWS::CloudFront::Distribution): "
        "serves plain HTTP",
    ),
    Widening(
        "CloudFront TLS 1.0",
        (
            (
                "partials/frontend.yaml.j2",
                "MinimumProtocolVersion: TLSv1.2_2021",
                "MinimumProtocolVersion: TLSv1",
            ),
        ),
        5,
        "WIDENS transport: production/edge.yaml Distribution (AWS::CloudFront::Distribution): CKV_AWS_174 "
        "DistributionConfig.ViewerCertificate.MinimumProtocolVersion now",
    ),
    Widening(
        "ALB TLS 1.0",
        (
            (
                "partials/api_load_balancer.yaml.j2",
                "SslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06",
                "SslPolicy: ELBSecurityPolicy-TLS-1-0-2015-04",
            ),
        ),
        5,
        "WIDENS transport: production/app.yaml ApiHttpsListener (AWS::ElasticLoadBalancingV2::Listener): "
        "SslPolicy ELBSecurityPolicy-TLS-1-0-2015-04 accepts TLS older than 1.2",
    ),
    Widening(
        "database unencrypted",
        (("partials/database.yaml.j2", "StorageEncrypted: true", "StorageEncrypted: false"),),
        4,  # StorageEncrypted is create-only: the cluster is replaced too (data at risk wins)
        "WIDENS encryption: production/app.yaml DatabaseCluster (AWS::RDS::DBCluster): CKV_AWS_96 "
        "StorageEncrypted now false (was true)",
    ),
    Widening(
        "topics without the key",
        (("partials/monitoring.yaml.j2", "      KmsMasterKeyId: !GetAtt StackKey.Arn\n", ""),),
        5,
        "(AWS::SNS::Topic): CKV_AWS_26 KmsMasterKeyId removed",
    ),
    Widening(
        "log groups without the key",
        (
            (
                "partials/macros.yaml.j2",
                "      KmsKeyId: !GetAtt StackKey.Arn\n      {{ tags(6) }}",
                "      {{ tags(6) }}",
            ),
        ),
        5,
        "(AWS::Logs::LogGroup): CKV_AWS_158 KmsKeyId removed",
    ),
    Widening(
        "site access logs removed",
        (
            (
                "partials/frontend.yaml.j2",
                "      LoggingConfiguration:\n        "
                "DestinationBucketName: !Ref DistributionLogBucket\n        LogFilePrefix: s3/\n",
                "",
            ),
        ),
        5,
        "WIDENS audit: production/edge.yaml SiteBucket (AWS::S3::Bucket): CKV_AWS_18 "
        "LoggingConfiguration removed",
    ),
    Widening(
        "CloudFront logs removed",
        (
            (
                "partials/frontend.yaml.j2",
                "        Logging:\n          Bucket: !GetAtt "
                "DistributionLogBucket.DomainName\n          IncludeCookies: false\n"
                "          Prefix: cloudfront/\n",
                "",
            ),
        ),
        5,
        "(AWS::CloudFront::Distribution): CKV_AWS_86 DistributionConfig.Logging.Bucket removed",
    ),
    Widening(
        "database log exports off",
        (("partials/database.yaml.j2", "      EnableCloudwatchLogsExports:\n        - postgresql\n", ""),),
        5,
        "(AWS::RDS::DBCluster): log exports removed",
    ),
    Widening(
        "alarms notify no one",
        (("partials/macros.yaml.j2", "      AlarmActions:\n        - !Ref {{ topic | logical_id }}\n", ""),),
        5,
        "(AWS::CloudWatch::Alarm): alarm actions removed",
    ),
    Widening(
        "flow logs removed",
        (
            ("partials/network.yaml.j2", FLOW_LOG, "{% if false %}\n" + FLOW_LOG),
            (
                "partials/network.yaml.j2",
                FLOW_LOG_END,
                "      {{ m.tags(6, Name=stack.name) }}\n{% endif %}\n\n  AlbSecurityGroup:",
            ),
        ),
        5,
        "WIDENS audit: production/app.yaml FlowLog (AWS::EC2::FlowLog): VPC flow log removed",
    ),
    Widening(
        "production disposable",
        (
            (
                "vars/production.yaml",
                "environment: production\n",
                "environment: production\nlifecycle: disposable\n",
            ),
        ),
        4,
        "WIDENS data: production/app.yaml DatabaseCluster (AWS::RDS::DBCluster): "
        "DeletionPolicy: Snapshot removed",
    ),
    Widening(
        "shorter backups",
        (("vars/production.yaml", "backup_retention_days: 14", "backup_retention_days: 7"),),
        4,
        "WIDENS data: production/app.yaml DatabaseCluster (AWS::RDS::DBCluster): "
        "BackupRetentionPeriod 14 -> 7",
    ),
    Widening(
        "shorter log retention",
        (("vars/production.yaml", "log_retention_days: 90", "log_retention_days: 7"),),
        4,
        "(AWS::Logs::LogGroup): RetentionInDays 90 -> 7",
    ),
    Widening(
        "site versioning suspended",
        (
            (
                "partials/frontend.yaml.j2",
                "      VersioningConfiguration:\n        Status: Enabled\n      BucketEncryption:",
                "      VersioningConfiguration:\n        Status: Suspended\n      BucketEncryption:",
            ),
        ),
        4,
        "WIDENS data: production/edge.yaml SiteBucket (AWS::S3::Bucket): CKV_AWS_21 "
        "VersioningConfiguration.Status now",
    ),
    Widening(
        "key rotation off",
        (("partials/kms.yaml.j2", "EnableKeyRotation: true", "EnableKeyRotation: false"),),
        5,
        "WIDENS encryption: production/app.yaml StackKey (AWS::KMS::Key): CKV_AWS_7 EnableKeyRotation "
        "now false (was true)",
    ),
    Widening(
        "container root file system writable",
        (("partials/api_service.yaml.j2", "ReadonlyRootFilesystem: true", "ReadonlyRootFilesystem: false"),),
        5,
        "WIDENS exposure: production/app.yaml ApiTaskDefinition (AWS::ECS::TaskDefinition): read-only "
        "root file system removed",
    ),
    Widening(
        "container runs as root",
        (("partials/api_service.yaml.j2", 'container_user = "1000:1000"', 'container_user = "0"'),),
        5,
        "(AWS::ECS::TaskDefinition): non-root user removed",
    ),
    Widening(
        "a token in the container's environment",
        (("partials/api_service.yaml.j2", "            - Name: PORT\n",
          '            - Name: API_TOKEN\n              Value: "f00dbabe"\n            - Name: PORT\n'),),
        5,
        "WIDENS secrets: production/app.yaml ApiTaskDefinition (AWS::ECS::TaskDefinition): container api "
        "Environment API_TOKEN: a secret-named value written out",
    ),
    Widening(
        "HSTS shortened",
        (("vars/defaults.yaml", "max-age=63072000; includeSubDomains; preload", "max-age=300"),),
        5,
        "WIDENS headers: production/edge.yaml SecurityHeadersFunction (AWS::Serverless::Function): "
        "edge/headers.json: Strict-Transport-Security weaker: max-age 63072000 -> 300; includesubdomains, "
        "preload dropped",
    ),
    Widening(
        "CSP allows inline scripts",
        (
            ("vars/defaults.yaml",
             "script-src: [\"'self'\"]", "script-src: [\"'self'\", \"'unsafe-inline'\"]"),
        ),
        5,
        "edge/headers.json: Content-Security-Policy weaker: script-src gains 'unsafe-inline'",
    ),
    Widening(
        "X-Frame-Options removed",
        (("vars/defaults.yaml", "    X-Frame-Options: DENY\n", ""),),
        5,
        "edge/headers.json: X-Frame-Options no longer sent",
    ),
    Widening(
        "ALB keeps invalid headers",
        (
            (
                "partials/api_load_balancer.yaml.j2",
                "- Key: routing.http.drop_invalid_header_fields.enabled\n          Value: \"true\"",
                "- Key: routing.http.drop_invalid_header_fields.enabled\n          Value: \"false\"",
            ),
        ),
        5,
        "(AWS::ElasticLoadBalancingV2::LoadBalancer): dropping invalid header fields removed",
    ),
    # tightenings and neutral changes: no verdict
    Widening(
        "stricter TLS policy",
        (
            (
                "partials/api_load_balancer.yaml.j2",
                "ELBSecurityPolicy-TLS13-1-2-2021-06",
                "ELBSecurityPolicy-TLS13-1-3-2021-06",
            ),
        ),
        0,
        "",
    ),
    Widening(
        "longer backups",
        (("vars/production.yaml", "backup_retention_days: 14", "backup_retention_days: 30"),),
        0,
        "",
    ),
    Widening(
        "longer log retention",
        (("vars/production.yaml", "log_retention_days: 90", "log_retention_days: 365"),),
        0,
        "",
    ),
    Widening(
        "HSTS longer",
        (("vars/defaults.yaml", "max-age=63072000", "max-age=126144000"),),
        0,
        "",
    ),
    Widening(
        "CSP narrowed",
        (("vars/defaults.yaml", "script-src: [\"'self'\"]", "script-src: [\"'none'\"]"),),
        0,
        "",
    ),
    Widening(
        "a new deny",
        (
            (
                "partials/frontend.yaml.j2",
                "          - Sid: DenyRequestsWithoutTls\n",
                '          - Sid: DenyDeletes\n            Effect: Deny\n            Principal: "*"\n'
                '            Action: "s3:DeleteBucket"\n            Resource: !GetAtt SiteBucket.Arn\n'
                "          - Sid: DenyRequestsWithoutTls\n",
            ),
        ),
        0,
        "",
    ),
]


def test_the_widening_table_covers_every_category() -> None:
    categories = {
        w.head.split(":")[0].removeprefix("WIDENS ") for w in WIDENINGS if w.head.startswith("WIDENS")
    }
    assert {"exposure", "transport", "encryption", "data", "audit"} <= categories
    assert sum(w.exit != 0 for w in WIDENINGS) >= 15 and sum(w.exit == 0 for w in WIDENINGS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("case", WIDENINGS, ids=[w.name for w in WIDENINGS])
def test_each_widening_is_in_the_head_and_fails_its_gate_in_both_installs(
    case: Widening, repo: Path, runtime_python: Path
) -> None:
    reset(repo)
    for edit in case.edits:
        example.apply(edit, repo)
    reports = []
    for python in (Path(sys.executable), runtime_python):
        done = _run(python, "render.py", "diff", "--env", "production", *FLAGS, cwd=repo)
        assert done.stderr == "" and done.returncode == case.exit, (done.returncode, done.stdout[:3000])
        reports.append(done.stdout)
    assert reports[0] == reports[1]
    head = _alarms(reports[0])
    if case.head:
        assert case.head in head, head
    else:
        assert "WIDENS" not in reports[0] and "NOT JUDGED" not in reports[0], head


# --- fail closed: changes no rule judges, bootstrap/ reviewed like a stack --------------------------
# Each is reviewed with every gate: a widening the policy rules prove exits 5; where no rule judges
# the change, the head says NOT JUDGED and --fail-on-unjudged exits 9. Never silence, never 0.

TRUST = "token.actions.githubusercontent.com:sub: {{ cfg.github_subject(github_environment) | yaml }}"


@dataclass(frozen=True)
class Unjudged:
    name: str
    edits: tuple[tuple[str, str, str], ...]
    exits: tuple[int, ...]
    resource: str  # the head names it on a WIDENS or a NOT JUDGED line


UNJUDGED = [
    Unjudged(
        "deploy role trusted by every repository of the organisation",
        (("templates/bootstrap.yaml.j2", TRUST,
          'token.actions.githubusercontent.com:sub: "repo:community-tracker/*"'),),
        (5, 9),
        "bootstrap/333333333333.yaml ProductionDeployRole",
    ),
    Unjudged(
        "AdministratorAccess on the monitoring role",
        (("partials/database.yaml.j2", "service-role/AmazonRDSEnhancedMonitoringRole\"\n",
          "service-role/AmazonRDSEnhancedMonitoringRole\"\n"
          '        - !Sub "arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"\n'),),
        (5, 9),
        "production/app.yaml DatabaseMonitoringRole",
    ),
    Unjudged(
        "edge function code changed",
        (("edge/handler.py", "Runs for every origin status", "Runs for most origin statuses"),),
        (9,),
        "NOT JUDGED: production/edge.yaml SecurityHeadersFunction (AWS::Serverless::Function): code "
        "edge/handler.py",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", UNJUDGED, ids=[u.name for u in UNJUDGED])
def test_what_no_rule_judges_is_said_and_fails_its_gate_in_both_installs(
    case: Unjudged, repo: Path, runtime_python: Path
) -> None:
    reset(repo)
    for edit in case.edits:
        example.apply(edit, repo)
    reports = []
    for python in (Path(sys.executable), runtime_python):
        done = _run(python, "render.py", "diff", "--env", "production", *FLAGS, "--fail-on-unjudged",
                    cwd=repo)
        assert done.stderr == "" and done.returncode in case.exits, (done.returncode, done.stdout[:3000])
        reports.append(done.stdout)
    assert reports[0] == reports[1]
    head = [line for line in _alarms(reports[0]).splitlines() if case.resource in line]
    assert head and all(" WIDENS " in line or " NOT JUDGED: " in line for line in head), _alarms(reports[0])
    assert "No changes." not in reports[0]
