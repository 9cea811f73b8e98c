"""Estimated monthly cost floor of an environment, from its rendered templates and a price table.

  python render.py cost --env production        one environment (repeatable; default: all)
  python render.py cost --format markdown       a table for a pull request or job summary

The estimate counts what the rendered CloudFormation declares, so it follows whatever resources
exist (NAT gateways, Elastic IPs, load balancers, Aurora Serverless v2 clusters and instances,
Fargate services, KMS keys, secrets, alarms, dashboards, log groups, buckets, interface
endpoints) and prices them from tracker_infra/review/prices.yaml (us-east-1 on-demand list prices,
each with its source and date; nothing is fetched). The floor is what a quiet month costs:
Aurora at its minimum ACU on every instance, Fargate at its minimum task count, plus the usage
assumptions listed in prices.yaml (NAT data, LCUs, storage, log volume), all printed with the
estimate. The ceiling puts Aurora at maximum ACU and Fargate at maximum tasks; usage-driven
charges (requests, data transfer, CloudFront, Lambda@Edge, SNS) are not estimated.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cfn_yaml import references
from ..errors import EXIT_OK, EXIT_USER, UserError
from .template import Template

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {EXIT_OK: "", EXIT_USER: ""}

PRICES_FILE = Path(__file__).resolve().with_name("prices.yaml")

_NOT_COUNTED = (
    "Not counted: data transfer out, CloudFront and Lambda@Edge requests, SNS deliveries, KMS "
    "and Secrets Manager API requests, Container Insights metrics, backups beyond the free "
    "allowance, and account-level free tiers (10 alarms, 3 dashboards, 5 GB of logs).")


@dataclass(frozen=True)
class Prices:
    """The price table: name -> USD per unit, assumption -> value, and where each came from."""

    hours: float
    price: dict[str, float]
    assumption: dict[str, float]
    assumption_unit: dict[str, str]
    region: str
    source: dict[str, str] = field(default_factory=dict)


def _price_entries(name: str, entries: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """(key -> USD per unit, key -> "source (date)"); every price names its unit, source and date."""
    price, source = {}, {}
    for key, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("price"), (int, float)):
            raise UserError(name, f"prices.{key}.price", "must be a number (USD per unit)")
        for needed in ("source", "date", "unit"):
            if not entry.get(needed):
                raise UserError(name, f"prices.{key}.{needed}", "is missing (allowed: every "
                                "price names its unit, its source URL and the date it was checked)")
        price[key] = float(entry["price"])
        source[key] = f"{entry['source']} ({entry['date']})"
    return price, source


def _assumption_entries(name: str, entries: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    assumption, unit = {}, {}
    for key, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), (int, float)):
            raise UserError(name, f"assumptions.{key}.value", "must be a number")
        assumption[key] = float(entry["value"])
        unit[key] = str(entry.get("unit", ""))
    return assumption, unit


def load_prices(path: Path | None = None) -> Prices:
    """Read and check the price table; a missing price, source or date is a UserError."""
    from ..config import read_yaml

    path = path or PRICES_FILE
    data = read_yaml(path)
    name = str(path)
    hours = data.get("hours_per_month")
    if not isinstance(hours, (int, float)) or hours <= 0:
        raise UserError(name, "hours_per_month", "must be a positive number (allowed: 730)")
    price, source = _price_entries(name, data.get("prices") or {})
    assumption, unit = _assumption_entries(name, data.get("assumptions") or {})
    needed = (("prices", price_keys(), price), ("assumptions", assumption_keys(), assumption))
    for section, keys, have in needed:
        missing = [k for k in keys if k not in have]
        if missing:
            raise UserError(name, f"{section}.{missing[0]}", "is missing (the estimate needs it)")
    return Prices(float(hours), price, assumption, unit, str(data.get("region", "")), source)


@dataclass(frozen=True)
class Line:
    """One line item: what was counted, how it was priced, its monthly floor and ceiling."""

    item: str
    basis: str  # the arithmetic, e.g. "2 x 730 h x $0.045"
    floor: float
    ceiling: float


@dataclass
class Estimate:
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def floor(self) -> float:
        return sum(line.floor for line in self.lines)

    @property
    def ceiling(self) -> float:
        return sum(line.ceiling for line in self.lines)

    def by_item(self) -> dict[str, Line]:
        return {line.item: line for line in self.lines}


# --- reading templates -------------------------------------------------------------------------


def _of_type(docs: list[dict[str, Any]], *types: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(logical ID, properties, whole template) of every resource of the given types."""
    return [(rid, props, doc) for doc in docs for rid, props in Template(doc).of_type(*types).items()]


def _number(value: Any) -> float | None:
    """A literal number (or numeric string such as Fargate's "1024"); None for an intrinsic.

    ``Fn::If`` counts its first branch: the condition's true case is the running state (a task
    count that is 0 until the first image release is costed as released).
    """
    if isinstance(value, dict) and list(value) == ["Fn::If"]:
        return _number(value["Fn::If"][1])
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _n(value: float) -> str:
    return f"{value:g}"


def _usd(value: float) -> str:
    """A unit price: cents shown as cents ($1.00, $0.40), finer prices in full ($0.004445)."""
    return f"${value:.2f}" if round(value, 2) == value else f"${value:g}"


# --- the estimate ------------------------------------------------------------------------------


Docs = list[dict[str, Any]]


@dataclass(frozen=True)
class Priced:
    """One kind of line item: the resource types it counts, the prices and assumptions of
    prices.yaml it uses, and the function that adds its lines. A new priced type is one entry
    (the @priced decorator), its prices and assumptions in prices.yaml, and its test."""

    types: tuple[str, ...]
    prices: tuple[str, ...]
    assumptions: tuple[str, ...]
    count: Callable[[Docs, Prices, Estimate], None]


PRICED: list[Priced] = []  # in the report's order


def priced(types: tuple[str, ...], prices: tuple[str, ...],
           assumptions: tuple[str, ...] = ()) -> Callable[[Callable[[Docs, Prices, Estimate], None]],
                                                           Callable[[Docs, Prices, Estimate], None]]:
    def register(count: Callable[[Docs, Prices, Estimate], None]) -> Callable[[Docs, Prices, Estimate], None]:
        PRICED.append(Priced(types, prices, assumptions, count))
        return count

    return register


# The types no line prices, and why. A type the templates start using is priced (@priced) or
# named here; tests/test_cost.py fails until it is one or the other.
NO_CHARGE_OF_ITS_OWN = (  # configuration of something priced elsewhere, or free
    "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::CloudFront::CachePolicy",
    "AWS::CloudFront::OriginAccessControl", "AWS::EC2::FlowLog", "AWS::EC2::InternetGateway",
    "AWS::EC2::Route", "AWS::EC2::RouteTable", "AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::SecurityGroupIngress", "AWS::EC2::Subnet", "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::VPC", "AWS::EC2::VPCGatewayAttachment", "AWS::ECS::Cluster",
    "AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::IAM::Role",
    "AWS::KMS::Alias", "AWS::Lambda::Permission", "AWS::Logs::MetricFilter", "AWS::RDS::DBSubnetGroup",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription", "AWS::SNS::TopicPolicy", "AWS::SecretsManager::RotationSchedule",
    "AWS::SecretsManager::SecretTargetAttachment", "Custom::DatabaseUser",
)
BY_USAGE_NOT_COUNTED = (  # charged per request, GB or query: see _NOT_COUNTED
    "AWS::CloudFront::Distribution", "AWS::CloudFront::MonitoringSubscription", "AWS::ECR::Repository",
    "AWS::Lambda::Function", "AWS::Serverless::Function", "AWS::Route53::RecordSet", "AWS::SNS::Topic",
)


def price_keys() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for entry in PRICED for k in entry.prices))


def assumption_keys() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for entry in PRICED for k in entry.assumptions))


def estimate(docs: Docs, regions: set[str] | None = None, *, prices: Prices) -> Estimate:
    """The monthly floor and ceiling of the stacks in ``docs`` (parsed templates, long-form)."""
    est = Estimate()
    for entry in PRICED:
        entry.count(docs, prices, est)
    a = prices.assumption
    est.notes.append("Assumptions: " + "; ".join(
        f"{k} = {_n(a[k])} {prices.assumption_unit[k]}" for k in assumption_keys()) + ".")
    others = sorted((regions or set()) - {prices.region})
    if others:
        est.notes.append(f"Prices are {prices.region} list prices; stacks in {', '.join(others)} "
                         "may cost somewhat more.")
    est.notes.append(_NOT_COUNTED)
    return est


def _flat(est: Estimate, item: str, basis: str, cost: float) -> None:
    est.lines.append(Line(item, basis, cost, cost))


@priced(("AWS::EC2::NatGateway",), ("nat_gateway_hour", "nat_gateway_gb"), ("nat_data_gb",))
def _nat(docs: Docs, prices: Prices, est: Estimate) -> None:
    p, a, h = prices.price, prices.assumption, prices.hours
    n = len(_of_type(docs, "AWS::EC2::NatGateway"))  # public and private ones bill alike
    if n:
        _flat(est, "NAT gateways", f"{n} x {_n(h)} h x {_usd(p['nat_gateway_hour'])}",
              n * h * p["nat_gateway_hour"])
        _flat(est, "NAT data processing", f"{n} x {_n(a['nat_data_gb'])} GB (assumed) x "
              f"{_usd(p['nat_gateway_gb'])}/GB", n * a["nat_data_gb"] * p["nat_gateway_gb"])


def _albs(docs: Docs) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [x for x in _of_type(docs, "AWS::ElasticLoadBalancingV2::LoadBalancer")
            if x[1].get("Type", "application") == "application"]


@priced(("AWS::ElasticLoadBalancingV2::LoadBalancer",), ("alb_hour", "alb_lcu_hour"), ("alb_lcu",))
def _alb(docs: Docs, prices: Prices, est: Estimate) -> None:
    p, a, h = prices.price, prices.assumption, prices.hours
    n = len(_albs(docs))
    if n:
        _flat(est, "Application Load Balancers", f"{n} x {_n(h)} h x ({_usd(p['alb_hour'])} + "
              f"{_n(a['alb_lcu'])} LCU (assumed) x {_usd(p['alb_lcu_hour'])})",
              n * h * (p["alb_hour"] + a["alb_lcu"] * p["alb_lcu_hour"]))


@priced(("AWS::EC2::EIP", "AWS::ElasticLoadBalancingV2::LoadBalancer"), ("public_ipv4_hour",),
        ("alb_public_ips",))
def _public_ips(docs: Docs, prices: Prices, est: Estimate) -> None:
    p, a, h = prices.price, prices.assumption, prices.hours
    eips = len(_of_type(docs, "AWS::EC2::EIP"))
    public_albs = [x for x in _albs(docs) if x[1].get("Scheme", "internet-facing") == "internet-facing"]
    ips = eips + len(public_albs) * a["alb_public_ips"]
    if ips:
        what = f"{eips} Elastic IP(s)" + (f" + {len(public_albs)} ALB x {_n(a['alb_public_ips'])} "
                                          "(assumed)" if public_albs else "")
        _flat(est, "Public IPv4 addresses", f"({what}) x {_n(h)} h x {_usd(p['public_ipv4_hour'])}",
              ips * h * p["public_ipv4_hour"])


@priced(("AWS::EC2::VPCEndpoint",), ("vpc_interface_endpoint_hour",))
def _endpoints(docs: Docs, prices: Prices, est: Estimate) -> None:
    p, h = prices.price, prices.hours
    endpoint_azs = 0
    for _, props, _ in _of_type(docs, "AWS::EC2::VPCEndpoint"):
        if props.get("VpcEndpointType") == "Interface":
            subnets = props.get("SubnetIds")
            endpoint_azs += len(subnets) if isinstance(subnets, list) else 2
    if endpoint_azs:
        price = p["vpc_interface_endpoint_hour"]
        _flat(est, "Interface VPC endpoints", f"{endpoint_azs} endpoint-AZ(s) x {_n(h)} h x {_usd(price)}",
              endpoint_azs * h * price)


@priced(("AWS::RDS::DBCluster", "AWS::RDS::DBInstance"),
        ("aurora_serverless_v2_acu_hour", "aurora_serverless_v2_acu_hour_io_optimized",
         "aurora_storage_gb_month", "aurora_storage_gb_month_io_optimized", "aurora_io_million"),
        ("aurora_storage_gb", "aurora_io_million"))
def _aurora(docs: Docs, prices: Prices, est: Estimate) -> None:
    p, a, h = prices.price, prices.assumption, prices.hours
    clusters = [x for x in _of_type(docs, "AWS::RDS::DBCluster")
                if isinstance(x[1].get("ServerlessV2ScalingConfiguration"), dict)]
    serverless = [x for x in _of_type(docs, "AWS::RDS::DBInstance")
                  if x[1].get("DBInstanceClass") == "db.serverless"]
    for cluster_id, props, doc in clusters:
        members = [x for x in serverless if x[2] is doc
                   and (cluster_id in set(references(x[1].get("DBClusterIdentifier")))
                        or len(clusters) == 1)]
        scaling = props["ServerlessV2ScalingConfiguration"]
        low, high = _number(scaling.get("MinCapacity")), _number(scaling.get("MaxCapacity"))
        io_optimized = props.get("StorageType") == "aurora-iopt1"
        acu = p["aurora_serverless_v2_acu_hour_io_optimized" if io_optimized
                else "aurora_serverless_v2_acu_hour"]
        n = len(members)
        if low is None or high is None:
            est.notes.append(f"{cluster_id}: ACU range is not a literal; its compute is not counted.")
        else:
            floor, ceiling = low * n * h * acu, high * n * h * acu
            add_basis = f"{_n(low)}..{_n(high)} ACU x {n} instance(s) x {_n(h)} h x {_usd(acu)}"
            est.lines.append(Line(f"Aurora Serverless v2 compute ({cluster_id})", add_basis,
                                  floor, ceiling))
        gb = a["aurora_storage_gb"]
        if io_optimized:
            cost = gb * p["aurora_storage_gb_month_io_optimized"]
            basis = (f"{_n(gb)} GB (assumed) x {_usd(p['aurora_storage_gb_month_io_optimized'])} "
                     "(I/O-Optimized, no I/O charge)")
        else:
            cost = gb * p["aurora_storage_gb_month"] + a["aurora_io_million"] * p["aurora_io_million"]
            basis = (f"{_n(gb)} GB (assumed) x {_usd(p['aurora_storage_gb_month'])} + "
                     f"{_n(a['aurora_io_million'])} M I/O (assumed) x {_usd(p['aurora_io_million'])}")
        est.lines.append(Line(f"Aurora storage and I/O ({cluster_id})", basis, cost, cost))


Found = tuple[str, dict[str, Any], dict[str, Any]]  # (logical ID, properties, its template)


def _task_of(docs: Docs, service: Found) -> tuple[str, dict[str, Any]] | None:
    """The service's task definition in its own template."""
    service_id, props, doc = service
    refs = set(references(props.get("TaskDefinition")))
    return next(((tid, tprops) for tid, tprops, tdoc in _of_type(docs, "AWS::ECS::TaskDefinition")
                 if tdoc is doc and tid in refs), None)


def _on_fargate(props: dict[str, Any], task: dict[str, Any]) -> bool:
    strategies = props.get("CapacityProviderStrategy") or []
    return (props.get("LaunchType") == "FARGATE" or "FARGATE" in (task.get("RequiresCompatibilities") or [])
            or any(isinstance(s, dict) and str(s.get("CapacityProvider", "")).startswith("FARGATE")
                   for s in strategies))


def _task_range(docs: Docs, service: Found, services: int) -> tuple[float | None, float | None]:
    """(fewest, most) tasks: its scalable target's capacity, else its desired count."""
    service_id, props, doc = service
    targets = [x for x in _of_type(docs, "AWS::ApplicationAutoScaling::ScalableTarget")
               if x[1].get("ScalableDimension") == "ecs:service:DesiredCount"]
    mine = [x for x in targets if x[2] is doc and service_id in set(references(x[1].get("ResourceId")))]
    if not mine and services == 1 and len(targets) == 1:
        mine = targets
    if mine:
        return _number(mine[0][1].get("MinCapacity")), _number(mine[0][1].get("MaxCapacity"))
    count = _number(props.get("DesiredCount", 1))
    return count, count


def _fargate_line(service_id: str, task: dict[str, Any], low: float, high: float,
                  prices: Prices) -> Line:
    p, h = prices.price, prices.hours
    arm = (task.get("RuntimePlatform") or {}).get("CpuArchitecture") == "ARM64"
    vcpu_price = p["fargate_vcpu_hour_arm" if arm else "fargate_vcpu_hour"]
    gb_price = p["fargate_gb_hour_arm" if arm else "fargate_gb_hour"]
    vcpu, gb = (_number(task.get("Cpu")) or 0) / 1024, (_number(task.get("Memory")) or 0) / 1024
    per_task = h * (vcpu * vcpu_price + gb * gb_price)
    basis = (f"{_n(low)}..{_n(high)} task(s) x {_n(h)} h x ({_n(vcpu)} vCPU x {_usd(vcpu_price)} + "
             f"{_n(gb)} GB x {_usd(gb_price)})")
    return Line(f"Fargate tasks ({service_id})", basis, low * per_task, high * per_task)


@priced(("AWS::ECS::Service", "AWS::ECS::TaskDefinition", "AWS::ApplicationAutoScaling::ScalableTarget"),
        ("fargate_vcpu_hour", "fargate_gb_hour", "fargate_vcpu_hour_arm", "fargate_gb_hour_arm"))
def _fargate(docs: Docs, prices: Prices, est: Estimate) -> None:
    services = _of_type(docs, "AWS::ECS::Service")
    for service in services:
        service_id, props, _ = service
        task = _task_of(docs, service)
        if task is None:
            est.notes.append(f"{service_id}: task definition not found in the template; not counted.")
            continue
        task_id, tprops = task
        if not _on_fargate(props, tprops):
            continue
        if _number(tprops.get("Cpu")) is None or _number(tprops.get("Memory")) is None:
            est.notes.append(f"{task_id}: Cpu/Memory are not literals; {service_id} not counted.")
            continue
        low, high = _task_range(docs, service, len(services))
        if low is None or high is None:
            est.notes.append(f"{service_id}: task count is not a literal; not counted.")
            continue
        est.lines.append(_fargate_line(service_id, tprops, low, high, prices))


@priced(("AWS::KMS::Key",), ("kms_key_month",))
def _kms(docs: Docs, prices: Prices, est: Estimate) -> None:
    keys = len(_of_type(docs, "AWS::KMS::Key"))
    if keys:
        price = prices.price["kms_key_month"]
        _flat(est, "KMS customer managed keys", f"{keys} x {_usd(price)}", keys * price)


@priced(("AWS::SecretsManager::Secret", "AWS::RDS::DBCluster", "AWS::RDS::DBInstance"), ("secret_month",))
def _secrets(docs: Docs, prices: Prices, est: Estimate) -> None:
    secrets = len(_of_type(docs, "AWS::SecretsManager::Secret"))
    managed = sum(1 for _, props, _ in _of_type(docs, "AWS::RDS::DBCluster", "AWS::RDS::DBInstance")
                  if props.get("ManageMasterUserPassword") is True)
    if secrets + managed:
        price = prices.price["secret_month"]
        what = f"({secrets} + {managed} RDS-managed)" if secrets and managed else str(secrets + managed)
        _flat(est, "Secrets Manager secrets", f"{what} x {_usd(price)}", (secrets + managed) * price)


def _high_resolution(periods: list[float | None]) -> bool:
    return any(x is not None and x < 60 for x in periods)


def _alarm_metrics(props: dict[str, Any]) -> tuple[int, bool]:
    """(metrics an alarm bills, whether at high resolution: a period under a minute)."""
    metrics = props.get("Metrics")
    if not isinstance(metrics, list):
        return 1, _high_resolution([_number(props.get("Period"))])
    items = [m for m in metrics if isinstance(m, dict)]
    stats = [m["MetricStat"] for m in items if isinstance(m.get("MetricStat"), dict)]
    count = sum(1 for m in items if "MetricStat" in m)
    if any("ANOMALY_DETECTION_BAND" in str(m.get("Expression", "")) for m in items):
        count = 3 * max(count, 1)  # an anomaly detection alarm bills three metrics
    return count, _high_resolution([_number(stat.get("Period")) for stat in stats])


@priced(("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"),
        ("alarm_metric_month", "alarm_metric_month_high_resolution", "composite_alarm_month"))
def _alarms(docs: Docs, prices: Prices, est: Estimate) -> None:
    p = prices.price
    standard = high_res = 0
    for _, props, _ in _of_type(docs, "AWS::CloudWatch::Alarm"):
        count, high = _alarm_metrics(props)
        high_res, standard = (high_res + count, standard) if high else (high_res, standard + count)
    composite = len(_of_type(docs, "AWS::CloudWatch::CompositeAlarm"))
    if standard + high_res + composite:
        cost = (standard * p["alarm_metric_month"] + high_res * p["alarm_metric_month_high_resolution"]
                + composite * p["composite_alarm_month"])
        parts = [f"{standard} alarm metric(s) x {_usd(p['alarm_metric_month'])}"]
        if high_res:
            parts.append(f"{high_res} high-resolution x {_usd(p['alarm_metric_month_high_resolution'])}")
        if composite:
            parts.append(f"{composite} composite x {_usd(p['composite_alarm_month'])}")
        est.lines.append(Line("CloudWatch alarms", " + ".join(parts), cost, cost))


@priced(("AWS::CloudWatch::Dashboard",), ("dashboard_month",))
def _dashboards(docs: Docs, prices: Prices, est: Estimate) -> None:
    dashboards = len(_of_type(docs, "AWS::CloudWatch::Dashboard"))
    if dashboards:
        price = prices.price["dashboard_month"]
        _flat(est, "CloudWatch dashboards", f"{dashboards} x {_usd(price)}", dashboards * price)


@priced(("AWS::Logs::LogGroup",), ("logs_ingestion_gb", "logs_storage_gb_month"), ("log_ingestion_gb",))
def _logs(docs: Docs, prices: Prices, est: Estimate) -> None:
    p, a = prices.price, prices.assumption
    groups = _of_type(docs, "AWS::Logs::LogGroup")
    if not groups:
        return
    gb = a["log_ingestion_gb"]
    n = len(groups)
    cost = n * gb * p["logs_ingestion_gb"]
    est.lines.append(Line("CloudWatch Logs ingestion", f"{n} log group(s) x {_n(gb)} GB (assumed) x "
                          f"{_usd(p['logs_ingestion_gb'])}/GB", cost, cost))
    # Steady state: a group keeps (retention in months) x its monthly volume; none means 12 months.
    months = 0.0
    for _, props, _ in groups:
        days = _number(props.get("RetentionInDays"))
        months += (days / 30 if days is not None else 12)
    cost = months * gb * p["logs_storage_gb_month"]
    est.lines.append(Line("CloudWatch Logs storage", f"{_n(round(months, 2))} group-months retained x "
                          f"{_n(gb)} GB x {_usd(p['logs_storage_gb_month'])} (uncompressed, upper bound)",
                          cost, cost))


@priced(("AWS::S3::Bucket",), ("s3_standard_gb_month",), ("s3_storage_gb",))
def _s3(docs: Docs, prices: Prices, est: Estimate) -> None:
    buckets = len(_of_type(docs, "AWS::S3::Bucket"))
    if buckets:
        gb, price = prices.assumption["s3_storage_gb"], prices.price["s3_standard_gb_month"]
        _flat(est, "S3 storage", f"{buckets} bucket(s) x {_n(gb)} GB (assumed) x {_usd(price)}",
              buckets * gb * price)


# --- presentation ------------------------------------------------------------------------------


# The estimate's columns, in the text table's order (the markdown table puts Basis second).
COLUMNS = ("Item", "Floor / month", "Ceiling / month", "Basis")


def format_estimate(title: str, est: Estimate, markdown: bool) -> str:
    item, floor, ceiling, basis = COLUMNS
    if markdown:
        rows = [f"#### {title}", "", f"| {item} | {basis} | {floor} | {ceiling} |",
                "|---|---|--:|--:|"]
        rows += [f"| {line.item} | {line.basis} | {_money(line.floor)} | {_money(line.ceiling)} |"
                 for line in est.lines]
        rows.append(f"| **Total** | | **{_money(est.floor)}** | **{_money(est.ceiling)}** |")
        rows += [""] + [f"- {note}" for note in est.notes]
        return "\n".join(rows) + "\n"
    width = max([len(line.item) for line in est.lines] + [5])
    rows = [title, f"  {item:<{width}}  {floor:>15}  {ceiling:>15}  {basis}"]
    rows += [f"  {line.item:<{width}}  {_money(line.floor):>15}  {_money(line.ceiling):>15}  {line.basis}"
             for line in est.lines]
    rows.append(f"  {'Total':<{width}}  {_money(est.floor):>15}  {_money(est.ceiling):>15}  "
                "(floor, ceiling at max scale)")
    rows += [f"  {note}" for note in est.notes]
    return "\n".join(rows) + "\n"


def _pair(a: float, b: float) -> str:
    sign = "+" if b >= a else "-"
    return f"{_money(a)} -> {_money(b)} ({sign}{_money(abs(b - a))})"


def _amounts(line: Line | None) -> tuple[str, str]:
    """(floor, ceiling) of a line item, "-" for one that is not there."""
    return (_money(line.floor), _money(line.ceiling)) if line else ("-", "-")


def format_delta(name: str, before: Estimate, after: Estimate, markdown: bool) -> str | None:
    """What a change does to an environment's estimate, or None when it moves nothing."""
    old, new = before.by_item(), after.by_item()
    def values(line: Line | None) -> tuple[float, float] | None:
        return (line.floor, line.ceiling) if line else None

    changed = [item for item in dict.fromkeys([*old, *new]) if values(old.get(item)) != values(new.get(item))]
    if not changed:
        return None
    totals = f"floor {_pair(before.floor, after.floor)}; ceiling {_pair(before.ceiling, after.ceiling)}"
    if markdown:
        rows = [f"**Estimated monthly cost, {name}:** {totals}", "",
                "| Item | Floor before | Floor after | Ceiling before | Ceiling after |",
                "|---|--:|--:|--:|--:|"]
        for item in changed:
            (of, oc), (nf, nc) = _amounts(old.get(item)), _amounts(new.get(item))
            rows.append(f"| {item} | {of} | {nf} | {oc} | {nc} |")
    else:
        rows = [f"Estimated monthly cost, {name}: {totals}"]
        for item in changed:
            (of, oc), (nf, nc) = _amounts(old.get(item)), _amounts(new.get(item))
            rows.append(f"  {item}: floor {of} -> {nf}, ceiling {oc} -> {nc}")
    return "\n".join(rows) + "\n"


# --- command -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..rendering import ROOT

    parser.add_argument("--env", action="append", metavar="ENV",
                        help="an environment (a vars/ENV.yaml file); repeatable; default: all")
    parser.add_argument("--vars", type=Path, default=Path(os.path.relpath(ROOT / "vars")),
                        metavar="DIR", help="variables folder (default: vars/)")
    parser.add_argument("--prices", type=Path, default=None, metavar="FILE",
                        help="price table (default: tracker_infra/review/prices.yaml)")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")


def environment_docs(cfg: Any) -> tuple[list[dict[str, Any]], set[str]]:
    """The parsed templates of one environment, rendered in memory, and their regions."""
    from ..output import render_files

    summaries = render_files(cfg, Path("rendered"))[1]
    return [s.doc for s in summaries], {s.stack.region for s in summaries}


def run(args: argparse.Namespace) -> int:
    from ..config import load_all

    prices = load_prices(args.prices)
    markdown = args.format == "markdown"
    out = []
    for cfg in load_all(args.vars, args.env):
        docs, regions = environment_docs(cfg)
        est = estimate(docs, regions, prices=prices)
        out.append(format_estimate(f"{cfg.environment}: estimated monthly cost (USD, {prices.region} "
                                   "on-demand)", est, markdown))
    print("\n".join(out), end="")
    return 0
