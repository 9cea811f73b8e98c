"""API layer facts, read back from the parsed regional stack of every environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.helpers import ENVS, assert_rejected, config_with, per_create, props, render, resources, walk
from tracker_infra.schema import FARGATE_MEMORY

Doc = dict[str, Any]

# The original design's numbers for the API layer, written out here, not read from vars/.
SEED_TASK_SIZE = {"dev": ("256", "512"), "staging": ("512", "1024"), "production": ("1024", "2048")}
SEED_TASKS = {"dev": (1, 3), "staging": (2, 6), "production": (3, 20)}
SEED_LOG_RETENTION = {"dev": 7, "staging": 30, "production": 90}
SECRET_ARN = {"Ref": "ApiDatabaseSecret"}  # the API's own user, never the master secret
KEY_ARN = {"Fn::GetAtt": ["StackKey", "Arn"]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _container(doc: Doc) -> Doc:
    containers = props(doc, "ApiTaskDefinition")["ContainerDefinitions"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("env", ENVS)
def test_fargate_task_size_is_the_seeds(app: dict[str, Doc], env: str) -> None:
    task = props(app[env], "ApiTaskDefinition")
    assert (task["Cpu"], task["Memory"]) == SEED_TASK_SIZE[env]
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert task["NetworkMode"] == "awsvpc"


@pytest.mark.parametrize("env", ENVS)
def test_task_counts_and_target_tracking(app: dict[str, Doc], env: str) -> None:
    doc = app[env]
    low, high = SEED_TASKS[env]
    target = props(doc, "ApiScalableTarget")
    # once released (ImageReleased), min..max tasks; before the first release none
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        {"Fn::If": ["ImageReleased", low, 0]}, {"Fn::If": ["ImageReleased", high, 0]})
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    assert target["ResourceId"] == {"Fn::Sub": "service/${ApiCluster}/${ApiService.Name}"}
    assert props(doc, "ApiService")["DesiredCount"] == {"Fn::If": ["ImageReleased", low, 0]}
    policies = resources(doc, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert set(policies) == {"ApiCpuScalingPolicy", "ApiMemoryScalingPolicy"}
    targets = {}
    for policy in policies.values():
        p = policy["Properties"]
        assert p["PolicyType"] == "TargetTrackingScaling"
        assert p["ScalingTargetId"] == {"Ref": "ApiScalableTarget"}
        config = p["TargetTrackingScalingPolicyConfiguration"]
        targets[config["PredefinedMetricSpecification"]["PredefinedMetricType"]] = config["TargetValue"]
    assert targets == {"ECSServiceAverageCPUUtilization": 70,
                       "ECSServiceAverageMemoryUtilization": 80}


@pytest.mark.parametrize("env", ENVS)
def test_target_group_health_check_is_the_seeds(app: dict[str, Doc], env: str) -> None:
    group = props(app[env], "ApiTargetGroup")
    got = {k: group[k] for k in ("HealthCheckPath", "HealthCheckIntervalSeconds",
                                 "HealthCheckTimeoutSeconds", "HealthyThresholdCount",
                                 "UnhealthyThresholdCount")}
    assert got == {"HealthCheckPath": "/health", "HealthCheckIntervalSeconds": 30,
                   "HealthCheckTimeoutSeconds": 5, "HealthyThresholdCount": 2,
                   "UnhealthyThresholdCount": 3}
    # HTTPS all the way to the container
    assert (group["Protocol"], group["HealthCheckProtocol"], group["Port"]) == ("HTTPS", "HTTPS", 8080)
    assert group["TargetType"] == "ip"
    assert _container(app[env])["PortMappings"] == [{"ContainerPort": 8080, "Protocol": "tcp"}]


def test_health_check_follows_vars() -> None:
    cfg = config_with("staging", {"api": {"health_check": {"path": "/ready", "interval_seconds": 15,
                                                           "timeout_seconds": 4,
                                                           "healthy_threshold": 5,
                                                           "unhealthy_threshold": 6}}})
    group = props(render(cfg), "ApiTargetGroup")
    assert (group["HealthCheckPath"], group["HealthCheckIntervalSeconds"],
            group["HealthCheckTimeoutSeconds"], group["HealthyThresholdCount"],
            group["UnhealthyThresholdCount"]) == ("/ready", 15, 4, 5, 6)


@pytest.mark.parametrize("env", ENVS)
def test_tasks_run_in_private_subnets_without_public_ip(app: dict[str, Doc], env: str) -> None:
    network = props(app[env], "ApiService")["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert network["Subnets"] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
    assert network["SecurityGroups"] == [{"Ref": "ApiSecurityGroup"}]


@pytest.mark.parametrize("env", ENVS)
def test_nothing_private_asks_for_a_public_ip(app: dict[str, Doc], env: str) -> None:
    for node in walk(app[env]["Resources"]):
        if isinstance(node, dict):
            assert node.get("AssignPublicIp", "DISABLED") == "DISABLED"
            assert node.get("MapPublicIpOnLaunch", False) is False
            assert node.get("PubliclyAccessible", False) is False


@pytest.mark.parametrize("env", ENVS)
def test_execution_role_reads_exactly_the_secret_and_the_key(app: dict[str, Doc], env: str) -> None:
    role = props(app[env], "ApiTaskExecutionRole")
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert "ManagedPolicyArns" not in role  # the AWS managed policy grants logs/ECR on "*"
    by_service: dict[str, list[Any]] = {"secretsmanager": [], "kms": []}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = _as_list(statement["Action"])
        services = {a.split(":")[0] for a in actions}
        for service in services & set(by_service):
            assert services == {service}, statement  # never mixed with other services
            assert not any("*" in a for a in actions), statement
            by_service[service].extend(_as_list(statement["Resource"]))
        if "*" in _as_list(statement["Resource"]):
            assert actions == ["ecr:GetAuthorizationToken"], statement  # no resource-level form
    assert by_service["secretsmanager"] == [SECRET_ARN]
    assert by_service["kms"] == [KEY_ARN]


@pytest.mark.parametrize("env", ENVS)
def test_task_role_is_separate_and_holds_nothing(app: dict[str, Doc], env: str) -> None:
    task = props(app[env], "ApiTaskDefinition")
    assert task["ExecutionRoleArn"] == {"Fn::GetAtt": ["ApiTaskExecutionRole", "Arn"]}
    assert task["TaskRoleArn"] == {"Fn::GetAtt": ["ApiTaskRole", "Arn"]}
    # The application may re-read its own database secret (after a rotation); whatever else it
    # is granted names this stack's own resources, with no wildcard action and no "*" resource,
    # and its key use goes through a service.
    task_role = props(app[env], "ApiTaskRole")
    assert "ManagedPolicyArns" not in task_role
    statements = [s for policy in task_role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert ("secretsmanager:GetSecretValue", SECRET_ARN) in [(s["Action"], s["Resource"]) for s in statements]
    for statement in statements:
        assert statement["Effect"] == "Allow" and "*" not in str(statement["Action"]), statement
        targets = statement["Resource"]
        targets = targets if isinstance(targets, list) else [targets]
        assert all(isinstance(t, dict) and set(t) <= {"Ref", "Fn::GetAtt", "Fn::Sub"}
                   for t in targets), statement
        if "kms:" in str(statement["Action"]):
            assert statement["Resource"] == KEY_ARN and "kms:ViaService" in str(statement["Condition"])
    for lid in ("ApiTaskRole", "ApiTaskExecutionRole"):
        trust = props(app[env], lid)["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "ecs-tasks.amazonaws.com"}]


@pytest.mark.parametrize("env", ENVS)
def test_database_secret_arrives_through_secrets_not_environment(app: dict[str, Doc],
                                                                 env: str) -> None:
    container = _container(app[env])
    secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    assert secrets["DATABASE_PASSWORD"] == {"Fn::Sub": "${ApiDatabaseSecret}:password::"}
    assert set(secrets) == {"DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER",
                            "DATABASE_PASSWORD"}
    for value in secrets.values():
        assert value["Fn::Sub"].startswith("${ApiDatabaseSecret}:")
    for variable in container.get("Environment", []):
        if variable["Name"] == "DATABASE_SECRET_ARN":  # where to re-read: the ARN, no secret
            assert variable["Value"] == SECRET_ARN
            continue
        assert "DATABASE" not in variable["Name"] and "PASSWORD" not in variable["Name"]
        assert "resolve:secretsmanager" not in str(variable["Value"])


@pytest.mark.parametrize("env", ENVS)
def test_image_is_a_digest_in_the_stacks_own_repository(app: dict[str, Doc], env: str) -> None:
    parameter = app[env]["Parameters"]["ApiImageDigest"]
    assert parameter["Type"] == "String" and parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "sha256:" + "a" * 64)
    assert not re.fullmatch(parameter["AllowedPattern"], "latest")
    assert _container(app[env])["Image"] == {"Fn::If": [
        "ImageReleased", {"Fn::Sub": "${ApiRepository.RepositoryUri}@${ApiImageDigest}"},
        {"Fn::Sub": "${ApiRepository.RepositoryUri}:unreleased"}]}
    # no task before the first release, min_tasks after it
    service = props(app[env], "ApiService")
    assert service["DesiredCount"]["Fn::If"][0] == "ImageReleased"
    assert service["DesiredCount"]["Fn::If"][2] == 0


@pytest.mark.parametrize("env", ENVS)
def test_logs_go_to_the_env_log_group(app: dict[str, Doc], env: str) -> None:
    group = props(app[env], "ApiLogGroup")
    assert per_create(group["LogGroupName"]) == f"/aws/ecs/api-{env}-${{CreateId}}"  # kept: per create
    assert group["RetentionInDays"] == SEED_LOG_RETENTION[env]
    assert group["KmsKeyId"] == KEY_ARN
    log = _container(app[env])["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    assert log["Options"]["awslogs-group"] == {"Ref": "ApiLogGroup"}


@pytest.mark.parametrize("env", ENVS)
def test_cluster_insights_and_circuit_breaker(app: dict[str, Doc], env: str) -> None:
    settings_ = props(app[env], "ApiCluster")["ClusterSettings"]
    assert {"Name": "containerInsights", "Value": "enabled"} in settings_
    service = props(app[env], "ApiService")
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True, "Rollback": True}
    assert service["LaunchType"] == "FARGATE"
    assert service["LoadBalancers"] == [{"ContainerName": "api", "ContainerPort": 8080,
                                         "TargetGroupArn": {"Ref": "ApiTargetGroup"}}]


@pytest.mark.parametrize("env", ENVS)
def test_https_listener_with_the_env_certificate_and_tls_1_2_plus(app: dict[str, Doc],
                                                                  configs: dict[str, Any],
                                                                  env: str) -> None:
    listener = props(app[env], "ApiHttpsListener")
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["Certificates"] == [{"CertificateArn": configs[env].api.certificate_arn}]
    assert listener["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert listener["DefaultActions"] == [{"Type": "forward",
                                           "TargetGroupArn": {"Ref": "ApiTargetGroup"}}]


@pytest.mark.parametrize("env", ENVS)
def test_http_listener_only_redirects_to_https(app: dict[str, Doc], env: str) -> None:
    listeners = resources(app[env], "AWS::ElasticLoadBalancingV2::Listener")
    assert set(listeners) == {"ApiHttpsListener", "ApiHttpListener"}
    http = props(app[env], "ApiHttpListener")
    assert (http["Protocol"], http["Port"]) == ("HTTP", 80)
    assert [a["Type"] for a in http["DefaultActions"]] == ["redirect"]
    redirect = http["DefaultActions"][0]["RedirectConfig"]
    assert (redirect["Protocol"], redirect["Port"], redirect["StatusCode"]) == ("HTTPS", "443",
                                                                               "HTTP_301")
    assert not resources(app[env], "AWS::ElasticLoadBalancingV2::ListenerRule")


def _access_log_bucket(doc: Doc) -> None:
    """The ALB's access-log bucket: kept, unnamed, private, SSE-S3, written by ELB only, TLS only."""
    bucket = doc["Resources"]["AlbAccessLogBucket"]
    # Retain even on a failed create: ELB writes a test object when logging is enabled, so the
    # bucket is never empty and could not be deleted by a rollback; it has no fixed name, so a
    # retried create does not collide with it.
    assert bucket["DeletionPolicy"] == "Retain"
    assert "BucketName" not in bucket["Properties"]
    p = bucket["Properties"]
    assert all(p["PublicAccessBlockConfiguration"][k] is True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    rule = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"  # ELB: SSE-S3 only
    statements = props(doc, "AlbAccessLogBucketPolicy")["PolicyDocument"]["Statement"]
    put = [s for s in statements if s["Effect"] == "Allow"]
    assert len(put) == 1 and put[0]["Action"] == "s3:PutObject"
    # us-east-1 predates August 2022: ELB delivers as its regional account there.
    assert put[0]["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::127311923021:root"}}
    assert put[0]["Resource"] == {"Fn::Sub": "${AlbAccessLogBucket.Arn}/alb/AWSLogs/${AWS::AccountId}/*"}
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("env", ENVS)
def test_load_balancer_is_public_with_protection_and_logs_outside_dev(app: dict[str, Doc],
                                                                      env: str) -> None:
    doc = app[env]
    alb = props(doc, "ApiLoadBalancer")
    assert alb["Scheme"] == "internet-facing"
    assert alb["Subnets"] == [{"Ref": "PublicSubnet1"}, {"Ref": "PublicSubnet2"}]
    assert alb["SecurityGroups"] == [{"Ref": "AlbSecurityGroup"}]
    attributes = {a["Key"]: a["Value"] for a in alb["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    keep = env != "dev"
    assert attributes["deletion_protection.enabled"] == (
        {"Fn::If": ["DeletionProtected", "true", "false"]} if keep else "false")
    assert attributes["access_logs.s3.enabled"] == str(keep).lower()
    if not keep:
        assert "AlbAccessLogBucket" not in resources(doc, "AWS::S3::Bucket")
        assert "access_logs.s3.bucket" not in attributes
        return
    assert attributes["access_logs.s3.bucket"] == {"Ref": "AlbAccessLogBucket"}
    _access_log_bucket(doc)


def test_newer_region_uses_the_log_delivery_service_principal() -> None:
    cfg = config_with("staging", {"region": "ap-southeast-5", "api": {"certificate_arn":
                      "arn:aws:acm:ap-southeast-5:222222222222:certificate/"
                      "22222222-2222-4222-8222-222222222221"}})
    statements = props(render(cfg), "AlbAccessLogBucketPolicy")["PolicyDocument"]["Statement"]
    assert statements[0]["Principal"] == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}


@pytest.mark.parametrize("env", ENVS)
def test_outputs_endpoint_and_cluster_name(app: dict[str, Doc], env: str) -> None:
    outputs = app[env]["Outputs"]
    assert outputs["ApiEndpoint"]["Value"] == {"Fn::GetAtt": ["ApiLoadBalancer", "DNSName"]}
    assert outputs["EcsClusterName"]["Value"] == {"Ref": "ApiCluster"}
    for name in ("ApiEndpoint", "EcsClusterName", "DatabaseSecretArn", "VpcId"):
        assert outputs[name]["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


VALID_PAIRS = [(cpu, memory) for cpu, memories in FARGATE_MEMORY.items() for memory in memories]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_PAIRS))
def test_every_fargate_pair_renders_as_given(pair: tuple[int, int]) -> None:
    cpu, memory = pair
    task = props(render(config_with("staging", {"api": {"cpu": cpu, "memory": memory}})),
                 "ApiTaskDefinition")
    assert (task["Cpu"], task["Memory"]) == (str(cpu), str(memory))


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(list(FARGATE_MEMORY)), st.integers(min_value=128, max_value=131072))
def test_pairs_fargate_does_not_offer_are_rejected(cpu: int, memory: int) -> None:
    change = {"api": {"cpu": cpu, "memory": memory}}
    if memory in FARGATE_MEMORY[cpu]:
        config_with("staging", change)
        return
    with pytest.raises(ValidationError, match="not a Fargate pair"):
        config_with("staging", change)


# (change to production.yaml, key path in the message, words the message must hold)
API_REJECTIONS = [
    ({"api": {"cpu": 256, "memory": 4096}}, "api.memory",
     "4096 MiB with 256 CPU units is not a Fargate pair (allowed with 256: 512, 1024, 2048)"),
    ({"api": {"cpu": 1024, "memory": 1024}}, "api.memory",
     "(allowed with 1024: 2048 to 8192 in steps of 1024)"),
    ({"api": {"cpu": 4096, "memory": 8000}}, "api.memory", "not a Fargate pair"),
    ({"api": {"cpu": 768}}, "api.cpu", "768 CPU units is not a Fargate size (allowed: 256, 512"),
    ({"api": {"min_tasks": 21}}, "api.max_tasks",
     "max_tasks 20 is below min_tasks 21 (allowed: max_tasks >= min_tasks)"),
]


@pytest.mark.parametrize(("change", "key", "words"), API_REJECTIONS,
                         ids=[f"{r[1]}:{i}" for i, r in enumerate(API_REJECTIONS)])
def test_bad_task_size_or_counts_are_one_line_exit_2_and_write_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], key: str,
        words: str) -> None:
    assert_rejected(tmp_path, capsys, {"production.yaml": change}, "production.yaml", key, words)
