"""Network layer facts, read back from the parsed regional stack of every environment."""

from __future__ import annotations

import ipaddress
from itertools import combinations
from typing import Any

import pytest

from tests.helpers import ENVS, per_create, props, resources
from tracker_infra.rendering import subnets

Doc = dict[str, Any]


def _subnet_cidrs(doc: Doc) -> dict[str, ipaddress.IPv4Network]:
    return {lid: ipaddress.IPv4Network(r["Properties"]["CidrBlock"])
            for lid, r in resources(doc, "AWS::EC2::Subnet").items()}


@pytest.mark.parametrize("env", ENVS)
def test_vpc_has_dns_and_the_env_cidr(app: dict[str, Doc], configs: dict[str, Any], env: str) -> None:
    vpc = props(app[env], "VPC")
    assert vpc["CidrBlock"] == configs[env].network.vpc_cidr
    assert vpc["EnableDnsSupport"] is True and vpc["EnableDnsHostnames"] is True


@pytest.mark.parametrize("env", ENVS)
def test_four_subnets_over_two_azs(app: dict[str, Doc], env: str) -> None:
    subnet_res = resources(app[env], "AWS::EC2::Subnet")
    assert set(subnet_res) == {"PublicSubnet1", "PublicSubnet2", "PrivateSubnet1", "PrivateSubnet2"}
    azs = {lid: r["Properties"]["AvailabilityZone"] for lid, r in subnet_res.items()}
    for kind in ("Public", "Private"):
        assert azs[f"{kind}Subnet1"] == {"Fn::Select": [0, {"Fn::GetAZs": ""}]}
        assert azs[f"{kind}Subnet2"] == {"Fn::Select": [1, {"Fn::GetAZs": ""}]}
    for r in subnet_res.values():
        assert r["Properties"]["VpcId"] == {"Ref": "VPC"}
        assert r["Properties"]["MapPublicIpOnLaunch"] is False


@pytest.mark.parametrize("env", ENVS)
def test_subnet_cidrs_are_explicit_inside_the_vpc_and_disjoint(app: dict[str, Doc], env: str) -> None:
    vpc = ipaddress.IPv4Network(props(app[env], "VPC")["CidrBlock"])
    cidrs = _subnet_cidrs(app[env])
    for net in cidrs.values():
        assert net.subnet_of(vpc)
    for a, b in combinations(cidrs.values(), 2):
        assert not a.overlaps(b)
    assert "Fn::Cidr" not in str(app[env])  # carved at render time (moto and reviewers need it)


def test_subnet_carving_by_hand() -> None:
    carved = {s.logical_id: s.cidr for s in subnets("10.1.0.0/16")}
    assert carved == {"PublicSubnet1": "10.1.0.0/18", "PublicSubnet2": "10.1.64.0/18",
                      "PrivateSubnet1": "10.1.128.0/18", "PrivateSubnet2": "10.1.192.0/18"}
    assert [s.cidr for s in subnets("192.168.4.0/24")][-1] == "192.168.4.192/26"


def test_no_overlap_between_environments(app: dict[str, Doc]) -> None:
    vpcs = {env: ipaddress.IPv4Network(props(app[env], "VPC")["CidrBlock"]) for env in ENVS}
    for a, b in combinations(ENVS, 2):
        assert not vpcs[a].overlaps(vpcs[b]), (a, b)


def _routes(doc: Doc) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["RouteTableId"]["Ref"]: r["Properties"]
            for r in resources(doc, "AWS::EC2::Route").values()}


def _table_of(doc: Doc, subnet: str) -> str:
    for r in resources(doc, "AWS::EC2::SubnetRouteTableAssociation").values():
        if r["Properties"]["SubnetId"] == {"Ref": subnet}:
            return r["Properties"]["RouteTableId"]["Ref"]
    raise AssertionError(f"{subnet} has no route table")


@pytest.mark.parametrize("env", ENVS)
def test_public_subnets_route_to_the_internet_gateway_private_to_nat(
        app: dict[str, Doc], configs: dict[str, Any], env: str) -> None:
    doc = app[env]
    routes = _routes(doc)
    for n in (1, 2):
        public = routes[_table_of(doc, f"PublicSubnet{n}")]
        assert public == {"RouteTableId": {"Ref": "PublicRouteTable"},
                          "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": {"Ref": "InternetGateway"}}
        private = routes[_table_of(doc, f"PrivateSubnet{n}")]
        assert "GatewayId" not in private
        nat = private["NatGatewayId"]["Ref"]
        assert nat == f"NatGateway{min(n, configs[env].network.nat_gateways)}"
    nats = resources(doc, "AWS::EC2::NatGateway")
    assert len(nats) == configs[env].network.nat_gateways
    assert {r["Properties"]["SubnetId"]["Ref"] for r in nats.values()} <= {"PublicSubnet1",
                                                                          "PublicSubnet2"}


def test_nat_count_follows_vars(configs: dict[str, Any]) -> None:
    assert configs["dev"].network.nat_gateways == 1
    assert configs["production"].network.nat_gateways == 2


@pytest.mark.parametrize("env", ENVS)
def test_flow_logs_go_to_the_env_log_group_with_retention(
        app: dict[str, Doc], configs: dict[str, Any], env: str) -> None:
    doc = app[env]
    group = props(doc, "FlowLogGroup")
    assert per_create(group["LogGroupName"]) == f"/aws/vpc/flowlogs-{env}-${{CreateId}}"
    assert group["RetentionInDays"] == configs[env].monitoring.log_retention_days
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}
    flow = props(doc, "FlowLog")
    assert flow["ResourceId"] == {"Ref": "VPC"} and flow["TrafficType"] == "ALL"
    assert flow["LogGroupName"] == {"Ref": "FlowLogGroup"}
    role = props(doc, "FlowLogRole")
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [s["Resource"] for s in statements] == [{"Fn::Sub": "${FlowLogGroup.Arn}"}]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}


def _ingress(doc: Doc, group: str) -> list[dict[str, Any]]:
    inline = props(doc, group).get("SecurityGroupIngress", [])
    separate = [r["Properties"] for r in resources(doc, "AWS::EC2::SecurityGroupIngress").values()
                if r["Properties"]["GroupId"] == {"Ref": group}]
    return inline + separate


def _egress(doc: Doc, group: str) -> list[dict[str, Any]]:
    inline = props(doc, group).get("SecurityGroupEgress", [])
    separate = [r["Properties"] for r in resources(doc, "AWS::EC2::SecurityGroupEgress").values()
                if r["Properties"]["GroupId"] == {"Ref": group}]
    return inline + separate


def _rule(r: dict[str, Any]) -> tuple[Any, ...]:
    source = (r.get("CidrIp") or r.get("SourceSecurityGroupId") or r.get("DestinationSecurityGroupId"))
    return (r["IpProtocol"], r["FromPort"], r["ToPort"], str(source))


@pytest.mark.parametrize("env", ENVS)
def test_security_group_rules_exactly(app: dict[str, Doc], configs: dict[str, Any], env: str) -> None:
    doc = app[env]
    port = configs[env].api.container_port
    assert port == 8080
    assert sorted(map(_rule, _ingress(doc, "AlbSecurityGroup"))) == [
        ("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0")]
    assert sorted(map(_rule, _ingress(doc, "ApiSecurityGroup"))) == [
        ("tcp", port, port, str({"Ref": "AlbSecurityGroup"}))]
    assert sorted(map(_rule, _ingress(doc, "DatabaseSecurityGroup"))) == [
        ("tcp", 5432, 5432, str({"Ref": "ApiSecurityGroup"}))]
    # Egress is explicit everywhere: no group falls back to CloudFormation's allow-all default.
    assert sorted(map(_rule, _egress(doc, "AlbSecurityGroup"))) == [
        ("tcp", port, port, configs[env].network.vpc_cidr)]
    assert sorted(map(_rule, _egress(doc, "ApiSecurityGroup"))) == [
        ("tcp", 443, 443, "0.0.0.0/0"), ("tcp", 5432, 5432, str({"Ref": "DatabaseSecurityGroup"}))]
    assert sorted(map(_rule, _egress(doc, "DatabaseSecurityGroup"))) == [
        ("icmp", 252, 86, "255.255.255.255/32")]


@pytest.mark.parametrize("env", ENVS)
def test_only_the_alb_admits_the_internet(app: dict[str, Doc], env: str) -> None:
    doc = app[env]
    for group in resources(doc, "AWS::EC2::SecurityGroup"):
        for rule in _ingress(doc, group):
            if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
                assert group == "AlbSecurityGroup" and rule["FromPort"] in (80, 443)


@pytest.mark.parametrize("env", ENVS)
def test_network_outputs_are_exported(app: dict[str, Doc], env: str) -> None:
    outputs = app[env]["Outputs"]
    for name in ("VpcId", "PublicSubnet1Id", "PublicSubnet2Id", "PrivateSubnet1Id",
                 "PrivateSubnet2Id", "AlbSecurityGroupId", "ApiSecurityGroupId",
                 "DatabaseSecurityGroupId"):
        assert outputs[name]["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


@pytest.mark.parametrize("env", ENVS)
def test_s3_goes_through_the_free_gateway_endpoint_from_both_private_subnets(app: dict[str, Doc],
                                                                             env: str) -> None:
    endpoints = resources(app[env], "AWS::EC2::VPCEndpoint")
    assert set(endpoints) == {"S3GatewayEndpoint"}
    p = endpoints["S3GatewayEndpoint"]["Properties"]
    assert p["VpcEndpointType"] == "Gateway"
    assert p["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}
    private_tables = {a["Properties"]["RouteTableId"]["Ref"]
                      for a in resources(app[env], "AWS::EC2::SubnetRouteTableAssociation").values()
                      if a["Properties"]["SubnetId"]["Ref"].startswith("PrivateSubnet")}
    assert {t["Ref"] for t in p["RouteTableIds"]} == private_tables and len(private_tables) == 2
