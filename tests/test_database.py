"""Database layer facts, read back from the parsed regional stack of every environment."""

from __future__ import annotations

import ast
import io
import json
import tokenize
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ENVS, assert_rejected, config, props, resources, walk
from tracker_infra.rendering import PARTIALS, ROTATION_FILES

Doc = dict[str, Any]

# The original design's numbers for the database layer, written out here, not read from vars/.
SEED_ACU = {"dev": (0.5, 2), "staging": (1, 4), "production": (2, 16)}
SEED_LOG_RETENTION = {"dev": 7, "staging": 30, "production": 90}
KEY_ARN = {"Fn::GetAtt": ["StackKey", "Arn"]}


def _cluster(doc: Doc) -> Doc:
    return doc["Resources"]["DatabaseCluster"]


@pytest.mark.parametrize("env", ENVS)
def test_serverless_v2_capacity_is_the_seeds(app: dict[str, Doc], env: str) -> None:
    cluster = props(app[env], "DatabaseCluster")
    scaling = cluster["ServerlessV2ScalingConfiguration"]
    assert (scaling["MinCapacity"], scaling["MaxCapacity"]) == SEED_ACU[env]
    assert cluster["Engine"] == "aurora-postgresql"
    assert "EngineMode" not in cluster and "ScalingConfiguration" not in cluster  # those are v1


@pytest.mark.parametrize("env", ENVS)
def test_engine_version_is_not_deprecated_in_cfn_lint_data(app: dict[str, Doc],
                                                           configs: dict[str, Any], env: str) -> None:
    version = props(app[env], "DatabaseCluster")["EngineVersion"]
    assert version == configs[env].database.engine_version
    data = (package_files.files("cfnlint") / "data" / "schemas" / "extensions" / "aws_rds_dbcluster")
    deprecated = json.loads((data / "engine_version_deprecated.json").read_text())
    allowed = json.loads((data / "engine_version.json").read_text())

    def versions(schema: Any, key: str) -> set[str]:
        found: set[str] = set()
        for node in walk(schema):
            if isinstance(node, dict) and node.get("if", {}).get("properties", {}).get(
                    "Engine", {}).get("const") == "aurora-postgresql":
                branch = node["if"] if key == "if" else node["then"]
                found.update(branch["properties"]["EngineVersion"].get("enum", []))
        return found

    assert version in versions(allowed, "then")
    assert version not in versions(deprecated, "if")


@pytest.mark.parametrize("env", ENVS)
def test_writer_and_reader_instances_in_separate_azs(app: dict[str, Doc], env: str) -> None:
    instances = resources(app[env], "AWS::RDS::DBInstance")
    # every environment, dev included: the database spans two AZs (property 5)
    expected = {"DatabaseWriterInstance", "DatabaseReaderInstance"}
    assert set(instances) == expected
    for index, lid in enumerate(["DatabaseWriterInstance", "DatabaseReaderInstance"][:len(expected)]):
        p = instances[lid]["Properties"]
        assert p["DBClusterIdentifier"] == {"Ref": "DatabaseCluster"}
        assert p["DBInstanceClass"] == "db.serverless"
        assert p["Engine"] == "aurora-postgresql"
        assert p["PubliclyAccessible"] is False
        assert p["AvailabilityZone"] == {"Fn::Select": [index, {"Fn::GetAZs": ""}]}


@pytest.mark.parametrize("env", ENVS)
def test_database_lives_in_the_private_subnets_of_both_azs(app: dict[str, Doc], env: str) -> None:
    doc = app[env]
    group = props(doc, "DatabaseSubnetGroup")
    assert group["SubnetIds"] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
    assert props(doc, "DatabaseCluster")["DBSubnetGroupName"] == {"Ref": "DatabaseSubnetGroup"}
    # Those subnets route to NAT, never to the internet gateway.
    for n in (1, 2):
        assoc = props(doc, f"PrivateSubnet{n}RouteTableAssociation")
        table = assoc["RouteTableId"]["Ref"]
        routes = [r["Properties"] for r in resources(doc, "AWS::EC2::Route").values()
                  if r["Properties"]["RouteTableId"] == {"Ref": table}]
        assert routes and all("NatGatewayId" in r and "GatewayId" not in r for r in routes)


@pytest.mark.parametrize("env", ENVS)
def test_database_is_reachable_only_from_the_api_group(app: dict[str, Doc], env: str) -> None:
    doc = app[env]
    assert props(doc, "DatabaseCluster")["VpcSecurityGroupIds"] == [{"Ref": "DatabaseSecurityGroup"}]
    assert "SecurityGroupIngress" not in props(doc, "DatabaseSecurityGroup")
    ingress = [r["Properties"] for r in resources(doc, "AWS::EC2::SecurityGroupIngress").values()
               if r["Properties"]["GroupId"] == {"Ref": "DatabaseSecurityGroup"}]
    assert len(ingress) == 1
    rule = {k: v for k, v in ingress[0].items() if k != "Description"}
    assert rule == {"GroupId": {"Ref": "DatabaseSecurityGroup"},
                    "SourceSecurityGroupId": {"Ref": "ApiSecurityGroup"},
                    "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432}
    # The only other thing in a VPC that talks to the database, the rotation function, runs in
    # the API group too: no extra ingress rule exists for it.
    assert props(doc, "DatabaseRotationFunction")["VpcConfig"]["SecurityGroupIds"] == [
        {"Ref": "ApiSecurityGroup"}]


@pytest.mark.parametrize("env", ENVS)
def test_nothing_in_the_database_tier_gets_a_public_address(app: dict[str, Doc], env: str) -> None:
    doc = app[env]
    for r in resources(doc, "AWS::RDS::DBInstance").values():
        assert r["Properties"]["PubliclyAccessible"] is False
    assert props(doc, "DatabaseRotationFunction")["VpcConfig"]["SubnetIds"] == [
        {"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
    for n in (1, 2):
        assert props(doc, f"PrivateSubnet{n}")["MapPublicIpOnLaunch"] is False


@pytest.mark.parametrize("env", ENVS)
def test_storage_secret_logs_and_insights_use_the_rotating_customer_key(app: dict[str, Doc],
                                                                        env: str) -> None:
    doc = app[env]
    cluster = props(doc, "DatabaseCluster")
    assert cluster["StorageEncrypted"] is True
    assert cluster["KmsKeyId"] == KEY_ARN
    assert props(doc, "DatabaseSecret")["KmsKeyId"] == KEY_ARN
    assert props(doc, "DatabaseRotationFunction")["KmsKeyArn"] == KEY_ARN
    assert props(doc, "DatabaseLogGroup")["KmsKeyId"] == KEY_ARN
    for r in resources(doc, "AWS::RDS::DBInstance").values():
        assert r["Properties"]["PerformanceInsightsKMSKeyId"] == KEY_ARN
    key = doc["Resources"]["StackKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("env", ENVS)
def test_backups_point_in_time_and_snapshot_tags(app: dict[str, Doc], configs: dict[str, Any],
                                                 env: str) -> None:
    cluster = props(app[env], "DatabaseCluster")
    assert cluster["BackupRetentionPeriod"] >= 7
    assert cluster["BackupRetentionPeriod"] == configs[env].database.backup_retention_days
    assert cluster["CopyTagsToSnapshot"] is True
    assert "PreferredBackupWindow" in cluster
    assert props(app["production"], "DatabaseCluster")["BackupRetentionPeriod"] == 14


@pytest.mark.parametrize("env", ENVS)
def test_deletion_policies_keep_a_snapshot_outside_dev(app: dict[str, Doc], env: str) -> None:
    cluster = _cluster(app[env])
    expected = "Delete" if env == "dev" else "Snapshot"
    assert cluster["DeletionPolicy"] == expected
    assert cluster["UpdateReplacePolicy"] == expected
    assert cluster["Properties"]["DeletionProtection"] == (
        {"Fn::If": ["DeletionProtected", True, False]} if env != "dev" else False)
    # RDS's own name for it: kept, it would stop the stack's next create (AlreadyExists)
    assert app[env]["Resources"]["DatabaseLogGroup"]["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("env", ENVS)
def test_postgresql_log_goes_to_the_name_rds_uses_with_the_env_retention(app: dict[str, Doc],
                                                                         env: str) -> None:
    doc = app[env]
    cluster = _cluster(doc)
    assert cluster["Properties"]["EnableCloudwatchLogsExports"] == ["postgresql"]
    identifier = cluster["Properties"]["DBClusterIdentifier"]
    assert identifier == f"tracker-{env}"
    group = props(doc, "DatabaseLogGroup")
    assert group["LogGroupName"] == f"/aws/rds/cluster/{identifier}/postgresql"
    assert group["RetentionInDays"] == SEED_LOG_RETENTION[env]
    assert cluster["DependsOn"] in ("DatabaseLogGroup", ["DatabaseLogGroup"])


@pytest.mark.parametrize("env", ENVS)
def test_secret_holds_the_connection_keys_and_the_cluster_reads_it(app: dict[str, Doc],
                                                                   configs: dict[str, Any],
                                                                   env: str) -> None:
    doc = app[env]
    generated = props(doc, "DatabaseSecret")["GenerateSecretString"]
    template = json.loads(generated["SecretStringTemplate"])
    assert template == {"username": configs[env].database.master_username,
                        "dbname": configs[env].database.name, "engine": "postgres", "port": 5432}
    assert generated["GenerateStringKey"] == "password"
    assert generated["PasswordLength"] >= 20
    for char in "\"@/ ":  # RDS refuses these in a master password
        assert char in generated["ExcludeCharacters"]
    # host (and the rest) arrive through the attachment to the cluster
    attachment = props(doc, "DatabaseSecretAttachment")
    assert attachment == {"SecretId": {"Ref": "DatabaseSecret"},
                          "TargetId": {"Ref": "DatabaseCluster"}, "TargetType": "AWS::RDS::DBCluster"}
    cluster = props(doc, "DatabaseCluster")
    assert cluster["DatabaseName"] == configs[env].database.name
    for prop, key in (("MasterUsername", "username"), ("MasterUserPassword", "password")):
        assert cluster[prop] == {"Fn::Sub": "{{resolve:secretsmanager:${DatabaseSecret}:"
                                            f"SecretString:{key}}}}}"}
    assert "ManageMasterUserPassword" not in cluster


FUNCTION_ARN = {"Fn::GetAtt": ["DatabaseRotationFunction", "Arn"]}
CLUSTER_ARN = {"Fn::GetAtt": ["DatabaseCluster", "DBClusterArn"]}


@pytest.mark.parametrize("env", ENVS)
def test_both_secrets_rotate_every_30_days_with_the_stacks_own_function(app: dict[str, Doc],
                                                                       env: str) -> None:
    doc = app[env]
    assert "Transform" not in doc  # no hosted rotation: nothing to expand
    rotations = resources(doc, "AWS::SecretsManager::RotationSchedule")
    assert set(rotations) == {"DatabaseSecretRotation", "ApiDatabaseSecretRotation"}
    for secret in ("DatabaseSecret", "ApiDatabaseSecret"):
        rotation = rotations[f"{secret}Rotation"]
        # the attachment's Ref is the secret's ARN, and waits for the host key
        assert rotation["Properties"]["SecretId"] == {"Ref": f"{secret}Attachment"}
        assert props(doc, f"{secret}Attachment")["SecretId"] == {"Ref": secret}
        assert rotation["Properties"]["RotationRules"]["AutomaticallyAfterDays"] == 30
        assert rotation["Properties"]["RotateImmediatelyOnUpdate"] is False
        assert rotation["Properties"]["RotationLambdaARN"] == FUNCTION_ARN
        assert "HostedRotationLambda" not in rotation["Properties"]
        assert {"DatabaseWriterInstance", f"{secret}RotationPermission"} <= set(rotation["DependsOn"])
        # Secrets Manager may call the function for this secret, from this account, only
        assert props(doc, f"{secret}RotationPermission") == {
            "Action": "lambda:InvokeFunction", "FunctionName": FUNCTION_ARN,
            "Principal": "secretsmanager.amazonaws.com", "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": {"Ref": secret}}
    assert set(resources(doc, "AWS::Lambda::Permission")) == {
        "DatabaseSecretRotationPermission", "ApiDatabaseSecretRotationPermission"}


def _statements(doc: Doc, role: str) -> dict[str, dict[str, Any]]:
    (policy,) = props(doc, role)["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


@pytest.mark.parametrize("env", ENVS)
def test_the_rotation_functions_role_reaches_the_two_secrets_the_cluster_and_its_log_group_only(
        app: dict[str, Doc], env: str) -> None:
    doc = app[env]
    role = props(doc, "DatabaseRotationFunctionRole")
    assert "ManagedPolicyArns" not in role
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = _statements(doc, "DatabaseRotationFunctionRole")
    assert sorted(statements) == ["DescribeTheNetworkWorksOnlyOnEveryResource",
                                  "EncryptAndDecryptSecretsWithTheStackKeyOnly",
                                  "MakeInterfacesInItsSubnetsAndGroupOnly",
                                  "ManageInterfacesInThisAccountAndRegion",
                                  "RandomPasswordsHaveNoResource", "RotateBothDatabaseSecretsOnly",
                                  "RunSqlOnThisClusterOnly", "WriteItsLogGroup"]
    secrets = statements["RotateBothDatabaseSecretsOnly"]
    assert secrets["Resource"] == [{"Ref": "DatabaseSecret"}, {"Ref": "ApiDatabaseSecret"}]
    assert sorted(secrets["Action"]) == [f"secretsmanager:{a}" for a in (
        "DescribeSecret", "GetSecretValue", "PutSecretValue", "UpdateSecretVersionStage")]
    assert statements["RandomPasswordsHaveNoResource"]["Action"] == "secretsmanager:GetRandomPassword"
    assert statements["RunSqlOnThisClusterOnly"]["Resource"] == CLUSTER_ARN
    _the_network_interfaces_are_its_own(statements)
    kms = statements["EncryptAndDecryptSecretsWithTheStackKeyOnly"]
    assert (kms["Resource"], sorted(kms["Action"])) == (KEY_ARN, ["kms:Decrypt", "kms:GenerateDataKey"])
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": {
        "Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}}
    assert statements["WriteItsLogGroup"]["Resource"] == {"Fn::GetAtt": ["DatabaseRotationLogGroup", "Arn"]}


def _the_network_interfaces_are_its_own(statements: dict[str, dict[str, Any]]) -> None:
    ec2 = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:"
    make = statements["MakeInterfacesInItsSubnetsAndGroupOnly"]
    assert make["Action"] == "ec2:CreateNetworkInterface"
    assert make["Resource"] == [{"Fn::Sub": f"{ec2}{r}"} for r in (
        "network-interface/*", "subnet/${PrivateSubnet1}", "subnet/${PrivateSubnet2}",
        "security-group/${ApiSecurityGroup}")]
    manage = statements["ManageInterfacesInThisAccountAndRegion"]
    assert sorted(manage["Action"]) == ["ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface",
                                        "ec2:UnassignPrivateIpAddresses"]
    assert manage["Resource"] == {"Fn::Sub": f"{ec2}network-interface/*"}
    assert statements["DescribeTheNetworkWorksOnlyOnEveryResource"]["Action"] == [
        "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]  # read only


@pytest.mark.parametrize("env", ENVS)
def test_the_rotation_functions_code_is_its_package_folder(app: dict[str, Doc], env: str) -> None:
    """A local Code folder beside the template, which sam deploy zips (the SAM CLI packages an
    AWS::Lambda::Function's Code as it does a CodeUri); too large for ZipFile."""
    function = props(app[env], "DatabaseRotationFunction")
    assert (function["Code"], function["Handler"]) == ("database-rotation/", "database_rotation.handler")
    package = Path(__file__).parents[1] / "rendered" / env / "database-rotation"
    assert sorted(p.name for p in package.iterdir()) == sorted(ROTATION_FILES)
    assert sum(len((package / name).read_bytes()) for name in ROTATION_FILES) > 4096
    exclude = props(app[env], "DatabaseSecret")["GenerateSecretString"]["ExcludeCharacters"]
    assert function["Environment"]["Variables"] == {
        "CLUSTER_ARN": CLUSTER_ARN, "EXCLUDE_CHARACTERS": exclude}


@pytest.mark.parametrize("env", ENVS)
def test_secret_arn_is_exported(app: dict[str, Doc], env: str) -> None:
    out = app[env]["Outputs"]["DatabaseSecretArn"]
    assert out["Value"] == {"Ref": "DatabaseSecret"}
    assert out["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-DatabaseSecretArn"}
    assert "VpcId" in app[env]["Outputs"]


# (change to staging.yaml, key path in the message, words the message must hold)
ACU_REJECTIONS = [
    ({"database": {"min_acu": 0.25}}, "database.min_acu", "0.25 ACU is not allowed"),
    ({"database": {"min_acu": 0}}, "database.min_acu", "0.5 to 256 in steps of 0.5"),
    ({"database": {"max_acu": 300}}, "database.max_acu", "300 ACU is not allowed"),
    ({"database": {"max_acu": 3.7}}, "database.max_acu", "in steps of 0.5"),
    ({"database": {"min_acu": 1.25}}, "database.min_acu", "in steps of 0.5"),
    ({"database": {"min_acu": 8, "max_acu": 4}}, "database.max_acu",
     "max_acu 4.0 is below min_acu 8.0 (allowed: max_acu >= min_acu)"),
]


@pytest.mark.parametrize(("change", "key", "words"), ACU_REJECTIONS,
                         ids=[f"{r[1]}={list(r[0]['database'].values())}" for r in ACU_REJECTIONS])
def test_bad_capacity_is_one_line_exit_2_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], key: str,
        words: str) -> None:
    assert_rejected(tmp_path, capsys, {"staging.yaml": change}, "staging.yaml", key, words)


def test_the_recovery_runbooks_table_matches_each_environments_vars(configs: dict[str, Any]) -> None:
    """docs/disaster-recovery.md's "What is kept" rows are read against vars, column by column."""
    text = (Path(__file__).parents[1] / "docs" / "disaster-recovery.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| | dev "))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")][1:]
            for line in text.splitlines() if line.startswith("| ") and not line.startswith("| |")}
    for env, instances, lifecycle in zip(columns, rows["database instances (`database.instances`)"],
                                         rows["`lifecycle`"], strict=True):
        cfg = configs[env]
        assert lifecycle == cfg.lifecycle, env
        assert instances == ("writer + reader, 2 AZs" if cfg.database.instances == 2 else
                             f"{cfg.database.instances} writer"), env


@pytest.mark.parametrize("env", ENVS)
def test_the_api_user_is_made_through_the_data_api_before_its_rotation(app: dict[str, Doc], env: str) -> None:
    doc = app[env]
    assert props(doc, "DatabaseCluster")["EnableHttpEndpoint"] is True
    function = props(doc, "DatabaseUserFunction")
    code = function["Code"]["ZipFile"]
    # inline code is limited to 4,096 characters (AWS::Lambda::Function Code, ZipFile)
    assert len(code) <= 4096
    # the source without its comments: the same program, no comment left
    source = (PARTIALS / "database_user.py").read_text(encoding="utf-8")
    assert ast.dump(ast.parse(code)) == ast.dump(ast.parse(source))
    assert not [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.COMMENT]
    assert "# " in source and len(code) < len(source)
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "DatabaseUserLogGroup"}}
    assert "LogGroupName" not in props(doc, "DatabaseUserLogGroup")  # nothing kept has a fixed name
    assert "FunctionName" not in function
    user = doc["Resources"]["DatabaseUser"]
    assert user["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["DatabaseUserFunction", "Arn"]}
    assert "DatabaseUser" in doc["Resources"]["ApiDatabaseSecretRotation"]["DependsOn"]
    statements = props(doc, "DatabaseUserFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]
    sql = next(s for s in statements if s["Action"] == "rds-data:ExecuteStatement")
    assert sql["Resource"] == {"Fn::GetAtt": ["DatabaseCluster", "DBClusterArn"]}


@pytest.mark.parametrize("env", ENVS)
def test_the_rotation_function_logs_into_a_log_group_of_the_stack(app: dict[str, Doc], env: str) -> None:
    """Lambda writes to /aws/lambda/<function name>, creating it (no retention, no key, left
    behind by a teardown) unless it exists (Lambda Developer Guide, "Sending Lambda function logs
    to CloudWatch Logs"); the stack makes it first, under that name."""
    doc = app[env]
    function = props(doc, "DatabaseRotationFunction")
    group = doc["Resources"]["DatabaseRotationLogGroup"]
    assert group["Properties"]["LogGroupName"] == f"/aws/lambda/{function['FunctionName']}"
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "DatabaseRotationLogGroup"}}
    assert group["DeletionPolicy"] == "Delete"  # a fixed name: not kept
    assert group["Properties"]["KmsKeyId"] == KEY_ARN
    # not the hosted functions' names, which an update deletes only after creating this one
    assert function["FunctionName"] not in (f"{config(env).stack_name}-database-rotation",
                                            f"{config(env).stack_name}-api-database-rotation")
