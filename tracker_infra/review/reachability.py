"""Security-group reachability: every rule of every group, and the flows they allow (both sides
of a group-to-group flow checked), from a parsed template."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .template import Template, ref_target

INTERNET = "internet"
NO_MATCH_CIDR = "255.255.255.255/32"  # an egress rule that matches nothing: "no egress at all"
MEMBER_PROPERTIES_SKIP = frozenset({"AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress",
                                    "AWS::EC2::SecurityGroupEgress"})


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

