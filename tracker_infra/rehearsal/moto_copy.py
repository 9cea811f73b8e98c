"""Deploying the rendered templates to a local moto server: what `render.py rehearse`, the deploy
rehearsal test (tests/test_deploy_rehearsal.py) and the operational commands' tests
(tests/test_ops_*.py) share.

moto does not run CloudFormation transforms and has a few defects; ``prepare_for_moto`` makes the
copy of a template that moto can deploy (the transforms run here as CloudFormation would run
them, each workaround listed with its reason in ``MOTO_GAPS``). ``sam_env`` is the environment
that points the SAM CLI and boto3 at the server and keeps them off the network.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cfn_yaml import walk
from .server import MotoServer
from .transforms import declared_transforms, local_code, sam_transform

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"

Template = dict[str, Any]


def _drop_kms_key_tags(template: Template) -> list[str]:
    changed = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::KMS::Key" and "Tags" in resource.get("Properties", {}):
            del resource["Properties"]["Tags"]
            changed.append(logical_id)
    return changed


def _instance_engine_version_from_cluster(template: Template) -> list[str]:
    changed = []
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        cluster_ref = properties.get("DBClusterIdentifier")
        if resource["Type"] != "AWS::RDS::DBInstance" or "EngineVersion" in properties:
            continue
        if isinstance(cluster_ref, dict) and cluster_ref.get("Ref") in resources:
            cluster = resources[cluster_ref["Ref"]].get("Properties", {})
            if "EngineVersion" in cluster:
                properties["EngineVersion"] = cluster["EngineVersion"]
                changed.append(logical_id)
    return changed


# Attributes moto's CloudFormation cannot return (it raises on GetAtt): resource type -> names.
MOTO_MISSING_ATTRIBUTES = {
    "AWS::ElasticLoadBalancingV2::TargetGroup": {"TargetGroupFullName"},
}


def _moto_models(resource_type: str) -> bool:
    from moto.cloudformation.parsing import get_model_map

    return resource_type in get_model_map()


def moto_lacks() -> list[str]:
    """What verify reads (verify.STAND_IN_FACTS) that a stack moto deployed cannot hold, for
    `verify --stand-in-lacks`: the stack outputs, because moto 5.2.5 fills none for a stack made
    through a change set (moto/cloudformation/models.py: CreateChangeSet makes the stack from an
    empty template and builds its outputs from it, ExecuteChangeSet, ChangeSet.apply, updates only
    its resources), and every resource type moto's CloudFormation does not model (it skips them:
    in 5.2.5 the alarms, the e-mail subscriptions and the Aurora cluster)."""
    from ..ops.verify import STAND_IN_FACTS

    return ["Outputs", *(fact for fact in STAND_IN_FACTS
                         if fact.startswith("AWS::") and not _moto_models(fact))]


def _get_atts(template: Template) -> set[tuple[str, str]]:
    found = set()
    for node in walk(template):
        if isinstance(node, dict) and isinstance(node.get("Fn::GetAtt"), list):
            found.add((node["Fn::GetAtt"][0], node["Fn::GetAtt"][1]))
        if isinstance(node, dict) and isinstance(node.get("Fn::Sub"), str):
            found |= {(m[0], m[1]) for m in re.findall(r"\$\{(\w+)\.([\w.]+)\}", node["Fn::Sub"])}
    return found


def _literal_for_missing_attributes(template: Template) -> list[str]:
    """Fn::GetAtt and Fn::Sub ${Id.Attribute} that moto cannot answer become a fixed string:
    attributes of resource types moto does not model (it skips those resources) and the
    attributes in MOTO_MISSING_ATTRIBUTES."""
    resources = template["Resources"]
    missing = {(logical_id, attribute) for logical_id, attribute in _get_atts(template)
               if logical_id in resources and (
                   not _moto_models(resources[logical_id]["Type"])
                   or attribute in MOTO_MISSING_ATTRIBUTES.get(resources[logical_id]["Type"], ()))}
    changed: set[str] = set()

    def literal(logical_id: str, attribute: str) -> str:
        return f"moto-{logical_id}-{attribute}"

    def fix(node: Any, owner: str) -> Any:
        if isinstance(node, dict):
            get_att = node.get("Fn::GetAtt")
            if isinstance(get_att, list) and len(node) == 1 and tuple(get_att) in missing:
                changed.add(owner)
                return literal(*get_att)
            if isinstance(node.get("Fn::Sub"), str) and len(node) == 1:
                text = node["Fn::Sub"]
                for logical_id, attribute in missing:
                    if f"${{{logical_id}.{attribute}}}" in text:
                        changed.add(owner)
                        text = text.replace(f"${{{logical_id}.{attribute}}}", literal(logical_id, attribute))
                return {"Fn::Sub": text}
            return {key: fix(value, owner) for key, value in node.items()}
        if isinstance(node, list):
            return [fix(value, owner) for value in node]
        return node

    for logical_id, resource in resources.items():
        resources[logical_id] = fix(resource, logical_id)
    template["Outputs"] = {k: fix(v, f"Outputs.{k}") for k, v in template.get("Outputs", {}).items()}
    return sorted(changed)


# moto 5.2.5 defects the deployed copy works around: (what moto does wrong, the change).
MOTO_GAPS: list[tuple[str, Callable[[Template], list[str]]]] = [
    ("AWS::KMS::Key Tags ({Key, Value}) raise KeyError 'TagKey' in moto's KMS tagger; the copy "
     "drops the key's tags (the stack's tags are still checked)", _drop_kms_key_tags),
    ("an Aurora AWS::RDS::DBInstance without EngineVersion raises KeyError 'aurora-postgresql' "
     "(AWS takes the cluster's); the copy gives the instance its cluster's EngineVersion",
     _instance_engine_version_from_cluster),
    ("GetAtt of a resource moto skips (a type it does not model, e.g. AWS::CloudWatch::Alarm) or of "
     "an attribute it lacks (MOTO_MISSING_ATTRIBUTES) raises in moto; the copy uses a fixed string "
     "there (alarm ARNs and metric dimensions in dashboards and alarms)",
     _literal_for_missing_attributes),
]

# --- the transforms CloudFormation would run --------------------------------------------------

# declared_transforms and sam_transform: transforms.py. moto runs no transform; the SAM transform
# is run here, and any other fails the copy, naming it.


def drop_custom_resources(template: Template) -> list[str]:
    """Remove the custom resources: moto would run their functions in Docker, which this machine
    lacks, and leave the stack CREATE_IN_PROGRESS until they answer. Their functions are
    deployed; what they do is tested on its own (tests/test_database_user_setup.py)."""
    return _drop(template, [lid for lid, r in template["Resources"].items()
                            if r["Type"].startswith("Custom::")])


def _drop(template: Template, removed: list[str]) -> list[str]:
    for logical_id in removed:
        del template["Resources"][logical_id]
    for resource in template["Resources"].values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str) and depends in removed:
            del resource["DependsOn"]
        elif isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in removed]
    for node in walk(template):  # nothing left may point at a removed resource
        if isinstance(node, dict):
            assert node.get("Ref") not in removed, node
            assert not (isinstance(node.get("Fn::GetAtt"), list) and node["Fn::GetAtt"][0] in removed), node
    return removed


@dataclass
class Prepared:
    template: Template
    removed: list[str] = field(default_factory=list)  # left out: only AWS can run them
    gaps: dict[str, list[str]] = field(default_factory=dict)  # moto gap -> logical IDs changed


def _swap_strings(node: Any, swaps: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _swap_strings(v, swaps) for k, v in node.items()}
    if isinstance(node, list):
        return [_swap_strings(v, swaps) for v in node]
    return swaps.get(node, node) if isinstance(node, str) else node


def prepare_for_moto(packaged: Template, region: str, swaps: dict[str, str]) -> Prepared:
    """The copy moto can deploy. ``swaps``: string -> replacement (moto's certificate ARNs)."""
    template = _swap_strings(packaged, swaps)
    prepared = Prepared(template)
    for transform in declared_transforms(template):
        if transform == SAM_TRANSFORM:
            # samtranslator expects to be the last transform; the others were applied already.
            template = {k: v for k, v in template.items() if k != "Transform"}
            template["Transform"] = SAM_TRANSFORM
            template = sam_transform(template, region)
        else:
            raise NotImplementedError(f"the rehearsal cannot run the transform {transform!r}; "
                                      "teach prepare_for_moto what CloudFormation does with it")
    template.pop("Transform", None)
    prepared.removed += drop_custom_resources(template)
    for reason, fix in MOTO_GAPS:
        changed = fix(template)
        if changed:
            prepared.gaps[reason] = changed
    prepared.template = template
    return prepared


# --- running the SAM CLI against the server -----------------------------------------------------

def sam_env(server: MotoServer, home: Path, region: str) -> dict[str, str]:
    # The SAM CLI asks pypi.org for a newer version after `sam deploy` unless it checked this
    # week; a fresh check time keeps the rehearsal off the network.
    app_dir = home / "sam-app"
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "metadata.json").write_text(json.dumps(
        {"lastVersionCheck": time.time(), "telemetryEnabled": False}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAM_", "__SAM_"))}
    env.update({
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": str(home / "aws-config"),  # absent: no profile of this machine is read
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "HOME": str(home),
        "__SAM_CLI_APP_DIR": str(app_dir),  # the SAM CLI's metadata (default ~/.aws-sam)
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_POLL_DELAY": "0.2",  # the default 5 s between stack-event polls
    })
    return env

def create_artifact_buckets(s3: Any, buckets: set[str]) -> None:
    """The accounts' artifact buckets (samconfig.toml's s3_bucket), as their bootstrap stacks
    create them."""
    for bucket in sorted(buckets):
        s3.create_bucket(Bucket=bucket)


# --- an environment's rendered folder as moto can deploy it, and what moto cannot delete ---------

def _package(folder: Path, s3: Any, bucket: str, key: str) -> None:
    import io
    import zipfile

    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as z:
        for path in sorted(folder.iterdir()):
            z.write(path, path.name)
    s3.put_object(Bucket=bucket, Key=key, Body=package.getvalue())


def deployable_copies(env_dir: Path, s3: Any, bucket: str, region: str, swaps: dict[str, str]) -> None:
    """Rewrite a rendered environment folder (app.yaml, edge.yaml, the functions' code folders)
    in place into copies moto can deploy: each local code folder zipped into ``bucket`` and named
    by its function (what `sam package` does), then prepare_for_moto on each template (written as
    JSON)."""
    import shutil

    from ..cfn_yaml import load_template

    packaged: set[Path] = set()
    for name in ("app.yaml", "edge.yaml"):
        template = dict(load_template((env_dir / name).read_text()))
        for resource in template["Resources"].values():
            local = local_code(resource)
            if local is None:
                continue
            prop, folder = local
            key = f"rehearsal/{env_dir.name}-{folder.strip('/')}.zip"
            _package(env_dir / folder, s3, bucket, key)
            packaged.add(env_dir / folder)
            resource["Properties"][prop] = (f"s3://{bucket}/{key}" if prop == "CodeUri"
                                            else {"S3Bucket": bucket, "S3Key": key})
        prepared = prepare_for_moto(template, region, swaps)
        (env_dir / name).write_text(json.dumps(prepared.template, indent=1))
    for folder in packaged:
        shutil.rmtree(folder)


def without_nat_gateways(path: Path) -> None:
    """moto 5.2.5 does not delete a stack's NAT gateway, whose network interface then keeps the
    VPC (DeleteStack fails with DependencyViolation); the copy leaves out the NAT gateways and
    the routes through them (nothing else refers to them)."""
    template = json.loads(path.read_text())
    resources = template["Resources"]
    nat = {i for i, r in resources.items() if r["Type"] == "AWS::EC2::NatGateway"}
    routes = {i for i, r in resources.items() if r["Type"] == "AWS::EC2::Route"
              and r["Properties"].get("NatGatewayId", {}).get("Ref") in nat}
    assert nat and routes
    for logical_id in nat | routes:
        del resources[logical_id]
    assert not any(node.get("Ref") in nat for node in walk(template) if isinstance(node, dict))
    path.write_text(json.dumps(template))


def undo_what_moto_cannot_delete(ec2: Any, vpc_id: str) -> None:
    """moto 5.2.5 deletes neither a stack's route tables nor its internet gateway attachment, and
    then refuses to delete the VPC (DependencyViolation); they are removed first, as
    CloudFormation would while deleting the stack."""
    for gateway in ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc_id)
    for table in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]:
        if any(a.get("Main") for a in table["Associations"]):
            continue
        for association in table["Associations"]:
            ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])


# --- what an account would already have --------------------------------------------------------

def deploy_bootstrap(cloudformation: Any, account: str) -> None:
    """The account's bootstrap stack (bootstrap/<account>.yaml: deploy roles, artifact bucket)."""
    from ..errors import UserError
    from ..rendering import ROOT

    path = ROOT / "bootstrap" / f"{account}.yaml"
    if not path.is_file():
        raise UserError(str(path), "", "is missing (allowed: the account's bootstrap template; run "
                        "`python render.py --all`)")
    cloudformation.create_stack(StackName="tracker-bootstrap", TemplateBody=path.read_text(),
                                Capabilities=["CAPABILITY_NAMED_IAM"])


def request_certificates(acm_in: Callable[[str], Any], cfg: Any) -> dict[str, str]:
    """The environment's two certificates requested in moto (the API's in its region, the site's
    in us-east-1): vars' ARN -> moto's, for prepare_for_moto's swaps."""
    from ..rendering import EDGE_REGION

    swaps = {}
    for arn, domain, region in ((cfg.api.certificate_arn, cfg.api.domain, cfg.region),
                                (cfg.frontend.certificate_arn, cfg.frontend.domain, EDGE_REGION)):
        swaps[arn] = acm_in(region).request_certificate(DomainName=domain)["CertificateArn"]
    return swaps
