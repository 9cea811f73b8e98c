"""A deployed environment faked in a local moto server, for the release, verify and restore tests.

moto cannot run the rendered stacks' transforms (SAM, SecretsManager), so each stack is a stand-in
with the rendered template's parameters and every one of its outputs (Resources: one
WaitConditionHandle, and the edge stack's site bucket under its rendered logical ID, which verify
finds with DescribeStackResource); the other resources the commands read (ECR repository,
CloudFront distribution, alarm topics and their subscriptions, alarms, Aurora cluster, ECS
service, target group) are created through their own APIs, with the names the rendered templates
give them, and the outputs point at them. Each account is reached with credentials from moto's STS AssumeRole,
so STS answers with the environment's account, as connect() requires.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.helpers import render
from tracker_infra.rehearsal.server import MotoServer
from tracker_infra.rendering import EDGE_REGION
from tracker_infra.rendering import subnets as subnets_of
from tracker_infra.schema import Config


def _documented_invalidation_status(parsed: dict[str, Any], **_: Any) -> None:
    if parsed.get("Invalidation", {}).get("Status") == "COMPLETED":
        parsed["Invalidation"]["Status"] = "Completed"


class ReservedTagKey(AssertionError):
    """A request set a tag whose key AWS reserves; moto accepts it, AWS refuses it."""


def _no_reserved_tag_keys(params: dict[str, Any], event_name: str, **_: Any) -> None:
    """AWS refuses tag keys with the prefix aws: in every tagging API ("The aws: prefix is
    reserved for AWS use", Tagging AWS resources, Tag naming limits and requirements); RDS also
    refuses rds: ("can't be prefixed with aws: or rds:", RDS API Reference, Tag)."""
    reserved = ("aws:", "rds:") if ".rds." in event_name else ("aws:",)
    for tag in params.get("Tags") or []:
        key = tag.get("Key", "") if isinstance(tag, dict) else ""
        if key.lower().startswith(reserved):
            raise ReservedTagKey(f"{event_name}: tag key {key!r} is reserved by AWS")


class DocumentedRules(boto3.Session):
    """Sessions the commands make in the tests follow two documented rules moto does not:
    - moto answers GetInvalidation with Status "COMPLETED"; CloudFront's API reference gives
      "InProgress" or "Completed", and botocore's invalidation_completed waiter matches
      "Completed": moto's word is translated;
    - a request that sets a reserved tag key (aws:, and rds: for RDS) fails, as AWS fails it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events.register("after-call.cloudfront.GetInvalidation", _documented_invalidation_status)
        self.events.register("provide-client-params", _no_reserved_tag_keys)


@dataclass
class Moto:
    server: MotoServer
    recording: Path | None = None  # moto's request recording (MOTO_ENABLE_RECORDING), if on
    # account -> the access keys of the credentials use() and session() gave the commands in it
    access_keys: dict[str, set[str]] = field(default_factory=dict)

    def credentials(self, account: str) -> dict[str, str]:
        sts = boto3.client("sts", region_name="us-east-1", endpoint_url=self.server.endpoint,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        found = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/tracker-test",
                                RoleSessionName="tracker-test")["Credentials"]
        return {"aws_access_key_id": found["AccessKeyId"],
                "aws_secret_access_key": found["SecretAccessKey"],
                "aws_session_token": found["SessionToken"]}

    def session(self, account: str) -> boto3.Session:
        """A session as the commands get it: moto's answers held to AWS's documented rules."""
        given = self.credentials(account)
        self.access_keys.setdefault(account, set()).add(given["aws_access_key_id"])
        return DocumentedRules(**given)

    def service_session(self, account: str) -> boto3.Session:
        """A session that acts as AWS itself (CloudFormation setting its reserved tags)."""
        return boto3.Session(**self.credentials(account))

    def use(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, profiles: dict[str, str]) -> None:
        """Point boto3 at the server; one profile per name -> account in a private credentials
        file; no other AWS setting of this machine is read."""
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                     "AWS_REGION"):
            monkeypatch.delenv(name, raising=False)
        credentials, config = [], []
        for profile, account in profiles.items():
            given = self.credentials(account)
            self.access_keys.setdefault(account, set()).add(given["aws_access_key_id"])
            credentials.append(f"[{profile}]")
            credentials += [f"{key} = {value}" for key, value in given.items()]
            config.append(f"[profile {profile}]" if profile != "default" else "[default]")
        (tmp_path / "aws-credentials").write_text("\n".join(credentials) + "\n")
        (tmp_path / "aws-config").write_text("\n".join(config) + "\n")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
        monkeypatch.setenv("AWS_ENDPOINT_URL", self.server.endpoint)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setattr(boto3, "Session", DocumentedRules)


    def denied_to_the_deploy_role(self, cfg: Config, since: int) -> list[str]:
        """The requests the commands made in the environment's account (with the credentials use() or
        session() gave them for it) after line ``since`` of the recording that the environment's
        bootstrap deploy role would be refused,
        judged by moto's policy evaluator (tests/iam_policy.py) against the policies
        bootstrap/<account>.yaml gives the role."""
        from tests.iam_policy import allows, recorded_requests, role_documents

        keys = self.access_keys.get(cfg.account, set())
        assert self.recording is not None and keys
        documents = role_documents(cfg)
        lines = self.recording.read_text().splitlines()[since:]
        requests = [r for r in recorded_requests(lines, cfg.account, lambda arn: arn)
                    if r.access_key in keys]
        assert requests, "the commands made no request with the credentials given to them"
        return sorted({f"{r.action} on {r.resource}" for r in requests
                       if not allows(documents, r.action, r.resource, {"aws:RequestedRegion": r.region})})

    def recorded(self) -> int:
        """How many requests the recording holds so far (a mark for denied_to_the_deploy_role)."""
        if self.recording is None or not self.recording.exists():
            return 0
        return len(self.recording.read_text().splitlines())

    def reset(self) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.server.port}/moto-api/reset",
                                         method="POST")
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the local server
            pass


def cloudformation_tags(stack: str, logical_id: str) -> list[dict[str, str]]:
    """The tags CloudFormation itself puts on what a stack creates (reserved aws: keys)."""
    return [{"Key": "aws:cloudformation:stack-name", "Value": stack},
            {"Key": "aws:cloudformation:logical-id", "Value": logical_id}]


def image_manifest(label: str) -> str:
    """A distinct image manifest per label: moto derives the digest from the layer digests."""
    layer = "sha256:" + hashlib.sha256(label.encode()).hexdigest()
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                   "digest": layer},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2,
                    "digest": layer}],
    })


def push_image(ecr: Any, repository: str, label: str) -> str:
    """Push an image tagged ``label``; its digest."""
    image = ecr.put_image(repositoryName=repository, imageManifest=image_manifest(label), imageTag=label)
    return str(image["image"]["imageId"]["imageDigest"])


@dataclass
class FakeEnvironment:
    cfg: Config
    session: boto3.Session
    endpoint: str
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # stack name -> outputs
    # One client per service and region (making a client costs ~50 ms of CPU; the stand-in HTTP
    # servers ask for one from their threads, hence the lock). Clients hold no state of a test.
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.cfg.region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.session.client(service, region_name=key[1],
                                                         endpoint_url=self.endpoint)
            return self._clients[key]

    def with_session(self, session: boto3.Session) -> FakeEnvironment:
        """The same deployed environment reached through another session (its own clients and
        event handlers): what a test gets from a module-scoped deployment."""
        return FakeEnvironment(self.cfg, session, self.endpoint,
                               {name: dict(outputs) for name, outputs in self.outputs.items()})

    def parameters(self) -> dict[str, str]:
        stack = self.client("cloudformation").describe_stacks(StackName=self.cfg.stack_name)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


_RENDERED: dict[tuple[str, str], dict[str, Any]] = {}


def rendered(cfg: Config, key: str) -> dict[str, Any]:
    """``render(cfg, key)``, once per process for each configuration (the stand-ins only read it)."""
    cache_key = (cfg.model_dump_json(), key)
    if cache_key not in _RENDERED:
        _RENDERED[cache_key] = render(cfg, key)
    return _RENDERED[cache_key]


def stand_in_stack(env: FakeEnvironment, key: str, name: str, region: str, values: dict[str, str],
                   given: dict[str, str] | None = None, resources: dict[str, Any] | None = None) -> None:
    """A stack with the rendered template's parameters (``given`` values), ``resources`` and
    outputs (an output named like a parameter returns it; the others are ``values`` or a
    placeholder)."""
    rendered_stack = rendered(env.cfg, key)
    parameters = rendered_stack.get("Parameters", {})
    template = {
        "Parameters": parameters,
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
                      **(resources or {})},
        "Outputs": {k: {"Value": {"Ref": k} if k in parameters else values.get(k, f"fake-{k}")}
                    for k in rendered_stack["Outputs"]},
    }
    env.client("cloudformation", region).create_stack(
        StackName=name, TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (given or {}).items()])
    env.outputs[name] = {o["OutputKey"]: o["OutputValue"] for o in env.client("cloudformation", region)
                         .describe_stacks(StackName=name)["Stacks"][0]["Outputs"]}


def dns_record(cfg: Config, key: str, output: str, attribute: str, target: str) -> str:
    """The rendered DNS record output as CloudFormation fills it (``attribute`` -> ``target``)."""
    value = rendered(cfg, key)["Outputs"][output]["Value"]
    return value["Fn::Sub"].replace(f"${{{attribute}}}", target) if isinstance(value, dict) else str(value)


def alarm_names(cfg: Config, key: str) -> list[str]:
    return [r["Properties"]["AlarmName"] for r in rendered(cfg, key)["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"]


def topic_with_subscription(env: FakeEnvironment, name: str, region: str) -> str:
    sns = env.client("sns", region)
    arn = str(sns.create_topic(Name=name)["TopicArn"])
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=env.cfg.monitoring.alarm_emails[0])
    return arn


def api_repository(cfg: Config) -> str:
    """The API repository's name as a first create of the regional stack would make it (the
    stack names it per create: `<stack>-api-<first block of the stack ID>`)."""
    return f"{cfg.stack_name}-api-0a1b2c3d"


def deploy_fake_environment(moto: Moto, cfg: Config) -> FakeEnvironment:
    """Every resource verify, publish-site, release-image and restore-database read, healthy."""
    env = FakeEnvironment(cfg, moto.service_session(cfg.account), moto.server.endpoint)
    ecr = env.client("ecr")
    repository_uri = ecr.create_repository(repositoryName=api_repository(cfg))["repository"]["repositoryUri"]
    digest = push_image(ecr, api_repository(cfg), "first")

    bucket = f"{cfg.edge_stack_name}-site"  # made by the edge stand-in stack, as SiteBucket
    distribution = env.client("cloudfront", EDGE_REGION).create_distribution(DistributionConfig={
        "CallerReference": cfg.edge_stack_name, "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "SiteBucket",
                                              "DomainName": f"{bucket}.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "SiteBucket", "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    })["Distribution"]

    for region, key in ((cfg.region, "app"), (EDGE_REGION, "edge")):
        cloudwatch = env.client("cloudwatch", region)
        for name in alarm_names(cfg, key):
            cloudwatch.put_metric_alarm(AlarmName=name, MetricName="Errors", Namespace="Tracker",
                                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                        ComparisonOperator="GreaterThanThreshold")
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="healthy")

    ec2 = env.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=cfg.network.vpc_cidr)["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=subnet.cidr, AvailabilityZone=f"{cfg.region}{zone}")
               ["Subnet"]["SubnetId"] for subnet, zone in zip(subnets_of(cfg.network.vpc_cidr)[2:], "ab",
                                                                strict=True)]
    database_group = ec2.create_security_group(GroupName=f"{cfg.stack_name}-database", VpcId=vpc,
                                               Description="database")["GroupId"]
    rds = env.client("rds")
    rds.create_db_subnet_group(DBSubnetGroupName=f"{cfg.stack_name}-database", SubnetIds=subnets,
                               DBSubnetGroupDescription="private subnets")
    rds.create_db_cluster(DBClusterIdentifier=cfg.stack_name, Engine="aurora-postgresql",
                          MasterUsername=cfg.database.master_username, MasterUserPassword="not-a-secret-1",
                          ServerlessV2ScalingConfiguration={"MinCapacity": cfg.database.min_acu,
                                                            "MaxCapacity": cfg.database.max_acu},
                          BackupRetentionPeriod=cfg.database.backup_retention_days, StorageEncrypted=True,
                          KmsKeyId=f"arn:aws:kms:{cfg.region}:{cfg.account}:key/fake",
                          EnableCloudwatchLogsExports=["postgresql"],
                          DBSubnetGroupName=f"{cfg.stack_name}-database",
                          VpcSecurityGroupIds=[database_group],
                          Tags=[{"Key": "Environment", "Value": cfg.environment},
                                *cloudformation_tags(cfg.stack_name, "DatabaseCluster")])
    for n in range(cfg.database.instances):
        rds.create_db_instance(DBInstanceIdentifier=f"{cfg.stack_name}-{n}",
                               DBClusterIdentifier=cfg.stack_name, DBInstanceClass="db.serverless",
                               Engine="aurora-postgresql")

    elbv2 = env.client("elbv2")
    target_group = elbv2.create_target_group(Name=f"{cfg.stack_name}-api", Protocol="HTTP", Port=8080,
                                             VpcId=vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=target_group,
                           Targets=[{"Id": f"10.0.0.{n + 10}"} for n in range(cfg.api.min_tasks)])
    ecs = env.client("ecs")
    ecs.create_cluster(clusterName=cfg.stack_name)
    ecs.register_task_definition(family=f"{cfg.stack_name}-api",
                                 containerDefinitions=[{"name": "api", "image": "api", "memory": 512}])
    ecs.create_service(cluster=cfg.stack_name, serviceName=f"{cfg.stack_name}-api",
                       taskDefinition=f"{cfg.stack_name}-api", desiredCount=cfg.api.min_tasks,
                       loadBalancers=[{"targetGroupArn": target_group, "containerName": "api",
                                       "containerPort": 8080}])

    stand_in_stack(env, "app", cfg.stack_name, cfg.region, {
        "ApiRepositoryUri": repository_uri,
        "EcsClusterName": cfg.stack_name,
        "ApiDnsRecord": dns_record(cfg, "app", "ApiDnsRecord", "ApiLoadBalancer.DNSName",
                                   f"{cfg.stack_name}-api-0123456789.{cfg.region}.elb.amazonaws.com"),
        "ApiServiceName": f"{cfg.stack_name}-api",
        "AlarmWarningTopicArn": topic_with_subscription(env, f"{cfg.stack_name}-warning", cfg.region),
        **({"AlarmCriticalTopicArn": topic_with_subscription(env, f"{cfg.stack_name}-critical", cfg.region)}
           if cfg.monitoring.critical_topic else {}),
    }, {"ApiImageDigest": digest, **({"DeletionProtection": "true"} if cfg.protected else {})})
    stand_in_stack(env, "edge", cfg.edge_stack_name, EDGE_REGION, {
        "FrontendBucketName": bucket,
        "DistributionId": distribution["Id"],
        "DistributionDomainName": distribution["DomainName"],
        "FrontendUrl": f"https://{cfg.frontend.domain}",
        "FrontendDnsRecord": dns_record(cfg, "edge", "FrontendDnsRecord", "Distribution.DomainName",
                                        distribution["DomainName"]),
        "AlarmWarningTopicArn": topic_with_subscription(env, f"{cfg.edge_stack_name}-warning", EDGE_REGION),
    }, resources={rendered(cfg, "edge")["Outputs"]["FrontendBucketName"]["Value"]["Ref"]: {
        "Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}})
    return env
