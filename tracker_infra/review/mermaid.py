"""Mermaid architecture pictures of an environment (docs/architecture/<env>.md), drawn from its
parsed templates: a traffic view (security-group flows, CloudFront) and a resource view per stack
and layer. The command is ``render.py graph`` (graph.py)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..output import StackSummary
from ..rendering import Stack
from .layers import LAYERS, layers
from .reachability import INTERNET, members, ports_label, security_group_flows
from .template import Template, ref_target

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

def _served(t: Template, group: list[str], layer: str, layer_of: dict[str, str]) -> dict[str, list[str]]:
    """A group's resources by the layer each serves most (its own when it serves none)."""
    served: dict[str, list[str]] = defaultdict(list)
    for rid in group:
        near = Counter(layer_of[r] for r in t.refs[rid] if layer_of[r] not in (layer, "shared"))
        served[min(near, key=lambda n: (-near[n], list(LAYERS).index(n))) if near else layer].append(rid)
    return served


def _collapse(t: Template, shown: list[str],
              layer_of: dict[str, str]) -> tuple[list[Box], dict[str, str], list[str]]:
    """Many boxes of one type in one layer become one per layer served ("4 × Alarm (API)"):
    (those boxes, resource -> its box, the resources left to draw one by one)."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rid in shown:
        groups[(layer_of[rid], t.type(rid))].append(rid)
    boxes, box_of, singles = [], {}, []
    for (layer, type_), group in sorted(groups.items()):
        if len(group) <= COLLAPSE_OVER:
            singles += group
            continue
        for target, part in sorted(_served(t, group, layer, layer_of).items()):
            if len(part) == 1:
                singles += part
                continue
            gid = f"{t.stack.key}__{type_.split('::', 1)[-1].replace('::', '')}{target.title()}"
            box_of.update(dict.fromkeys(part, gid))
            boxes.append(Box(layer, gid, (f"{len(part)} × {_short_type(type_)} ({LAYERS[target]})", *part),
                             _shape(type_)))
    return boxes, box_of, singles


def _extra(t: Template, rid: str, users: Counter[str]) -> list[str]:
    """What a single box says besides its ID and type."""
    type_ = t.type(rid)
    if type_ == "AWS::KMS::Key":
        return [f"used by {_count(users[rid], 'resource')}"]
    if type_ in NO_EDGES_FROM:
        return [f"charts {_count(len(t.refs[rid]), 'resource')}"]
    if type_ == "AWS::SNS::Topic":  # where the alarms end up
        protocols = Counter(str(t.props(s).get("Protocol")) for s in t.resources
                            if t.type(s) == "AWS::SNS::Subscription" and rid in t.refs[s])
        return [", ".join(f"{_count(n, p + ' subscription')}" for p, n in sorted(protocols.items()))] \
            if protocols else []
    return _facts(t, rid)


# A direct reference beats "via", which beats DependsOn alone.
ARROW_RANK = {("solid", ""): 0, ("solid", "via"): 1, ("dotted", ""): 2}


def _rank(style: str, label: str) -> int:
    return ARROW_RANK.get((style, "via" if label.startswith("via ") else ""), 3)


@dataclass
class _Arrows:
    t: Template
    box_of: dict[str, str]
    found: dict[tuple[str, str], Arrow] = field(default_factory=dict)

    def add(self, src: str, dst: str, label: str = "", style: str = "solid") -> None:
        a, b = self.box_of[src], self.box_of[dst]
        if a == b or self.t.type(dst) in NO_EDGES_TO or self.t.type(src) in NO_EDGES_FROM:
            return
        old = self.found.get((a, b))
        if old is None or _rank(style, label) < _rank(old.style, old.label):
            self.found[(a, b)] = Arrow(a, b, label, style)

    def to(self, rid: str, target: str, shown: set[str], style: str) -> None:
        """rid -> target, or one step through a resource not drawn (role, subnet group, policy)."""
        if target in shown:
            self.add(rid, target, style=style)
            return
        beyond = self.t.refs[target] | (self.t.depends[target] if style == "solid" else set())
        for other in sorted(beyond):
            if other in shown and other != rid:
                self.add(rid, other, f"via {target}", style)


def resource_view(t: Template) -> tuple[list[Box], list[Arrow]]:
    """The boxes and arrows of one stack's resource picture."""
    layer_of = layers(t)
    shown = sorted(rid for rid in t.resources if t.type(rid) not in HIDDEN_TYPES)
    users: Counter[str] = Counter(r for rid in t.resources for r in t.refs[rid])
    boxes, box_of, singles = _collapse(t, shown, layer_of)
    for rid in singles:
        box_of[rid] = t.node_id(rid)
        label = (rid, _short_type(t.type(rid)), *_extra(t, rid, users))
        boxes.append(Box(layer_of[rid], t.node_id(rid), label, _shape(t.type(rid))))
    arrows, shown_set = _Arrows(t, box_of), set(shown)
    for rid in shown:
        for target in sorted(t.refs[rid]):
            arrows.to(rid, target, shown_set, "solid")
        for target in sorted(t.depends[rid]):
            arrows.to(rid, target, shown_set, "dotted")
    for subnet, target, cidr in _routes(t):
        if subnet in shown_set and target in shown_set:
            key = (box_of[subnet], box_of[target])
            arrows.found[key] = Arrow(*key, f"route {cidr}")
    return sorted(boxes), sorted(arrows.found.values())


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

# --- traffic: CloudFront ----------------------------------------------------------------------


def _behaviours(config: dict[str, Any]) -> list[dict[str, Any]]:
    default = config.get("DefaultCacheBehavior")
    rest = config.get("CacheBehaviors") or []
    return [b for b in [default, *rest] if isinstance(b, dict)]


VIEWER = {"redirect-to-https": "HTTPS 443 (HTTP 80 redirects)", "https-only": "HTTPS 443",
          "allow-all": "HTTP 80, HTTPS 443"}


def _origin_arrow(t: Template, rid: str, origin: dict[str, Any], behaviours: list[dict[str, Any]]) -> Arrow:
    """Distribution -> origin: the methods its behaviours allow, OAC signing, a custom origin's
    protocol and port."""
    methods = sorted({m for b in behaviours if b.get("TargetOriginId") == origin.get("Id")
                      for m in b.get("AllowedMethods") or []})
    parts = ["/".join(methods)] if methods else []
    oac = ref_target(origin.get("OriginAccessControlId"))
    if oac:
        signing = _lookup(t.props(oac), "OriginAccessControlConfig.SigningProtocol")
        parts.append(f"via OAC {signing}" if signing else "via OAC")
    custom = origin.get("CustomOriginConfig")
    if isinstance(custom, dict):
        parts.append(f"{custom.get('OriginProtocolPolicy', '')} {custom.get('HTTPSPort', 443)}".strip())
    target = ref_target(origin.get("DomainName"))
    dst = t.node_id(target) if target else f"origin:{origin.get('DomainName')}"
    return Arrow(t.node_id(rid), dst, " ".join(parts) or "origin")


def _triggers(behaviours: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(function, event type) -> in how many behaviours it runs (Lambda@Edge and CloudFront
    Functions alike)."""
    triggers: Counter[tuple[str, str]] = Counter()
    for b in behaviours:
        associations = [(a, "LambdaFunctionARN") for a in b.get("LambdaFunctionAssociations") or []]
        associations += [(a, "FunctionARN") for a in b.get("FunctionAssociations") or []]
        for assoc, key in associations:
            fn = ref_target(assoc.get(key))
            if fn:
                triggers[(fn, str(assoc.get("EventType")))] += 1
    return triggers


def cloudfront_flows(t: Template) -> list[Arrow]:
    """Viewer -> distribution, distribution -> origins (via OAC), triggers of edge functions."""
    arrows = []
    for rid in sorted(t.of_type("AWS::CloudFront::Distribution")):
        config = t.props(rid).get("DistributionConfig") or {}
        behaviours = _behaviours(config)
        policies = {str(b.get("ViewerProtocolPolicy")) for b in behaviours}
        arrows.append(Arrow(INTERNET, t.node_id(rid), "; ".join(VIEWER.get(p, p) for p in sorted(policies))))
        arrows += [_origin_arrow(t, rid, origin, behaviours) for origin in config.get("Origins") or []]
        for (fn, event), count in sorted(_triggers(behaviours).items()):
            scope = (f"all {count} behaviours" if count == len(behaviours)
                     else f"{count} of {len(behaviours)} behaviours")
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
class _Traffic:
    """What the traffic picture gathers from each stack: arrows, the ends outside the stacks,
    and the table's rows (from, to, allowed, note)."""

    arrows: list[Arrow] = field(default_factory=list)
    externals: set[str] = field(default_factory=set)
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def _ends(self, t: Template, end: str, owners: dict[str, list[str]],
              boxes: dict[str, tuple[str, ...]]) -> list[str]:
        """The boxes one end of a flow is drawn as: a group's members, or an external end."""
        if end not in t.resources:
            self.externals.add(end)
            return [_external_id(end)]
        who = owners.get(end) or [end]
        for rid in who:
            boxes[t.node_id(rid)] = (rid, f"in {end}") if rid != end else (rid,)
        return [t.node_id(rid) for rid in who]

    def security_groups(self, t: Template, boxes: dict[str, tuple[str, ...]]) -> None:
        owners = members(t)
        for flow in security_group_flows(t):
            label = ports_label(flow.ports) + (f" — blocked: {flow.note}" if flow.note else "")
            for a in self._ends(t, flow.src, owners, boxes):
                for b in self._ends(t, flow.dst, owners, boxes):
                    via = _way_out(t, a.split("_", 1)[1]) if b == INTERNET else ""
                    style = "dotted" if flow.note else "solid"
                    self.arrows.append(Arrow(a, b, f"{label} {via}".strip(), style))
            self.rows.append((_row_end(t, flow.src, owners), _row_end(t, flow.dst, owners),
                              ports_label(flow.ports), f"{flow.how}: {flow.note}" if flow.note else flow.how))

    def cloudfront(self, t: Template, boxes: dict[str, tuple[str, ...]]) -> None:
        for a in cloudfront_flows(t):
            for end in (a.src, a.dst):
                if end == INTERNET or end.startswith("origin:"):
                    self.externals.add(end)
                else:
                    rid = end.split("_", 1)[1]
                    boxes[end] = (rid, _short_type(t.type(rid)))
            self.arrows.append(Arrow(_external_id(a.src) if a.src == INTERNET else a.src,
                                     _external_id(a.dst) if a.dst.startswith("origin:") else a.dst,
                                     a.label, a.style))
            self.rows.append((_cf_end(a.src), _cf_end(a.dst), a.label, "CloudFront configuration"))


@dataclass
class Picture:
    env: str
    templates: list[Template]

    def stack_title(self, t: Template) -> str:
        return f"{t.stack.name} · {t.stack.region}"

    def traffic(self) -> tuple[str, list[tuple[str, str, str, str]]]:
        """The traffic flowchart and its table rows (from, to, allowed, note)."""
        found = _Traffic()
        inside: dict[str, dict[str, tuple[str, ...]]] = {}
        for t in self.templates:
            boxes: dict[str, tuple[str, ...]] = {}
            found.security_groups(t, boxes)
            found.cloudfront(t, boxes)
            inside[t.stack.key] = boxes
        lines = ["flowchart LR"]
        lines += ["  " + _node(_external_id(end), [_external_label(end)], "stadium")
                  for end in sorted(found.externals)]
        for t in self.templates:
            if not inside[t.stack.key]:
                continue
            lines.append(f'  subgraph {t.stack.key}["{_escape(self.stack_title(t))}"]')
            lines += ["    " + _node(node_id, label)
                      for node_id, label in sorted(inside[t.stack.key].items())]
            lines.append("  end")
        lines += ["  " + _arrow(a) for a in sorted(set(found.arrows))]
        return "\n".join(lines) + "\n", found.rows

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
    pic = Picture(env, [Template(doc, stack) for stack, doc in parsed])
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

