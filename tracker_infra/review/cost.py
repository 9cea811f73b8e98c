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


def load_prices(path: Path | None = None) -> Prices:
    """Read and check the price table; a missing price, source or date is a UserError."""
    from ..config import read_yaml

    path = path or PRICES_FILE
    data = read_yaml(path)
    name = str(path)
    hours = data.get("hours_per_month")
    if not isinstance(hours, (int, float)) or hours <= 0:
        raise UserError(name, "hours_per_month", "must be a positive number (allowed: 730)")
    price: dict[str, float] = {}
    source: dict[str, str] = {}
    for key, entry in (data.get("prices") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("price"), (int, float)):
            raise UserError(name, f"prices.{key}.price", "must be a number (USD per unit)")
        for needed in ("source", "date", "unit"):
            if not entry.get(needed):
                raise UserError(name, f"prices.{key}.{needed}", "is missing (allowed: every "
                                "price names its unit, its source URL and the date it was checked)")
        price[key] = float(entry["price"])
        source[key] = f"{entry['source']} ({entry['date']})"
    assumption: dict[str, float] = {}
    unit: dict[str, str] = {}
    for key, entry in (data.get("assumptions") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), (int, float)):
            raise UserError(name, f"assumptions.{key}.value", "must be a number")
        assumption[key] = float(entry["value"])
        unit[key] = str(entry.get("unit", ""))
    prices = Prices(float(hours), price, assumption, unit, str(data.get("region", "")), source)
    for key in _PRICE_KEYS:
        if key not in price:
            raise UserError(name, f"prices.{key}", "is missing (the estimate needs it)")
    for key in _ASSUMPTION_KEYS:
        if key not in assumption:
            raise UserError(name, f"assumptions.{key}", "is missing (the estimate needs it)")
    return prices


_PRICE_KEYS = (
    "nat_gateway_hour", "nat_gateway_gb", "public_ipv4_hour", "vpc_interface_endpoint_hour",
    "alb_hour", "alb_lcu_hour", "aurora_serverless_v2_acu_hour",
    "aurora_serverless_v2_acu_hour_io_optimized", "aurora_storage_gb_month",
    "aurora_storage_gb_month_io_optimized", "aurora_io_million", "fargate_vcpu_hour",
    "fargate_gb_hour", "fargate_vcpu_hour_arm", "fargate_gb_hour_arm", "kms_key_month",
    "secret_month", "alarm_metric_month", "alarm_metric_month_high_resolution",
    "composite_alarm_month", "dashboard_month", "logs_ingestion_gb", "logs_storage_gb_month",
    "s3_standard_gb_month",
)
_ASSUMPTION_KEYS = ("nat_data_gb", "alb_lcu", "alb_public_ips", "aurora_storage_gb",
                    "aurora_io_million", "log_ingestion_gb", "s3_storage_gb")


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


def estimate(docs: list[dict[str, Any]], regions: set[str] | None = None, *,
             prices: Prices) -> Estimate:
    """The monthly floor and ceiling of the stacks in ``docs`` (parsed templates, long-form)."""
    p, a, h = prices.price, prices.assumption, prices.hours
    est = Estimate()
    add = est.lines.append

    nats = _of_type(docs, "AWS::EC2::NatGateway")  # public and private ones bill alike
    if nats:
        n = len(nats)
        cost = n * h * p["nat_gateway_hour"]
        add(Line("NAT gateways", f"{n} x {_n(h)} h x {_usd(p['nat_gateway_hour'])}", cost, cost))
        cost = n * a["nat_data_gb"] * p["nat_gateway_gb"]
        add(Line("NAT data processing", f"{n} x {_n(a['nat_data_gb'])} GB (assumed) x "
                 f"{_usd(p['nat_gateway_gb'])}/GB", cost, cost))

    albs = [x for x in _of_type(docs, "AWS::ElasticLoadBalancingV2::LoadBalancer")
            if x[1].get("Type", "application") == "application"]
    eips = len(_of_type(docs, "AWS::EC2::EIP"))
    public_albs = [x for x in albs if x[1].get("Scheme", "internet-facing") == "internet-facing"]
    if albs:
        n = len(albs)
        cost = n * h * (p["alb_hour"] + a["alb_lcu"] * p["alb_lcu_hour"])
        add(Line("Application Load Balancers", f"{n} x {_n(h)} h x ({_usd(p['alb_hour'])} + "
                 f"{_n(a['alb_lcu'])} LCU (assumed) x {_usd(p['alb_lcu_hour'])})", cost, cost))
    ips = eips + len(public_albs) * a["alb_public_ips"]
    if ips:
        cost = ips * h * p["public_ipv4_hour"]
        what = f"{eips} Elastic IP(s)" + (f" + {len(public_albs)} ALB x {_n(a['alb_public_ips'])} "
                                          "(assumed)" if public_albs else "")
        add(Line("Public IPv4 addresses", f"({what}) x {_n(h)} h x {_usd(p['public_ipv4_hour'])}",
                 cost, cost))

    endpoint_azs = 0
    for _, props, _ in _of_type(docs, "AWS::EC2::VPCEndpoint"):
        if props.get("VpcEndpointType") == "Interface":
            subnets = props.get("SubnetIds")
            endpoint_azs += len(subnets) if isinstance(subnets, list) else 2
    if endpoint_azs:
        cost = endpoint_azs * h * p["vpc_interface_endpoint_hour"]
        add(Line("Interface VPC endpoints", f"{endpoint_azs} endpoint-AZ(s) x {_n(h)} h x "
                 f"{_usd(p['vpc_interface_endpoint_hour'])}", cost, cost))

    _aurora(docs, prices, est)
    _fargate(docs, prices, est)

    keys = len(_of_type(docs, "AWS::KMS::Key"))
    if keys:
        cost = keys * p["kms_key_month"]
        add(Line("KMS customer managed keys", f"{keys} x {_usd(p['kms_key_month'])}", cost, cost))

    secrets = len(_of_type(docs, "AWS::SecretsManager::Secret"))
    managed = sum(1 for _, props, _ in _of_type(docs, "AWS::RDS::DBCluster", "AWS::RDS::DBInstance")
                  if props.get("ManageMasterUserPassword") is True)
    if secrets + managed:
        cost = (secrets + managed) * p["secret_month"]
        what = f"({secrets} + {managed} RDS-managed)" if secrets and managed else str(secrets + managed)
        add(Line("Secrets Manager secrets", f"{what} x {_usd(p['secret_month'])}", cost, cost))

    _alarms(docs, prices, est)

    dashboards = len(_of_type(docs, "AWS::CloudWatch::Dashboard"))
    if dashboards:
        cost = dashboards * p["dashboard_month"]
        add(Line("CloudWatch dashboards", f"{dashboards} x {_usd(p['dashboard_month'])}", cost, cost))

    _logs(docs, prices, est)

    buckets = len(_of_type(docs, "AWS::S3::Bucket"))
    if buckets:
        cost = buckets * a["s3_storage_gb"] * p["s3_standard_gb_month"]
        add(Line("S3 storage", f"{buckets} bucket(s) x {_n(a['s3_storage_gb'])} GB (assumed) x "
                 f"{_usd(p['s3_standard_gb_month'])}", cost, cost))

    est.notes.append("Assumptions: " + "; ".join(
        f"{k} = {_n(a[k])} {prices.assumption_unit[k]}" for k in _ASSUMPTION_KEYS) + ".")
    others = sorted((regions or set()) - {prices.region})
    if others:
        est.notes.append(f"Prices are {prices.region} list prices; stacks in {', '.join(others)} "
                         "may cost somewhat more.")
    est.notes.append(_NOT_COUNTED)
    return est


def _aurora(docs: list[dict[str, Any]], prices: Prices, est: Estimate) -> None:
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


def _fargate(docs: list[dict[str, Any]], prices: Prices, est: Estimate) -> None:
    p, h = prices.price, prices.hours
    services = _of_type(docs, "AWS::ECS::Service")
    targets = [x for x in _of_type(docs, "AWS::ApplicationAutoScaling::ScalableTarget")
               if x[1].get("ScalableDimension") == "ecs:service:DesiredCount"]
    for service_id, props, doc in services:
        task_refs = set(references(props.get("TaskDefinition")))
        task = next(((tid, tprops) for tid, tprops, tdoc in _of_type(docs, "AWS::ECS::TaskDefinition")
                     if tdoc is doc and tid in task_refs), None)
        if task is None:
            est.notes.append(f"{service_id}: task definition not found in the template; not counted.")
            continue
        task_id, tprops = task
        fargate = (props.get("LaunchType") == "FARGATE"
                   or "FARGATE" in (tprops.get("RequiresCompatibilities") or [])
                   or any(isinstance(s, dict) and str(s.get("CapacityProvider", "")).startswith("FARGATE")
                          for s in props.get("CapacityProviderStrategy") or []))
        if not fargate:
            continue
        cpu, memory = _number(tprops.get("Cpu")), _number(tprops.get("Memory"))
        if cpu is None or memory is None:
            est.notes.append(f"{task_id}: Cpu/Memory are not literals; {service_id} not counted.")
            continue
        mine = [x for x in targets if x[2] is doc and service_id in set(references(x[1].get("ResourceId")))]
        if not mine and len(services) == 1 and len(targets) == 1:
            mine = targets
        if mine:
            low, high = _number(mine[0][1].get("MinCapacity")), _number(mine[0][1].get("MaxCapacity"))
        else:
            low = high = _number(props.get("DesiredCount", 1))
        if low is None or high is None:
            est.notes.append(f"{service_id}: task count is not a literal; not counted.")
            continue
        arm = (tprops.get("RuntimePlatform") or {}).get("CpuArchitecture") == "ARM64"
        vcpu_price = p["fargate_vcpu_hour_arm" if arm else "fargate_vcpu_hour"]
        gb_price = p["fargate_gb_hour_arm" if arm else "fargate_gb_hour"]
        vcpu, gb = cpu / 1024, memory / 1024
        per_task = h * (vcpu * vcpu_price + gb * gb_price)
        basis = (f"{_n(low)}..{_n(high)} task(s) x {_n(h)} h x ({_n(vcpu)} vCPU x {_usd(vcpu_price)} + "
                 f"{_n(gb)} GB x {_usd(gb_price)})")
        est.lines.append(Line(f"Fargate tasks ({service_id})", basis, low * per_task, high * per_task))


def _alarms(docs: list[dict[str, Any]], prices: Prices, est: Estimate) -> None:
    p = prices.price
    standard = high_res = 0
    for _, props, _ in _of_type(docs, "AWS::CloudWatch::Alarm"):
        metrics = props.get("Metrics")
        if isinstance(metrics, list):
            count = sum(1 for m in metrics if isinstance(m, dict) and "MetricStat" in m)
            periods = [_number(m["MetricStat"].get("Period")) for m in metrics
                       if isinstance(m, dict) and isinstance(m.get("MetricStat"), dict)]
            if any(isinstance(m, dict) and "ANOMALY_DETECTION_BAND" in str(m.get("Expression", ""))
                   for m in metrics):
                count = 3 * max(count, 1)  # an anomaly detection alarm bills three metrics
        else:
            count, periods = 1, [_number(props.get("Period"))]
        if any(x is not None and x < 60 for x in periods):
            high_res += count
        else:
            standard += count
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


def _logs(docs: list[dict[str, Any]], prices: Prices, est: Estimate) -> None:
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


# --- presentation ------------------------------------------------------------------------------


def format_estimate(title: str, est: Estimate, markdown: bool) -> str:
    if markdown:
        rows = [f"#### {title}", "", "| Item | Basis | Floor / month | Ceiling / month |",
                "|---|---|--:|--:|"]
        rows += [f"| {line.item} | {line.basis} | {_money(line.floor)} | {_money(line.ceiling)} |"
                 for line in est.lines]
        rows.append(f"| **Total** | | **{_money(est.floor)}** | **{_money(est.ceiling)}** |")
        rows += [""] + [f"- {note}" for note in est.notes]
        return "\n".join(rows) + "\n"
    width = max([len(line.item) for line in est.lines] + [5])
    rows = [title]
    rows += [f"  {line.item:<{width}}  {_money(line.floor):>11}  {_money(line.ceiling):>11}  {line.basis}"
             for line in est.lines]
    rows.append(f"  {'Total':<{width}}  {_money(est.floor):>11}  {_money(est.ceiling):>11}  "
                "(floor, ceiling at max scale)")
    rows += [f"  {note}" for note in est.notes]
    return "\n".join(rows) + "\n"


def format_delta(name: str, before: Estimate, after: Estimate, markdown: bool) -> str | None:
    """What a change does to an environment's estimate, or None when it moves nothing."""
    old, new = before.by_item(), after.by_item()
    changed = [item for item in dict.fromkeys([*old, *new])
               if (old.get(item) and (old[item].floor, old[item].ceiling)) !=
                  (new.get(item) and (new[item].floor, new[item].ceiling))]
    if not changed:
        return None

    def pair(a: float, b: float) -> str:
        sign = "+" if b >= a else "-"
        return f"{_money(a)} -> {_money(b)} ({sign}{_money(abs(b - a))})"

    rows = []
    if markdown:
        rows += [f"**Estimated monthly cost, {name}:** floor {pair(before.floor, after.floor)}; "
                 f"ceiling {pair(before.ceiling, after.ceiling)}", "",
                 "| Item | Floor before | Floor after | Ceiling before | Ceiling after |",
                 "|---|--:|--:|--:|--:|"]
        for item in changed:
            o, n = old.get(item), new.get(item)
            rows.append(f"| {item} | {_money(o.floor) if o else '-'} | {_money(n.floor) if n else '-'} | "
                        f"{_money(o.ceiling) if o else '-'} | {_money(n.ceiling) if n else '-'} |")
    else:
        rows.append(f"Estimated monthly cost, {name}: floor {pair(before.floor, after.floor)}; "
                    f"ceiling {pair(before.ceiling, after.ceiling)}")
        for item in changed:
            o, n = old.get(item), new.get(item)
            rows.append(f"  {item}: floor {_money(o.floor) if o else '-'} -> "
                        f"{_money(n.floor) if n else '-'}, ceiling {_money(o.ceiling) if o else '-'} "
                        f"-> {_money(n.ceiling) if n else '-'}")
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
