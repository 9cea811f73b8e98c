"""Security-group reachability: every rule of every group, and the flows they allow (both sides
of a group-to-group flow checked), from a parsed template."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .template import Template, ref_target
from .values import compact

INTERNET = "internet"
NO_MATCH_CIDR = "255.255.255.255/32"  # an egress rule that matches nothing: "no egress at all"
# Types that name a security group without being in it: its rules, and IAM policies whose
# resources name it (a role that may make network interfaces in the group).
MEMBER_PROPERTIES_SKIP = frozenset({"AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress",
                                    "AWS::EC2::SecurityGroupEgress", "AWS::IAM::Role",
                                    "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"})


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


Written = tuple[str, str, dict[str, Any], str]  # (group, direction, rule properties, where written)


def _written_rules(t: Template) -> list[Written]:
    """The rules as written: inline in a group, or as a standalone Ingress/Egress resource."""
    written: list[Written] = []
    for rid in t.resources:
        type_, props = t.type(rid), t.props(rid)
        if type_ == "AWS::EC2::SecurityGroup":
            for direction, key in (("ingress", "SecurityGroupIngress"), ("egress", "SecurityGroupEgress")):
                rules = [r for r in props.get(key) or [] if isinstance(r, dict)]
                written += [(rid, direction, rule, rid) for rule in rules]
        elif type_ in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            if props.get("GroupId") is not None:  # another stack's group too (!ImportValue, an ID)
                written.append((_named(props["GroupId"]), type_.rsplit("Group", 1)[-1].lower(), props, rid))
    return written


def _peer(rule: dict[str, Any], direction: str) -> tuple[str, str] | None:
    """(kind, peer) of a rule: another group, a CIDR or a prefix list; None for none (or the
    CIDR that matches nothing, which stands for "no rule")."""
    prefix = "Source" if direction == "ingress" else "Destination"
    for kind, key in (("group", f"{prefix}SecurityGroupId"), ("cidr", "CidrIp"), ("cidr", "CidrIpv6"),
                      ("prefix", f"{prefix}PrefixListId")):
        if rule.get(key) is not None:
            peer = _named(rule[key], by_id=kind != "cidr")
            return None if peer == NO_MATCH_CIDR else (kind, peer)
    return None


def _named(value: Any, by_id: bool = True) -> str:
    """A peer or group as the rules compare it: a group's or prefix list's logical ID (by_id), a
    CIDR; any other value (a group ID written out, !ImportValue, a CIDR from !GetAtt or !Ref) as
    its text, which only the same text matches."""
    found = ref_target(value) if by_id else None
    return found or (value if isinstance(value, str) else compact(value, 200))


def security_group_rules(t: Template) -> list[Rule]:
    """Every rule of every security group: inline, and standalone Ingress/Egress resources."""
    rules = []
    for group, direction, rule, source in _written_rules(t):
        peer = _peer(rule, direction)
        if peer is not None:
            rules.append(Rule(group, direction, peer[0], peer[1], _ports(rule), source))
    return sorted(rules)


ANYWHERE_CIDRS = ("0.0.0.0/0", "::/0")
DEFAULT_EGRESS = "AWS's default egress"  # the source of the allow-all rule a group gets by default


def declares_egress(t: Template, group: str) -> bool:
    """Whether a group writes its own egress rules (inline; the match-nothing rule counts). A group
    that writes none is created with an allow-all egress rule (CloudFormation Template Reference,
    AWS::EC2::SecurityGroup: "if you do not add egress rules, we add egress rules that allow all
    outbound IPv4 and IPv6 traffic"). Only inline rules are counted, as the flows always have: a
    standalone Egress resource is added after the group is created. The same page says that
    removing every egress rule from a group that exists adds no rule back; the review judges the
    template, which is what a group created from it (a new environment, a replacement) gets."""
    return bool(t.props(group).get("SecurityGroupEgress"))


def default_egress(t: Template) -> list[Rule]:
    """The allow-all egress rule of every group that declares no egress of its own."""
    groups = sorted(rid for rid in t.resources if t.type(rid) == "AWS::EC2::SecurityGroup")
    return [Rule(g, "egress", "cidr", "0.0.0.0/0", Ports("all", *ALL_PORTS), DEFAULT_EGRESS)
            for g in groups if not declares_egress(t, g)]


def cidr_within(cidr: str, outer: str) -> bool:
    """Whether every address of ``cidr`` is in ``outer`` (same IP version)."""
    try:
        net, big = ipaddress.ip_network(cidr, strict=False), ipaddress.ip_network(outer, strict=False)
    except ValueError:
        return cidr == outer
    return net.version == big.version and net.subnet_of(big)  # type: ignore[arg-type]


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


FlowKey = tuple[str, str, str, str]  # (src, dst, note, how)


@dataclass
class _Groups:
    """The template's security groups and rules, asked which ports one side allows."""

    rules: list[Rule]
    vpcs: list[Any]
    groups: list[str]
    declares_egress: set[str]

    @classmethod
    def of(cls, t: Template) -> _Groups:
        groups = sorted(rid for rid in t.resources if t.type(rid) == "AWS::EC2::SecurityGroup")
        return cls(security_group_rules(t), _vpc_networks(t), groups,
                   {g for g in groups if declares_egress(t, g)})

    def _reaches(self, r: Rule, peer: str) -> bool:
        """Whether a rule's peer covers the group ``peer``: by name, a CIDR inside the VPC, or
        anywhere."""
        if r.peer_kind == "group":
            return r.peer == peer
        return r.peer_kind == "cidr" and (_inside_vpc(r.peer, self.vpcs) or r.peer in ANYWHERE_CIDRS)

    def allowed(self, group: str, direction: str, peer: str) -> list[Ports]:
        """The ports ``group`` allows to or from ``peer`` in this direction, any rule counted."""
        default = direction == "egress" and group not in self.declares_egress  # CloudFormation's allow-all
        out = [Ports("all", *ALL_PORTS)] if default else []
        return out + [r.ports for r in self.rules
                      if r.group == group and r.direction == direction and self._reaches(r, peer)]

    def named(self, group: str, direction: str, peer: str) -> list[Ports]:
        """The ports of the rules of ``group`` that name the group ``peer``."""
        return [r.ports for r in self.rules if r.group == group and r.direction == direction
                and r.peer_kind == "group" and r.peer == peer]

    def between(self, src: str, dst: str, flows: dict[FlowKey, set[Ports]]) -> None:
        """src -> dst: what dst's ingress names and src's egress lets out, and the other way."""
        egress = self.allowed(src, "egress", dst)
        for p in self.named(dst, "ingress", src):
            met = [m for e in egress if (m := p.meet(e))]
            if met:
                flows[(src, dst, "", f"{dst} ingress and {src} egress")].update(met)
            else:
                flows[(src, dst, f"{src} egress does not allow it", f"{dst} ingress")].add(p)
        ingress_any = self.allowed(dst, "ingress", src)
        for p in self.named(src, "egress", dst):
            if not any(p.meet(i) for i in ingress_any):
                flows[(src, dst, f"{dst} ingress does not allow it", f"{src} egress")].add(p)

    def outside(self, r: Rule) -> FlowKey | None:
        """The flow of a rule to or from outside the groups (one side only), or None for egress
        to the VPC's own addresses (checked as the sending side of group-to-group flows)."""
        if r.peer_kind == "cidr" and r.peer in ANYWHERE_CIDRS:
            end = INTERNET
        elif r.peer_kind == "cidr" and _inside_vpc(r.peer, self.vpcs):
            if r.direction == "egress":
                return None
            end = f"cidr:{r.peer}"
        else:
            end = f"{r.peer_kind}:{r.peer}"
        how = f"{r.group} {r.direction}"
        return (end, r.group, "", how) if r.direction == "ingress" else (r.group, end, "", how)


def security_group_flows(t: Template) -> list[Flow]:
    """Flows between groups and to/from the outside, checking both sides where both are groups.

    Group A -> group B is allowed where A's egress allows B (by group, or a CIDR inside the VPC,
    or the default allow-all when A declares no egress) AND B's ingress allows A likewise.
    """
    found = _Groups.of(t)
    flows: dict[FlowKey, set[Ports]] = defaultdict(set)
    for src in found.groups:
        for dst in found.groups:
            if src != dst:
                found.between(src, dst, flows)
    for r in found.rules:
        key = found.outside(r) if r.peer_kind != "group" else None
        if key is not None:
            flows[key].add(r.ports)
    return sorted(Flow(src, dst, tuple(sorted(ports)), note, how)
                  for (src, dst, note, how), ports in flows.items())
