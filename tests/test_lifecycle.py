"""A stack's whole life on AWS, as rules over the rendered templates of every environment.

Each rule is a checker that returns what is wrong (empty when nothing is), run on every rendered
template, and run once more on a copy with the fault planted, to prove it can fail:

- Create order: whatever reads a value another resource fills in later depends on it, directly or
  through Ref, GetAtt, Sub and DependsOn: an ECS service on the attachment that writes the host key
  into the secret it reads, on the cluster's writer, and on the NAT route and route table
  association of every subnet it runs in (image pull); a rotation schedule likewise, for its
  function's subnets, and on the Lambda permission that lets Secrets Manager call the function.
- Rollback of a failed create: no resource with a fixed name (a create-only name or identifier set
  in the template) is kept by DeletionPolicy Retain, so a retry never finds a leftover of the same
  name; no secret has a fixed name (deleted secrets keep theirs for the recovery window); with the
  first-create parameter (DeletionProtection=false) no deletion protection is on.
- Rotation: the API reads its own user's secret (alternating users), can re-read it, and no
  rotation runs as a side effect of a deploy.
- The container: an unprivileged port, a non-root user, a read-only root file system, and each
  writable path it needs (docs/api-contract.md) a task volume.
- Lifecycle from one vars key: no template decides anything from the environment's name.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.helpers import ENVS, config, config_with, render, resources, walk
from tracker_infra.cfn_yaml import references
from tracker_infra.rendering import ROOT
from tracker_infra.review.template import Template, ref_target

Doc = dict[str, Any]
ATTACHMENT_KEYS = {"host", "port", "engine", "dbClusterIdentifier"}  # SecretTargetAttachment writes
WRITABLE_PATHS = {"/tmp"}  # noqa: S108 - the API contract's one writable path (docs/api-contract.md)


@pytest.fixture(scope="module")
def docs() -> dict[str, Doc]:
    """'<env>/<stack>' -> parsed template, for both stacks of every environment."""
    return {f"{env}/{key}": render(config(env), key) for env in ENVS for key in ("app", "edge")}


def depends_on(doc: Doc, logical_id: str) -> set[str]:
    """Every resource ``logical_id`` waits for: Ref, GetAtt, Sub and DependsOn, transitively
    (the direct edges are the review's reference graph, tracker_infra/review/template.py)."""
    graph = Template(doc)
    seen: set[str] = set()
    todo = [logical_id]
    while todo:
        current = todo.pop()
        for found in (graph.refs[current] | graph.depends[current]) - seen:
            seen.add(found)
            todo.append(found)
    return seen


def _egress_of_subnet(doc: Doc, subnet: str) -> set[str]:
    """The association of ``subnet`` to its route table and that table's default route."""
    needed = set()
    for lid, assoc in resources(doc, "AWS::EC2::SubnetRouteTableAssociation").items():
        if ref_target(assoc["Properties"]["SubnetId"]) == subnet:
            needed.add(lid)
            table = ref_target(assoc["Properties"]["RouteTableId"])
            needed |= {r for r, route in resources(doc, "AWS::EC2::Route").items()
                       if ref_target(route["Properties"]["RouteTableId"]) == table
                       and route["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"}
    return needed


def _filled_later(doc: Doc, secret: str, keys: set[str]) -> set[str]:
    """What must exist before ``keys`` of ``secret`` can be read: the attachment that writes
    them and the writer instance of the cluster it targets."""
    if not keys & ATTACHMENT_KEYS:
        return set()
    needed = set()
    for lid, attachment in resources(doc, "AWS::SecretsManager::SecretTargetAttachment").items():
        if ref_target(attachment["Properties"]["SecretId"]) == secret:
            needed.add(lid)
            cluster = ref_target(attachment["Properties"]["TargetId"])
            instances = {i: r for i, r in resources(doc, "AWS::RDS::DBInstance").items()
                         if ref_target(r["Properties"]["DBClusterIdentifier"]) == cluster}
            needed |= {i for i, r in instances.items() if r["Properties"].get("PromotionTier", 0) == 0}
    if not needed:
        needed.add(f"<an attachment writing {sorted(keys & ATTACHMENT_KEYS)} into {secret}>")
    return needed


def _user_made(doc: Doc, secret: str) -> set[str]:
    """What makes the database user of ``secret``: the custom resources given the secret (or its
    attachment). An alternating-users rotation logs in as that user when its schedule is created
    (RotateSecret tests the configuration by running the function's testSecret step, Secrets
    Manager User Guide, "Rotation by Lambda function")."""
    attachments = resources(doc, "AWS::SecretsManager::SecretTargetAttachment")
    names = {secret} | {lid for lid, a in attachments.items()
                        if ref_target(a["Properties"]["SecretId"]) == secret}
    makers = {lid for lid, r in doc["Resources"].items()
              if r["Type"].startswith("Custom::") and names & set(references(r.get("Properties", {})))}
    return makers or {f"<a resource that makes the database user of {secret}>"}


def _secret_keys(task: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(secret logical id, JSON key) of every ECS secret of the form !Sub "${Secret}:key::"."""
    for container in task["Properties"]["ContainerDefinitions"]:
        for secret in container.get("Secrets", []):
            text = secret["ValueFrom"].get("Fn::Sub", "") if isinstance(secret["ValueFrom"], dict) else ""
            match = re.fullmatch(r"\$\{(\w+)\}:(\w+)::", text)
            assert match, f"{secret['Name']}: ValueFrom {secret['ValueFrom']!r} is not ${{Secret}}:key::"
            yield match[1], match[2]


def _rotation_needs(doc: Doc, rotation: dict[str, Any]) -> set[str]:
    """What a rotation schedule's create waits for: Secrets Manager runs its function's testSecret
    step, which logs in to the database (the host key, the writer) from the function's subnets
    (their egress), as the secret's own user when it alternates users (masterarn in the secret),
    and may call the function only once a Lambda permission for this secret exists."""
    secret = ref_target(rotation["Properties"]["SecretId"])
    if doc["Resources"][secret]["Type"] == "AWS::SecretsManager::SecretTargetAttachment":
        secret = ref_target(doc["Resources"][secret]["Properties"]["SecretId"])
    need = _filled_later(doc, secret, {"host"})
    if "masterarn" in json.dumps(doc["Resources"][secret]["Properties"].get("GenerateSecretString", {})):
        need |= _user_made(doc, secret)
    function = ref_target(rotation["Properties"]["RotationLambdaARN"])
    vpc = doc["Resources"][function]["Properties"].get("VpcConfig", {})
    for subnet in set(references(vpc.get("SubnetIds", []))):
        need |= _egress_of_subnet(doc, subnet)
    permissions = {lid for lid, p in resources(doc, "AWS::Lambda::Permission").items()
                   if ref_target(p["Properties"]["FunctionName"]) == function
                   and ref_target(p["Properties"].get("SourceArn")) == secret}
    return need | (permissions or {f"<a Lambda permission for Secrets Manager to rotate {secret}>"})


def create_order_problems(doc: Doc) -> list[str]:
    """Readers of values filled in later that do not wait for them."""
    problems = []
    readers: dict[str, set[str]] = {}
    for lid, service in resources(doc, "AWS::ECS::Service").items():
        need: set[str] = set()
        task = doc["Resources"][ref_target(service["Properties"]["TaskDefinition"])]
        by_secret: dict[str, set[str]] = {}
        for secret, key in _secret_keys(task):
            by_secret.setdefault(secret, set()).add(key)
        for secret, keys in by_secret.items():
            need |= _filled_later(doc, secret, keys)
        vpc = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        for subnet in vpc["Subnets"]:
            need |= _egress_of_subnet(doc, ref_target(subnet))
        readers[lid] = need
    for lid, rotation in resources(doc, "AWS::SecretsManager::RotationSchedule").items():
        readers[lid] = _rotation_needs(doc, rotation)
    for lid, need in readers.items():
        missing = need - depends_on(doc, lid)
        if missing:
            problems.append(f"{lid} does not wait for {', '.join(sorted(missing))}")
    return problems


def _name_properties(resource: dict[str, Any], region: str) -> dict[str, Any]:
    """Create-only name or identifier properties the template sets. Wider on purpose than the
    review's ``names`` (replacement.create_only): any primary identifier counts, because a
    leftover collides with a retry by its identity (a record set's Name, HostedZoneId, Type),
    whether or not a change of it would replace the resource."""
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource["Type"]).schema
    except Exception:  # noqa: BLE001 - SAM and custom types have no provider schema
        schema = {"primaryIdentifier": ["/properties/FunctionName"]} if (
            resource["Type"] == "AWS::Serverless::Function") else {}
    names = {p.rsplit("/", 1)[1] for p in schema.get("primaryIdentifier", [])}
    names |= {p.split("/")[2] for p in schema.get("createOnlyProperties", [])
              if p.count("/") == 2 and p.endswith(("Name", "Identifier"))}
    props = resource.get("Properties", {})
    return {n: props[n] for n in sorted(names) if n in props}


def _per_create(value: Any) -> bool:
    """A name built from the stack's ID (m.with_create_id): new on every create of the stack."""
    return any(isinstance(node, dict) and node.get("Ref") == "AWS::StackId" for node in walk(value))


def _fixed_names(resource: dict[str, Any], region: str) -> list[str]:
    """Name properties set to a value of the template's own: not a reference to another resource
    and not built from the stack's ID. The same name comes back on the next create."""
    return [n for n, value in _name_properties(resource, region).items() if not (
        isinstance(value, dict) and set(value) & {"Ref", "Fn::GetAtt", "Fn::ImportValue"}
        or _per_create(value))]


def rollback_problems(doc: Doc, region: str) -> list[str]:
    """What would make a failed create's rollback fail, or its retry collide."""
    problems = []
    for lid, resource in doc["Resources"].items():
        fixed = _fixed_names(resource, region)
        if fixed and resource.get("DeletionPolicy") == "Retain":
            problems.append(f"{lid}: fixed {', '.join(fixed)} with DeletionPolicy Retain survives a "
                            "rolled-back create (use RetainExceptOnCreate)")
        if resource["Type"] == "AWS::SecretsManager::Secret" and "Name" in resource.get("Properties", {}):
            problems.append(f"{lid}: a named secret keeps its name for the recovery window after "
                            "a rollback")
    first_create = resolve_conditions(doc, {"DeletionProtection": "false"})
    for lid, resource in resources(first_create).items():
        props = resource.get("Properties", {})
        if props.get("DeletionProtection") not in (None, False, "false"):
            problems.append(f"{lid}: DeletionProtection is on during the first create")
        for attribute in props.get("LoadBalancerAttributes", []):
            if attribute["Key"] == "deletion_protection.enabled" and attribute["Value"] != "false":
                problems.append(f"{lid}: deletion_protection.enabled is on during the first create")
    return problems


def resolve_conditions(doc: Doc, parameters: dict[str, str]) -> Doc:
    """A copy of ``doc`` with Fn::If resolved for these parameter values (others: defaults)."""
    values = {name: p.get("Default") for name, p in doc.get("Parameters", {}).items()} | parameters

    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, value), = node.items()
            if key == "Ref" and value in values:
                return values[value]
            if key == "Fn::Equals":
                return evaluate(value[0]) == evaluate(value[1])
            if key == "Fn::Not":
                return not evaluate(value[0])
            if key == "Condition":
                return evaluate(doc["Conditions"][value])
        return node

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if list(node) == ["Fn::If"]:
                name, yes, no = node["Fn::If"]
                return walk(yes if evaluate(doc["Conditions"][name]) else no)
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(doc)


# --- the rules, on every rendered template ----------------------------------------------------


@pytest.mark.parametrize("name", [f"{e}/{k}" for e in ENVS for k in ("app", "edge")])
def test_readers_wait_for_what_is_filled_in_later(docs: dict[str, Doc], name: str) -> None:
    assert create_order_problems(docs[name]) == []


@pytest.mark.parametrize("name", [f"{e}/{k}" for e in ENVS for k in ("app", "edge")])
def test_a_failed_create_rolls_back_clean_and_can_be_retried(docs: dict[str, Doc], name: str) -> None:
    env, key = name.split("/")
    region = config(env).region if key == "app" else "us-east-1"
    assert rollback_problems(docs[name], region) == []


def test_the_rules_see_the_resources_they_are_about(docs: dict[str, Doc]) -> None:
    """Guards the guards: the walk reaches what the rules talk about in every regional stack."""
    for env in ENVS:
        doc = docs[f"{env}/app"]
        service = depends_on(doc, "ApiService")
        assert {"ApiDatabaseSecretAttachment", "DatabaseWriterInstance", "PrivateDefaultRoute1",
                "PrivateDefaultRoute2", "PrivateSubnet1RouteTableAssociation"} <= service
        assert _fixed_names(doc["Resources"]["DatabaseLogGroup"], "us-east-1") == ["LogGroupName"]
        assert _fixed_names(doc["Resources"]["ApiLogGroup"], "us-east-1") == []  # per create
        assert list(_name_properties(doc["Resources"]["ApiLogGroup"], "us-east-1")) == ["LogGroupName"]
        assert _fixed_names(doc["Resources"]["DatabaseCluster"], "us-east-1") == [
            "DBClusterIdentifier", "DatabaseName"]
        assert _fixed_names(doc["Resources"]["DatabaseSubnetGroup"], "us-east-1") == []


# --- each rule fails on a planted fault ------------------------------------------------------


def _planted(doc: Doc, change: Any) -> Doc:
    broken = copy.deepcopy(doc)
    change(broken["Resources"])
    return broken


def test_create_order_rule_flags_a_service_that_does_not_wait(docs: dict[str, Doc]) -> None:
    doc = docs["production/app"]

    def drop_waits(res: Doc) -> None:
        res["ApiService"]["DependsOn"] = ["ApiHttpsListener"]
    problems = create_order_problems(_planted(doc, drop_waits))
    assert problems == ["ApiService does not wait for ApiDatabaseSecretAttachment, DatabaseWriterInstance, "
                        "PrivateDefaultRoute1, PrivateDefaultRoute2, PrivateSubnet1RouteTableAssociation, "
                        "PrivateSubnet2RouteTableAssociation"]

    def drop_rotation_wait(res: Doc) -> None:
        res["DatabaseSecretRotation"]["DependsOn"].remove("DatabaseWriterInstance")
    assert create_order_problems(_planted(doc, drop_rotation_wait)) == [
        "DatabaseSecretRotation does not wait for DatabaseWriterInstance"]

    def rotate_before_the_user_exists(res: Doc) -> None:
        res["ApiDatabaseSecretRotation"]["DependsOn"].remove("DatabaseUser")
    assert create_order_problems(_planted(doc, rotate_before_the_user_exists)) == [
        "ApiDatabaseSecretRotation does not wait for DatabaseUser"]

    def no_user_maker(res: Doc) -> None:
        del res["DatabaseUser"]
        res["ApiDatabaseSecretRotation"]["DependsOn"].remove("DatabaseUser")
    assert create_order_problems(_planted(doc, no_user_maker)) == [
        "ApiDatabaseSecretRotation does not wait for <a resource that makes the database user of "
        "ApiDatabaseSecret>"]

    def call_before_leave(res: Doc) -> None:
        res["DatabaseSecretRotation"]["DependsOn"].remove("DatabaseSecretRotationPermission")
    assert create_order_problems(_planted(doc, call_before_leave)) == [
        "DatabaseSecretRotation does not wait for DatabaseSecretRotationPermission"]


def test_rollback_rule_flags_retained_names_named_secrets_and_protection(docs: dict[str, Doc]) -> None:
    doc = docs["staging/app"]

    def retain(res: Doc) -> None:
        res["DatabaseLogGroup"]["DeletionPolicy"] = "Retain"
        res["ApiDatabaseSecret"]["Properties"]["Name"] = "tracker-staging/api"
        res["DatabaseCluster"]["Properties"]["DeletionProtection"] = True
    problems = rollback_problems(_planted(doc, retain), "us-east-1")
    assert sorted(p.split(":")[0] for p in problems) == ["ApiDatabaseSecret", "DatabaseCluster",
                                                          "DatabaseLogGroup"]
    # an unnamed bucket may be retained: a retry creates a new name
    assert doc["Resources"]["AlbAccessLogBucket"]["DeletionPolicy"] == "Retain"


def test_protection_is_on_by_default_and_off_only_for_a_first_create(docs: dict[str, Doc]) -> None:
    for env in ("staging", "production"):
        doc = docs[f"{env}/app"]
        assert doc["Parameters"]["DeletionProtection"]["Default"] == "true"
        normal = resolve_conditions(doc, {})
        assert normal["Resources"]["DatabaseCluster"]["Properties"]["DeletionProtection"] is True
        attributes = {a["Key"]: a["Value"] for a in
                      normal["Resources"]["ApiLoadBalancer"]["Properties"]["LoadBalancerAttributes"]}
        assert attributes["deletion_protection.enabled"] == "true"
    assert "DeletionProtection" not in docs["dev/app"].get("Parameters", {})


# --- rotation ----------------------------------------------------------------------------------


def _the_api_user_is_its_own(doc: Doc, env: str) -> None:
    """The API's secret names its own user, not the master, and the master secret rotates it."""
    generate = doc["Resources"]["ApiDatabaseSecret"]["Properties"]["GenerateSecretString"]
    template = generate["SecretStringTemplate"]
    assert '"masterarn": "${DatabaseSecret}"' in template["Fn::Sub"]
    assert f'"username": "{config(env).database.app_username}"' in template["Fn::Sub"]
    assert config(env).database.app_username != config(env).database.master_username


@pytest.mark.parametrize("env", ENVS)
def test_a_rotation_never_cuts_off_a_running_task(docs: dict[str, Doc], env: str) -> None:
    """The API logs in as its own user, whose rotation alternates two users (the previous
    credentials keep working until the next rotation), and can re-read the secret with its task
    role when a login fails (docs/api-contract.md). No rotation runs on create or update."""
    doc = docs[f"{env}/app"]
    task = doc["Resources"]["ApiTaskDefinition"]
    secrets = {secret for secret, _ in _secret_keys(task)}
    assert secrets == {"ApiDatabaseSecret"}  # never the master secret
    _the_api_user_is_its_own(doc, env)
    container = task["Properties"]["ContainerDefinitions"][0]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["DATABASE_SECRET_ARN"] == {"Ref": "ApiDatabaseSecret"}
    role = doc["Resources"]["ApiTaskRole"]["Properties"]
    reads = [s["Resource"] for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]
             if s["Action"] == "secretsmanager:GetSecretValue"]
    assert reads == [{"Ref": "ApiDatabaseSecret"}]
    for schedule in resources(doc, "AWS::SecretsManager::RotationSchedule").values():
        assert schedule["Properties"]["RotateImmediatelyOnUpdate"] is False


# --- the container ------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_the_container_runs_unprivileged_with_its_writable_paths_as_volumes(docs: dict[str, Doc],
                                                                            env: str) -> None:
    doc = docs[f"{env}/app"]
    for lid, task in resources(doc, "AWS::ECS::TaskDefinition").items():
        volumes = {v["Name"] for v in task["Properties"].get("Volumes", [])}
        for container in task["Properties"]["ContainerDefinitions"]:
            assert container["ReadonlyRootFilesystem"] is True, lid
            assert container.get("Privileged") is False, lid
            user = str(container.get("User", "root")).split(":")[0]
            assert user not in ("root", "0") and user.isdigit(), f"{lid}: user {user}"
            for mapping in container.get("PortMappings", []):
                assert mapping["ContainerPort"] >= 1024, f"{lid}: port {mapping['ContainerPort']}"
            for mount in container.get("MountPoints", []):
                assert mount["SourceVolume"] in volumes, lid
    api = doc["Resources"]["ApiTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert {m["ContainerPath"] for m in api["MountPoints"] if not m["ReadOnly"]} == WRITABLE_PATHS
    port = config(env).api.container_port
    target_group = doc["Resources"]["ApiTargetGroup"]["Properties"]
    assert target_group["Port"] == port >= 1024


def test_the_contract_names_the_same_port_paths_and_variables() -> None:
    contract = (ROOT / "docs" / "api-contract.md").read_text()
    for needed in ["8080", "/health", "/tmp", "DATABASE_SECRET_ARN", "DATABASE_HOST",
                   "DATABASE_PASSWORD", "1000:1000", "28P01"]:
        assert needed in contract, needed
    task = render(config("staging"))["Resources"]["ApiTaskDefinition"]["Properties"]
    container = task["ContainerDefinitions"][0]
    for variable in [e["Name"] for e in container["Environment"]] + [s["Name"] for s in container["Secrets"]]:
        assert f"`{variable}`" in contract, variable


def test_a_privileged_port_is_refused_by_the_schema() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="container_port"):
        config_with("staging", {"api": {"container_port": 443}})


# --- one key decides the lifecycle --------------------------------------------------------------


def test_no_template_decides_from_the_environment_name() -> None:
    """Disposable or protected comes from vars `lifecycle` alone: a new throwaway environment is
    one vars file. No partial or template compares the environment's name."""
    pattern = re.compile(r"""\b(env|environment)\s*(==|!=|\bin\b)|["'](dev|staging|production)["']""")
    found = [f"{path.name}: {jinja.strip()}"
             for path in sorted((ROOT / "partials").glob("*.j2")) + sorted((ROOT / "templates").glob("*.j2"))
             for jinja in re.findall(r"\{[{%](.*?)[}%]\}", path.read_text(), re.S)  # Jinja code only
             if pattern.search(jinja)]
    assert found == []
    assert pattern.search(' if env == "dev" ') and pattern.search(" cfg.environment in envs ")


def test_a_new_disposable_environment_is_declared_by_vars_alone() -> None:
    cfg = config_with("staging", {"lifecycle": "disposable"})
    app, edge = render(cfg, "app"), render(cfg, "edge")
    assert "DeletionProtection" not in app.get("Parameters", {})
    assert app["Resources"]["DatabaseCluster"]["Properties"]["DeletionProtection"] is False
    assert app["Resources"]["ApiRepository"]["Properties"]["EmptyOnDelete"] is True
    for doc in (app, edge):
        for lid, resource in doc["Resources"].items():
            if lid == "SecurityHeadersFunction":  # Lambda@Edge: replicas (edge_function.yaml.j2)
                assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
                continue
            assert resource.get("DeletionPolicy", "Delete") == "Delete", lid


def test_kept_data_in_a_protected_environment() -> None:
    app = render(config("production"), "app")
    kept = {lid for lid, r in app["Resources"].items()
            if r.get("DeletionPolicy") in ("RetainExceptOnCreate", "Snapshot", "Retain")}
    assert {"StackKey", "FlowLogGroup", "ApiLogGroup", "DatabaseCluster", "ApiRepository",
            "AlbAccessLogBucket"} <= kept
    # RDS names its log group after the cluster: kept, it would stop the next create; it goes
    # after the cluster (which depends on it), so RDS cannot re-create it unmanaged
    assert "DatabaseLogGroup" not in kept
    assert app["Resources"]["DatabaseCluster"]["DependsOn"] == "DatabaseLogGroup"
    assert "EmptyOnDelete" not in app["Resources"]["ApiRepository"]["Properties"]


def _kept(docs: dict[str, Doc]) -> Iterator[tuple[str, str, Doc, str]]:
    """(env, stack key, resource, region) of what a protected environment keeps on deletion."""
    for env in ENVS:
        if not config(env).protected:
            continue
        for key in ("app", "edge"):
            region = config(env).region if key == "app" else "us-east-1"
            for lid, resource in docs[f"{env}/{key}"]["Resources"].items():
                if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate"):
                    yield f"{env}/{key}", lid, resource, region


def test_nothing_kept_has_a_fixed_name_and_the_runbook_names_each(docs: dict[str, Doc]) -> None:
    """A stack deleted in a protected environment leaves its RetainExceptOnCreate/Retain
    resources; one with a fixed name would stop the stack's next create (AlreadyExists). Each
    kept resource that is named is named per create (m.with_create_id), and the
    disaster-recovery runbook's table lists each one."""
    fixed = [f"{stack} {lid}: {_fixed_names(r, region)}" for stack, lid, r, region in _kept(docs)
             if _fixed_names(r, region)]
    assert fixed == []
    text = (ROOT / "docs" / "disaster-recovery.md").read_text()
    section = text.split("## Before deploying a deleted environment again", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| (?:regional|edge) \| `(\w+)` \|", section, re.M))
    kept = {lid for _, lid, r, region in _kept(docs) if _name_properties(r, region)}
    assert kept and named == kept


def test_the_fixed_name_rule_flags_a_kept_resource_named_without_the_create_id(
        docs: dict[str, Doc]) -> None:
    resource = copy.deepcopy(docs["production/app"]["Resources"]["ApiRepository"])
    assert _fixed_names(resource, "us-east-1") == []
    resource["Properties"]["RepositoryName"] = "tracker-production-api"
    assert _fixed_names(resource, "us-east-1") == ["RepositoryName"]
    edge = copy.deepcopy(docs["production/edge"]["Resources"]["SecurityHeadersFunction"])
    edge["Properties"]["FunctionName"] = {"Fn::Sub": "tracker-production-security-headers"}
    assert _fixed_names(edge, "us-east-1") == ["FunctionName"]
