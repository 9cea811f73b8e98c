"""Mermaid architecture pictures of an environment, generated from its rendered templates.

  python render.py graph --env staging     -> docs/architecture/staging.md
  python render.py graph --all             every environment in vars/
  python render.py graph --all --check     exit 3 listing the pictures that are stale

`python render.py --all` writes (and `--all --check` checks) the same files, so a pull request
shows the picture change beside the template change.

Each file holds two flowcharts, drawn from the parsed templates, never by hand:
- Traffic: who may talk to whom, from the security-group rules (ingress and egress, inline and
  standalone, both sides of a flow checked), CloudFront's viewer policy, origins (with their Origin
  Access Control) and edge-function triggers, each edge labelled with its ports or event.
- Resources: one subgraph per stack and, inside it, one per layer. Layers come from the
  CloudFormation type (TYPE_LAYERS); a type without a layer of its own (log group, role, bucket,
  function) joins the layer of the resources that reference it. Edges are the Ref/GetAtt/Sub/
  DependsOn references between the resources drawn.
Node ids are the logical IDs prefixed by the stack key (`app_ApiService`, `edge_Distribution`), so
a template change moves few lines of Mermaid.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cfn_yaml import references
from .errors import UserError
from .output import StackSummary
from .rendering import ROOT, Stack

EXIT_OK, EXIT_STALE = 0, 3
DOCS = ROOT / "docs" / "architecture"

LAYERS = {  # drawing order and titles
    "network": "Network", "database": "Database", "api": "API", "frontend": "Frontend",
    "monitoring": "Monitoring", "shared": "Encryption", "other": "Other",
}

# CloudFormation type prefix -> layer (the longest matching prefix wins). Types not listed take
# the layer of the resources that reference them (see _layers).
TYPE_LAYERS = {
    "AWS::EC2::": "network",
    "AWS::RDS::": "database", "AWS::SecretsManager::": "database", "AWS::DynamoDB::": "database",
    "AWS::ElastiCache::": "database",
    "AWS::ECS::": "api", "AWS::ECR::": "api", "AWS::ElasticLoadBalancingV2::": "api",
    "AWS::ApplicationAutoScaling::": "api", "AWS::ApiGateway": "api", "AWS::Serverless::Api": "api",
    "AWS::CloudFront::": "frontend", "AWS::CloudFront::MonitoringSubscription": "monitoring",
    "AWS::CloudWatch::": "monitoring", "AWS::SNS::": "monitoring", "AWS::Budgets::": "monitoring",
    "AWS::Logs::MetricFilter": "monitoring",
    "AWS::KMS::": "shared",
}

# Plumbing a reader does not need as a box: its meaning shows as an edge (a route becomes
# "subnet -> gateway", a security-group rule a traffic edge, a role "via ApiTaskRole").
HIDDEN_TYPES = frozenset({
    "AWS::EC2::Route", "AWS::EC2::RouteTable", "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::VPCGatewayAttachment", "AWS::EC2::EIP", "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress", "AWS::EC2::NetworkAcl", "AWS::EC2::NetworkAclEntry",
    "AWS::EC2::SubnetNetworkAclAssociation",
    "AWS::KMS::Alias",
    "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::InstanceProfile",
    "AWS::S3::BucketPolicy",
    "AWS::RDS::DBSubnetGroup", "AWS::RDS::DBClusterParameterGroup", "AWS::RDS::DBParameterGroup",
    "AWS::SecretsManager::SecretTargetAttachment", "AWS::SecretsManager::ResourcePolicy",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudFront::CachePolicy", "AWS::CloudFront::OriginRequestPolicy",
    "AWS::Lambda::Permission", "AWS::Lambda::Version",
    "AWS::SNS::Subscription", "AWS::SNS::TopicPolicy",
})

# References to these are everywhere (every resource sits in the VPC, most are encrypted with the
# stack key): the subgraph and a count in the key's box say it once instead of twenty arrows.
NO_EDGES_TO = frozenset({"AWS::EC2::VPC", "AWS::KMS::Key"})

# A dashboard references every resource it charts: a count in its box says that without a fan of
# arrows across the picture.
NO_EDGES_FROM = frozenset({"AWS::CloudWatch::Dashboard"})

# More boxes than this of one type in one layer become one box listing them (alarms, mostly).
COLLAPSE_OVER = 4

# A few properties worth reading in the box: type -> (property path, format).
FACTS: dict[str, tuple[tuple[str, str], ...]] = {
    "AWS::EC2::VPC": (("CidrBlock", "{}"),),
    "AWS::EC2::Subnet": (("CidrBlock", "{}"),),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (("Scheme", "{}"),),
    "AWS::ElasticLoadBalancingV2::Listener": (("Protocol", "{}"), ("Port", "{}")),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (("Protocol", "{}"), ("Port", "{}")),
    "AWS::RDS::DBCluster": (("Engine", "{}"), ("EngineVersion", "{}")),
    "AWS::RDS::DBInstance": (("DBInstanceClass", "{}"),),
    "AWS::ECS::Service": (("LaunchType", "{}"),),
    "AWS::Serverless::Function": (("Runtime", "{}"),),
    "AWS::Lambda::Function": (("Runtime", "{}"),),
    "AWS::Logs::LogGroup": (("RetentionInDays", "{} days"),),
}

SHORT_SERVICES = {"ElasticLoadBalancingV2": "ELBv2", "ApplicationAutoScaling": "AppAutoScaling",
                  "Serverless": "SAM", "SecretsManager": "Secrets Manager"}
CYLINDERS = ("AWS::RDS::DBCluster", "AWS::RDS::DBInstance", "AWS::S3::Bucket",
             "AWS::DynamoDB::Table", "AWS::Logs::LogGroup")
SUBROUTINES = ("AWS::Serverless::Function", "AWS::Lambda::Function")

INTERNET = "internet"
NO_MATCH_CIDR = "255.255.255.255/32"  # an egress rule that matches nothing: "no egress at all"
MEMBER_PROPERTIES_SKIP = frozenset({"AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress",
                                    "AWS::EC2::SecurityGroupEgress"})


# --- references -------------------------------------------------------------------------------

def ref_target(node: Any) -> str | None:
    """The logical ID when ``node`` is exactly one Ref or Fn::GetAtt, else None."""
    if isinstance(node, dict) and len(node) == 1 and ("Ref" in node or "Fn::GetAtt" in node):
        return next(references(node), None)
    return None


def _depends_on(resource: dict[str, Any]) -> list[str]:
    value = resource.get("DependsOn") or []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


@dataclass
class Template:
    """One parsed stack with its reference graph (resource -> the resources it names)."""

    stack: Stack
    doc: dict[str, Any]
    refs: dict[str, set[str]] = field(default_factory=dict)
    depends: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = set(self.resources)
        for rid, res in self.resources.items():
            self.refs[rid] = {r for r in references(res.get("Properties", {})) if r in ids} - {rid}
            self.depends[rid] = {d for d in _depends_on(res) if d in ids}

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.doc["Resources"]

    def type(self, rid: str) -> str:
        return str(self.resources[rid].get("Type", ""))

    def props(self, rid: str) -> dict[str, Any]:
        props = self.resources[rid].get("Properties")
        return props if isinstance(props, dict) else {}

    def node_id(self, rid: str) -> str:
        return f"{self.stack.key}_{rid}"


# --- layers and boxes ---------------------------------------------------------------------------


def type_layer(type_: str) -> str | None:
    matches = [prefix for prefix in TYPE_LAYERS if type_.startswith(prefix)]
    return TYPE_LAYERS[max(matches, key=len)] if matches else None


def _layers(t: Template) -> dict[str, str]:
    """Logical ID -> layer: by type, else the layer most of its referrers have, else of what it
    references; the encryption key and monitoring count last, as they touch every layer."""
    layer = {rid: type_layer(t.type(rid)) for rid in t.resources}
    incoming: dict[str, set[str]] = defaultdict(set)
    for rid in t.resources:
        for target in t.refs[rid] | t.depends[rid]:
            incoming[target].add(rid)
    order = list(LAYERS)

    def vote(neighbours: Iterable[str], known: dict[str, str | None], skip: set[str]) -> str | None:
        counts = Counter(known[n] for n in neighbours if known[n] and known[n] not in skip)
        if not counts:
            return None
        return min(counts, key=lambda name: (-counts[name], order.index(name)))  # type: ignore[arg-type]

    for skip in ({"shared", "monitoring"}, {"shared"}):
        while True:  # each pass reads the previous pass only, so the order of IDs cannot matter
            known = dict(layer)
            changed = False
            for rid in sorted(t.resources):
                if known[rid] is None:
                    chosen = vote(incoming[rid], known, skip) or vote(
                        t.refs[rid] | t.depends[rid], known, skip)
                    if chosen:
                        layer[rid], changed = chosen, True
            if not changed:
                break
    return {rid: name or "other" for rid, name in layer.items()}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _short_type(type_: str) -> str:
    parts = type_.split("::")
    if len(parts) == 3:
        return f"{SHORT_SERVICES.get(parts[1], parts[1])} {parts[2]}"
    return type_


def _lookup(props: dict[str, Any], path: str) -> Any:
    node: Any = props
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _facts(t: Template, rid: str) -> list[str]:
    out = []
    for path, fmt in FACTS.get(t.type(rid), ()):
        value = _lookup(t.props(rid), path)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            out.append(fmt.format(value))
    return [" ".join(out)] if out else []


@dataclass(frozen=True, order=True)
class Box:
    layer: str
    id: str
    lines: tuple[str, ...]
    shape: str = "rect"  # rect, cylinder, subroutine, stadium


@dataclass(frozen=True, order=True)
class Arrow:
    src: str
    dst: str
    label: str = ""
    style: str = "solid"  # solid, dotted


def _shape(type_: str) -> str:
    return "cylinder" if type_ in CYLINDERS else "subroutine" if type_ in SUBROUTINES else "rect"


def resource_view(t: Template) -> tuple[list[Box], list[Arrow]]:
    """The boxes and arrows of one stack's resource picture."""
    layers = _layers(t)
    shown = sorted(rid for rid in t.resources if t.type(rid) not in HIDDEN_TYPES)
    shown_set = set(shown)
    users: Counter[str] = Counter(r for rid in t.resources for r in t.refs[rid])

    # Collapse many boxes of one type in one layer into one.
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rid in shown:
        groups[(layers[rid], t.type(rid))].append(rid)
    box_of: dict[str, str] = {}
    boxes: list[Box] = []
    singles: list[str] = []
    for (layer, type_), members in sorted(groups.items()):
        if len(members) <= COLLAPSE_OVER:
            singles += members
            continue
        served: dict[str, list[str]] = defaultdict(list)  # one box per layer served: "4 × Alarm (API)"
        for rid in members:
            near = Counter(layers[r] for r in t.refs[rid] if layers[r] not in (layer, "shared"))
            served[min(near, key=lambda n: (-near[n], list(LAYERS).index(n)))
                   if near else layer].append(rid)
        for target, part in sorted(served.items()):
            if len(part) == 1:
                singles += part
                continue
            gid = f"{t.stack.key}__{type_.split('::', 1)[-1].replace('::', '')}{target.title()}"
            box_of.update(dict.fromkeys(part, gid))
            boxes.append(Box(layer, gid, (f"{len(part)} × {_short_type(type_)} "
                                          f"({LAYERS[target]})", *part), _shape(type_)))
    for rid in singles:
        box_of[rid] = t.node_id(rid)
        extra = _facts(t, rid)
        if t.type(rid) == "AWS::KMS::Key":
            extra = [f"used by {_count(users[rid], 'resource')}"]
        elif t.type(rid) in NO_EDGES_FROM:
            extra = [f"charts {_count(len(t.refs[rid]), 'resource')}"]
        elif t.type(rid) == "AWS::SNS::Topic":  # where the alarms end up
            protocols = Counter(str(t.props(s).get("Protocol")) for s in t.resources
                                if t.type(s) == "AWS::SNS::Subscription" and rid in t.refs[s])
            extra = [", ".join(f"{_count(n, p + ' subscription')}"
                               for p, n in sorted(protocols.items()))] if protocols else []
        boxes.append(Box(layers[rid], t.node_id(rid), (rid, _short_type(t.type(rid)), *extra),
                         _shape(t.type(rid))))

    arrows: dict[tuple[str, str], Arrow] = {}

    def add(src: str, dst: str, label: str = "", style: str = "solid") -> None:
        a, b = box_of[src], box_of[dst]
        if a == b or t.type(dst) in NO_EDGES_TO or t.type(src) in NO_EDGES_FROM:
            return
        old = arrows.get((a, b))
        # A direct reference beats "via", which beats DependsOn alone.
        rank = {("solid", ""): 0, ("solid", "via"): 1, ("dotted", ""): 2}
        key = (style, "via" if label.startswith("via ") else "")
        if old is None or rank.get(key, 3) < rank.get(
                (old.style, "via" if old.label.startswith("via ") else ""), 3):
            arrows[(a, b)] = Arrow(a, b, label, style)

    for rid in shown:
        for target in sorted(t.refs[rid]):
            if target in shown_set:
                add(rid, target)
            else:  # one step through a resource not drawn (role, subnet group, bucket policy)
                for beyond in sorted(t.refs[target] | t.depends[target]):
                    if beyond in shown_set and beyond != rid:
                        add(rid, beyond, f"via {target}")
        for target in sorted(t.depends[rid]):
            if target in shown_set:
                add(rid, target, style="dotted")
            else:
                for beyond in sorted(t.refs[target]):
                    if beyond in shown_set and beyond != rid:
                        add(rid, beyond, f"via {target}", "dotted")
    for subnet, target, cidr in _routes(t):
        if subnet in shown_set and target in shown_set:
            key = (box_of[subnet], box_of[target])
            arrows[key] = Arrow(*key, f"route {cidr}")
    return sorted(boxes), sorted(arrows.values())


def _routes(t: Template) -> list[tuple[str, str, str]]:
    """(subnet, gateway, destination) from Route + SubnetRouteTableAssociation resources."""
    subnets_of: dict[str, set[str]] = defaultdict(set)
    for rid in t.resources:
        if t.type(rid) == "AWS::EC2::SubnetRouteTableAssociation":
            table, subnet = (ref_target(t.props(rid).get(k)) for k in ("RouteTableId", "SubnetId"))
            if table and subnet:
                subnets_of[table].add(subnet)
    out = []
    for rid in t.resources:
        if t.type(rid) != "AWS::EC2::Route":
            continue
        props = t.props(rid)
        table = ref_target(props.get("RouteTableId"))
        cidr = props.get("DestinationCidrBlock") or props.get("DestinationIpv6CidrBlock") or "?"
        for key, value in sorted(props.items()):
            target = ref_target(value)
            if key == "RouteTableId" or not target or table is None:
                continue
            out += [(subnet, target, str(cidr)) for subnet in sorted(subnets_of[table])]
    return sorted(set(out))


# --- traffic: security groups -----------------------------------------------------------------

ALL_PORTS = (0, 65535)


@dataclass(frozen=True, order=True)
class Ports:
    protocol: str  # tcp, udp, icmp, all
    low: int
    high: int

    def __str__(self) -> str:
        if self.protocol == "all":
            return "all traffic"
        if self.protocol == "icmp":
            return "icmp"
        return f"{self.low}" if self.low == self.high else f"{self.low}-{self.high}"

    def meet(self, other: Ports) -> Ports | None:
        if "all" not in (self.protocol, other.protocol) and self.protocol != other.protocol:
            return None
        protocol = other.protocol if self.protocol == "all" else self.protocol
        low, high = max(self.low, other.low), min(self.high, other.high)
        return Ports(protocol, low, high) if low <= high else None


def ports_label(ports: Iterable[Ports]) -> str:
    """'tcp 80, 443' - ports grouped by protocol, sorted."""
    by_protocol: dict[str, list[Ports]] = defaultdict(list)
    for p in sorted(set(ports)):
        by_protocol[p.protocol].append(p)
    parts = []
    for protocol, items in sorted(by_protocol.items()):
        if protocol in ("all", "icmp"):
            parts.append(str(items[0]))
        else:
            parts.append(f"{protocol} " + ", ".join(str(p) for p in items))
    return "; ".join(parts)


_PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "tcp": "tcp", "udp": "udp",
              "icmp": "icmp", "all": "all"}


def _ports(rule: dict[str, Any]) -> Ports:
    protocol = _PROTOCOLS.get(str(rule.get("IpProtocol", "-1")).lower(), "all")
    if protocol == "all":
        return Ports("all", *ALL_PORTS)
    low, high = rule.get("FromPort", 0), rule.get("ToPort", 65535)
    if not isinstance(low, int) or not isinstance(high, int) or low < 0 or high < 0:
        low, high = ALL_PORTS
    return Ports(protocol, low, high)


@dataclass(frozen=True, order=True)
class Rule:
    group: str  # the security group's logical ID
    direction: str  # ingress, egress
    peer_kind: str  # group, cidr, prefix
    peer: str
    ports: Ports
    source: str  # where it is written: the group, or a standalone rule's logical ID


def security_group_rules(t: Template) -> list[Rule]:
    """Every rule of every security group: inline, and standalone Ingress/Egress resources."""
    rules = []
    written: list[tuple[str, str, dict[str, Any], str]] = []
    for rid in t.resources:
        type_, props = t.type(rid), t.props(rid)
        if type_ == "AWS::EC2::SecurityGroup":
            for direction, key in (("ingress", "SecurityGroupIngress"),
                                   ("egress", "SecurityGroupEgress")):
                for rule in props.get(key) or []:
                    if isinstance(rule, dict):
                        written.append((rid, direction, rule, rid))
        elif type_ in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            group = ref_target(props.get("GroupId"))
            if group:
                written.append((group, type_.rsplit("Group", 1)[-1].lower(), props, rid))
    for group, direction, rule, source in written:
        prefix = "Source" if direction == "ingress" else "Destination"
        peer_group = ref_target(rule.get(f"{prefix}SecurityGroupId"))
        if peer_group:
            kind, peer = "group", peer_group
        elif isinstance(rule.get("CidrIp"), str) or isinstance(rule.get("CidrIpv6"), str):
            kind, peer = "cidr", str(rule.get("CidrIp") or rule.get("CidrIpv6"))
            if peer == NO_MATCH_CIDR:
                continue
        elif rule.get(f"{prefix}PrefixListId") is not None:
            kind, peer = "prefix", str(ref_target(rule[f"{prefix}PrefixListId"])
                                       or rule[f"{prefix}PrefixListId"])
        else:
            continue
        rules.append(Rule(group, direction, kind, peer, _ports(rule), source))
    return sorted(rules)


def _vpc_networks(t: Template) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for rid in t.resources:
        cidr = t.props(rid).get("CidrBlock") if t.type(rid) == "AWS::EC2::VPC" else None
        if isinstance(cidr, str):
            nets.append(ipaddress.ip_network(cidr, strict=False))
    return nets


def _inside_vpc(cidr: str, vpcs: list[Any]) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return net.prefixlen > 0 and any(net.version == v.version and net.overlaps(v) for v in vpcs)


def members(t: Template) -> dict[str, list[str]]:
    """Security group -> the resources that name it (the ALB, the ECS service, the cluster)."""
    out: dict[str, list[str]] = defaultdict(list)
    for rid in sorted(t.resources):
        if t.type(rid) in MEMBER_PROPERTIES_SKIP:
            continue
        for target in sorted(t.refs[rid]):
            if t.type(target) == "AWS::EC2::SecurityGroup":
                out[target].append(rid)
    return out


@dataclass(frozen=True, order=True)
class Flow:
    """Allowed traffic from one end to the other (security-group ids, or a CIDR/prefix list)."""

    src: str
    dst: str
    ports: tuple[Ports, ...]
    note: str = ""  # "" when both sides allow it; otherwise what is missing
    how: str = ""  # the rules that allow it


def security_group_flows(t: Template) -> list[Flow]:
    """Flows between groups and to/from the outside, checking both sides where both are groups.

    Group A -> group B is allowed where A's egress allows B (by group, or a CIDR inside the VPC,
    or the default allow-all when A declares no egress) AND B's ingress allows A likewise.
    """
    rules = security_group_rules(t)
    vpcs = _vpc_networks(t)
    groups = sorted(rid for rid in t.resources if t.type(rid) == "AWS::EC2::SecurityGroup")
    declares_egress = {g for g in groups if t.props(g).get("SecurityGroupEgress")}

    def allowed(group: str, direction: str, peer: str) -> list[Ports]:
        if direction == "egress" and group not in declares_egress:
            out = [Ports("all", *ALL_PORTS)]  # CloudFormation keeps the default allow-all
        else:
            out = []
        for r in rules:
            if r.group == group and r.direction == direction and (
                    (r.peer_kind == "group" and r.peer == peer)
                    or (r.peer_kind == "cidr" and _inside_vpc(r.peer, vpcs))
                    or (r.peer_kind == "cidr" and r.peer in ("0.0.0.0/0", "::/0"))):
                out.append(r.ports)
        return out

    flows: dict[tuple[str, str, str, str], set[Ports]] = defaultdict(set)
    for src in groups:
        for dst in groups:
            if src == dst:
                continue
            egress = allowed(src, "egress", dst)
            ingress = [r.ports for r in rules if r.group == dst and r.direction == "ingress"
                       and r.peer_kind == "group" and r.peer == src]
            egress_named = [r.ports for r in rules if r.group == src and r.direction == "egress"
                            and r.peer_kind == "group" and r.peer == dst]
            ingress_any = allowed(dst, "ingress", src)
            for p in ingress:
                met = [m for e in egress if (m := p.meet(e))]
                if met:
                    flows[(src, dst, "", f"{dst} ingress and {src} egress")].update(met)
                else:
                    flows[(src, dst, f"{src} egress does not allow it", f"{dst} ingress")].add(p)
            for p in egress_named:
                if not any(p.meet(i) for i in ingress_any):
                    flows[(src, dst, f"{dst} ingress does not allow it", f"{src} egress")].add(p)
    for r in rules:  # to and from the outside: one side only
        if r.peer_kind == "group":
            continue
        outside = r.peer
        if r.peer_kind == "cidr" and r.peer in ("0.0.0.0/0", "::/0"):
            outside = INTERNET
        elif r.peer_kind == "cidr" and _inside_vpc(r.peer, vpcs):
            if r.direction == "egress":
                continue  # checked above as the sending side of group-to-group flows
            outside = f"cidr:{r.peer}"
        else:
            outside = f"{r.peer_kind}:{r.peer}"
        how = f"{r.group} {r.direction}"
        key = (outside, r.group, "", how) if r.direction == "ingress" else \
            (r.group, outside, "", how)
        flows[key].add(r.ports)
    return sorted(Flow(src, dst, tuple(sorted(ports)), note, how)
                  for (src, dst, note, how), ports in flows.items())


# --- traffic: CloudFront ----------------------------------------------------------------------


def _behaviours(config: dict[str, Any]) -> list[dict[str, Any]]:
    default = config.get("DefaultCacheBehavior")
    rest = config.get("CacheBehaviors") or []
    return [b for b in [default, *rest] if isinstance(b, dict)]


def cloudfront_flows(t: Template) -> list[Arrow]:
    """Viewer -> distribution, distribution -> origins (via OAC), triggers of edge functions."""
    arrows = []
    for rid in sorted(t.resources):
        if t.type(rid) != "AWS::CloudFront::Distribution":
            continue
        config = t.props(rid).get("DistributionConfig") or {}
        behaviours = _behaviours(config)
        policies = {str(b.get("ViewerProtocolPolicy")) for b in behaviours}
        viewer = {"redirect-to-https": "HTTPS 443 (HTTP 80 redirects)", "https-only": "HTTPS 443",
                  "allow-all": "HTTP 80, HTTPS 443"}
        label = "; ".join(viewer.get(p, p) for p in sorted(policies))
        arrows.append(Arrow(INTERNET, t.node_id(rid), label))
        for origin in config.get("Origins") or []:
            target = ref_target(origin.get("DomainName"))
            methods = sorted({m for b in behaviours if b.get("TargetOriginId") == origin.get("Id")
                              for m in b.get("AllowedMethods") or []})
            parts = ["/".join(methods)] if methods else []
            oac = ref_target(origin.get("OriginAccessControlId"))
            if oac:
                signing = _lookup(t.props(oac), "OriginAccessControlConfig.SigningProtocol")
                parts.append(f"via OAC {signing}" if signing else "via OAC")
            custom = origin.get("CustomOriginConfig")
            if isinstance(custom, dict):
                parts.append(f"{custom.get('OriginProtocolPolicy', '')} "
                             f"{custom.get('HTTPSPort', 443)}".strip())
            dst = t.node_id(target) if target else f"origin:{origin.get('DomainName')}"
            arrows.append(Arrow(t.node_id(rid), dst, " ".join(parts) or "origin"))
        triggers: dict[tuple[str, str], int] = Counter()
        for b in behaviours:
            for assoc in b.get("LambdaFunctionAssociations") or []:
                fn = ref_target(assoc.get("LambdaFunctionARN"))
                if fn:
                    triggers[(fn, str(assoc.get("EventType")))] += 1
            for assoc in b.get("FunctionAssociations") or []:
                fn = ref_target(assoc.get("FunctionARN"))
                if fn:
                    triggers[(fn, str(assoc.get("EventType")))] += 1
        for (fn, event), count in sorted(triggers.items()):
            scope = f"all {count} behaviours" if count == len(behaviours) else \
                f"{count} of {len(behaviours)} behaviours"
            arrows.append(Arrow(t.node_id(rid), t.node_id(fn), f"{event}, {scope}", "dotted"))
    return arrows


# --- Mermaid -----------------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Text inside a quoted Mermaid label (entity codes, as Mermaid documents them)."""
    return (text.replace("&", "#amp;").replace('"', "#quot;")
            .replace("<", "#lt;").replace(">", "#gt;"))


def _node(node_id: str, lines: Iterable[str], shape: str = "rect") -> str:
    label = "<br/>".join(_escape(line) for line in lines)
    open_, close = {"rect": ("[", "]"), "cylinder": ("[(", ")]"), "subroutine": ("[[", "]]"),
                    "stadium": ("([", "])")}[shape]
    return f'{node_id}{open_}"{label}"{close}'


def _arrow(a: Arrow) -> str:
    link = "-.->" if a.style == "dotted" else "-->"
    label = f'|"{_escape(a.label)}"|' if a.label else ""
    return f"{a.src} {link}{label} {a.dst}"


def _external_id(end: str) -> str:
    return INTERNET if end == INTERNET else "ext_" + re.sub(r"[^A-Za-z0-9]", "_", end)


def _external_label(end: str) -> str:
    if end == INTERNET:
        return "Internet"
    kind, _, value = end.partition(":")
    return {"cidr": f"CIDR {value}", "prefix": f"prefix list {value}",
            "origin": f"origin {value}"}.get(kind, end)


@dataclass
class Picture:
    env: str
    templates: list[Template]

    def stack_title(self, t: Template) -> str:
        return f"{t.stack.name} · {t.stack.region}"

    def traffic(self) -> tuple[str, list[tuple[str, str, str, str]]]:
        """The traffic flowchart and its table rows (from, to, allowed, note)."""
        lines = ["flowchart LR"]
        inside: dict[str, dict[str, tuple[str, ...]]] = {}
        arrows: list[Arrow] = []
        externals: set[str] = set()
        rows = []
        for t in self.templates:
            boxes: dict[str, tuple[str, ...]] = {}
            owners = members(t)

            def ends(end: str, t: Template = t, owners: dict[str, list[str]] = owners,
                     boxes: dict[str, tuple[str, ...]] = boxes) -> list[str]:
                if end in t.resources:
                    who = owners.get(end) or [end]
                    for rid in who:
                        boxes[t.node_id(rid)] = (rid, f"in {end}") if rid != end else (rid,)
                    return [t.node_id(rid) for rid in who]
                externals.add(end)
                return [_external_id(end)]

            for flow in security_group_flows(t):
                label = ports_label(flow.ports)
                if flow.note:
                    label += f" — blocked: {flow.note}"
                for a in ends(flow.src):
                    for b in ends(flow.dst):
                        via = _way_out(t, a.split("_", 1)[1]) if b == INTERNET else ""
                        arrows.append(Arrow(a, b, f"{label} {via}".strip(),
                                            "dotted" if flow.note else "solid"))
                rows.append((_row_end(t, flow.src, owners), _row_end(t, flow.dst, owners),
                             ports_label(flow.ports),
                             f"{flow.how}: {flow.note}" if flow.note else flow.how))
            for a in cloudfront_flows(t):
                for end in (a.src, a.dst):
                    if end == INTERNET or end.startswith("origin:"):
                        externals.add(end)
                    else:
                        rid = end.split("_", 1)[1]
                        boxes[end] = (rid, _short_type(t.type(rid)))
                arrows.append(Arrow(_external_id(a.src) if a.src == INTERNET else a.src,
                                    _external_id(a.dst) if a.dst.startswith("origin:") else a.dst,
                                    a.label, a.style))
                rows.append((_cf_end(a.src), _cf_end(a.dst), a.label, "CloudFront configuration"))
            inside[t.stack.key] = boxes
        for end in sorted(externals):
            lines.append("  " + _node(_external_id(end), [_external_label(end)], "stadium"))
        for t in self.templates:
            if not inside[t.stack.key]:
                continue
            lines.append(f'  subgraph {t.stack.key}["{_escape(self.stack_title(t))}"]')
            for node_id, label in sorted(inside[t.stack.key].items()):
                lines.append("    " + _node(node_id, label))
            lines.append("  end")
        lines += ["  " + _arrow(a) for a in sorted(set(arrows))]
        return "\n".join(lines) + "\n", rows

    def resources(self) -> str:
        lines = ["flowchart TB"]
        arrows: list[Arrow] = []
        for t in self.templates:
            boxes, stack_arrows = resource_view(t)
            arrows += stack_arrows
            lines.append(f'  subgraph {t.stack.key}["{_escape(self.stack_title(t))}"]')
            for layer, title in LAYERS.items():
                in_layer = [b for b in boxes if b.layer == layer]
                if not in_layer:
                    continue
                lines.append(f'    subgraph {t.stack.key}__{layer}["{title}"]')
                lines += ["      " + _node(b.id, b.lines, b.shape) for b in in_layer]
                lines.append("    end")
            lines.append("  end")
        lines += ["  " + _arrow(a) for a in sorted(arrows)]
        return "\n".join(lines) + "\n"


def _way_out(t: Template, rid: str) -> str:
    """'via NAT' when the subnets ``rid`` is placed in route to the internet through NAT."""
    if rid not in t.resources:
        return ""
    subnets = {s for s in t.refs[rid] if t.type(s) == "AWS::EC2::Subnet"}
    for hidden in t.refs[rid]:
        if t.type(hidden) in HIDDEN_TYPES:
            subnets |= {s for s in t.refs[hidden] if t.type(s) == "AWS::EC2::Subnet"}
    kinds = {_short_type(t.type(target)).split(" ")[-1] for subnet, target, cidr in _routes(t)
             if subnet in subnets and cidr in ("0.0.0.0/0", "::/0")}
    names = {"NatGateway": "NAT", "InternetGateway": "internet gateway"}
    return f"(via {', '.join(sorted(names.get(k, k) for k in kinds))})" if kinds else ""


def _row_end(t: Template, end: str, owners: dict[str, list[str]]) -> str:
    if end in t.resources:
        who = owners.get(end) or []
        return f"{', '.join(who)} ({end})" if who else end
    return _external_label(end)


def _cf_end(end: str) -> str:
    if end == INTERNET or end.startswith("origin:"):
        return _external_label(end)
    return end.split("_", 1)[1]


def architecture_markdown(env: str, parsed: list[tuple[Stack, dict[str, Any]]]) -> str:
    """docs/architecture/<env>.md from the environment's parsed templates (pure)."""
    pic = Picture(env, [Template(stack, doc) for stack, doc in parsed])
    traffic, rows = pic.traffic()
    counts = ", ".join(
        f"`{t.stack.name}` ({t.stack.region}, {len(t.resources)} resources)"
        for t in pic.templates)
    out = [
        f"# Architecture: {env}",
        "",
        f"<!-- Generated from rendered/{env}/ by `python render.py graph --env {env}` (and "
        "`render.py --all`). Do not edit: change the templates and re-render. -->",
        "",
        f"Stacks: {counts}.",
        "",
        "## Traffic",
        "",
        "Who may open a connection to whom: security-group rules (both sides checked: the "
        "sender's egress and the receiver's ingress), CloudFront's viewer policy, origins and "
        "edge-function triggers. A box is a resource in a security group; a dotted arrow is "
        "an edge-function trigger or a rule whose other side blocks it.",
        "",
        "```mermaid",
        traffic.rstrip("\n"),
        "```",
        "",
        "| from | to | allowed | how |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        "## Resources",
        "",
        "One box per resource a reader cares about, grouped by stack and layer (the layer comes "
        "from the CloudFormation type; logs, roles, buckets and functions join the layer that "
        "uses them). An arrow points from a resource to one it references (`Ref`, `GetAtt`, "
        "`Sub`); dotted: `DependsOn` only; \"via X\": through a resource not drawn. Not drawn: "
        "routes (shown as \"route\" arrows from subnets), route tables, security-group rules "
        "(see Traffic), roles, policies, aliases; arrows to the VPC and to the stack key, and "
        "from dashboards (their box counts what they chart).",
        "",
        "```mermaid",
        pic.resources().rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(out)


def architecture_files(summaries: list[StackSummary], docs_dir: Path) -> dict[Path, bytes]:
    """docs_dir/<env>.md per environment, from the stacks render_files parsed already."""
    by_env: dict[str, list[tuple[Stack, dict[str, Any]]]] = {}
    for summary in summaries:
        env = summary.path.parent.name
        by_env.setdefault(env, []).append((summary.stack, summary.doc))
    return {docs_dir / f"{env}.md": architecture_markdown(env, parsed).encode("utf-8")
            for env, parsed in by_env.items()}


# --- command ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--env", action="append", metavar="ENV",
                       help="an environment (a vars/ENV.yaml file); repeatable")
    which.add_argument("--all", action="store_true", help="every environment in vars/")
    parser.add_argument("--vars", type=Path, default=Path(os.path.relpath(ROOT / "vars")),
                        metavar="DIR", help="variables folder (default: vars/)")
    parser.add_argument("--out", type=Path, default=Path(os.path.relpath(DOCS)), metavar="DIR",
                        help="where the pictures go (default: docs/architecture/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 3 and list the pictures that are stale")
    parser.add_argument("--stdout", action="store_true",
                        help="print the Markdown instead of writing it (one environment)")


def run(args: argparse.Namespace) -> int:
    from .config import load_all
    from .output import render_files, stale_files, write_files

    configs = load_all(args.vars, None if args.all else args.env)
    if args.stdout and len(configs) != 1:
        raise UserError("--stdout", "", "prints one environment (allowed: with one --env)")
    summaries: list[StackSummary] = []
    for cfg in configs:  # in memory only: nothing under rendered/ is written
        summaries.extend(render_files(cfg, Path("rendered"))[1])
    pictures = architecture_files(summaries, args.out)
    if args.stdout:
        sys.stdout.write(next(iter(pictures.values())).decode("utf-8"))
        return EXIT_OK
    if args.check:
        stale = stale_files(pictures, [])
        for line in stale:
            print(f"stale: {line}")
        return EXIT_STALE if stale else EXIT_OK
    write_files(pictures, [])
    for path in sorted(pictures):
        print(f"wrote {path}")
    return EXIT_OK
