"""render.py cost: line items counted from templates, priced from prices.yaml, arithmetic by hand."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from tests.helpers import ENVS, config, copy_vars, render
from tracker_infra.cfn_yaml import load_template
from tracker_infra.cli import main
from tracker_infra.config import load_all
from tracker_infra.errors import UserError
from tracker_infra.review.cost import (
    COLUMNS,
    PRICES_FILE,
    environment_docs,
    estimate,
    format_delta,
    load_prices,
)

# A hand-made stack: every counted resource type, with known quantities.
STACK = """
Resources:
  NatGateway1: {Type: AWS::EC2::NatGateway, Properties: {SubnetId: !Ref PublicSubnet1}}
  NatGateway2: {Type: AWS::EC2::NatGateway, Properties: {SubnetId: !Ref PublicSubnet2}}
  NatEip1: {Type: AWS::EC2::EIP}
  NatEip2: {Type: AWS::EC2::EIP}
  ApiLoadBalancer:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties: {Scheme: internet-facing}
  DatabaseCluster:
    Type: AWS::RDS::DBCluster
    Properties:
      ManageMasterUserPassword: true
      ServerlessV2ScalingConfiguration: {MinCapacity: 2, MaxCapacity: 16}
  DatabaseWriter:
    Type: AWS::RDS::DBInstance
    Properties: {DBInstanceClass: db.serverless, DBClusterIdentifier: !Ref DatabaseCluster}
  DatabaseReader:
    Type: AWS::RDS::DBInstance
    Properties: {DBInstanceClass: db.serverless, DBClusterIdentifier: !Ref DatabaseCluster}
  ApiTaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties: {Cpu: "1024", Memory: "2048", RequiresCompatibilities: [FARGATE]}
  ApiService:
    Type: AWS::ECS::Service
    Properties: {LaunchType: FARGATE, TaskDefinition: !Ref ApiTaskDefinition, DesiredCount: 3}
  ApiScalableTarget:
    Type: AWS::ApplicationAutoScaling::ScalableTarget
    Properties:
      MinCapacity: 3
      MaxCapacity: 20
      ScalableDimension: ecs:service:DesiredCount
      ResourceId: !Sub "service/${ApiCluster}/${ApiService.Name}"
  StackKey: {Type: AWS::KMS::Key}
  EdgeKey: {Type: AWS::KMS::Key}
  ApiSecret: {Type: AWS::SecretsManager::Secret}
  CpuAlarm: {Type: AWS::CloudWatch::Alarm, Properties: {MetricName: CPUUtilization, Period: 60}}
  FastAlarm: {Type: AWS::CloudWatch::Alarm, Properties: {MetricName: Errors, Period: 10}}
  ErrorRateAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - {Id: errors, ReturnData: false, MetricStat: {Period: 300, Stat: Sum, Metric: {MetricName: A}}}
        - {Id: requests, ReturnData: false, MetricStat: {Period: 300, Stat: Sum, Metric: {MetricName: B}}}
        - {Id: rate, Expression: "errors / requests"}
  ApiDashboard: {Type: AWS::CloudWatch::Dashboard}
  ApiLogGroup: {Type: AWS::Logs::LogGroup, Properties: {RetentionInDays: 90}}
  FlowLogGroup: {Type: AWS::Logs::LogGroup, Properties: {RetentionInDays: 30}}
  SiteBucket: {Type: AWS::S3::Bucket}
"""


def test_every_line_item_matches_the_arithmetic_done_by_hand() -> None:
    est = estimate([load_template(STACK)], prices=load_prices())
    lines = {line.item: (round(line.floor, 6), round(line.ceiling, 6)) for line in est.lines}
    expected = {
        "NAT gateways": 2 * 730 * 0.045,
        "NAT data processing": 2 * 20 * 0.045,
        "Application Load Balancers": 1 * 730 * (0.0225 + 1 * 0.008),
        "Public IPv4 addresses": (2 + 1 * 2) * 730 * 0.005,
        "Aurora storage and I/O (DatabaseCluster)": 20 * 0.10 + 10 * 0.20,
        "KMS customer managed keys": 2 * 1.00,
        "Secrets Manager secrets": (1 + 1) * 0.40,  # one secret + the RDS-managed master secret
        "CloudWatch alarms": (1 + 2) * 0.10 + 1 * 0.30,  # metric math: two metrics; 10 s: high-res
        "CloudWatch dashboards": 1 * 3.00,
        "CloudWatch Logs ingestion": 2 * 1 * 0.50,
        "CloudWatch Logs storage": (90 / 30 + 30 / 30) * 1 * 0.03,
        "S3 storage": 1 * 1 * 0.023,
    }
    ranged = {
        "Aurora Serverless v2 compute (DatabaseCluster)": (2 * 2 * 730 * 0.12, 16 * 2 * 730 * 0.12),
        "Fargate tasks (ApiService)": (3 * 730 * (1 * 0.04048 + 2 * 0.004445),
                                       20 * 730 * (1 * 0.04048 + 2 * 0.004445)),
    }
    want = {k: (round(v, 6), round(v, 6)) for k, v in expected.items()}
    want.update({k: (round(lo, 6), round(hi, 6)) for k, (lo, hi) in ranged.items()})
    assert lines == want
    assert est.floor == pytest.approx(sum(lo for lo, _ in want.values()))
    assert est.ceiling == pytest.approx(sum(hi for _, hi in want.values()))
    assert any(note.startswith("Assumptions: nat_data_gb = 20 GB") for note in est.notes)


def test_io_optimized_arm_and_desired_count_are_priced_as_such() -> None:
    doc = load_template("""
Resources:
  Db:
    Type: AWS::RDS::DBCluster
    Properties:
      StorageType: aurora-iopt1
      ServerlessV2ScalingConfiguration: {MinCapacity: 0.5, MaxCapacity: 2}
  DbInstance: {Type: AWS::RDS::DBInstance, Properties: {DBInstanceClass: db.serverless}}
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties: {Cpu: "256", Memory: "512", RuntimePlatform: {CpuArchitecture: ARM64}}
  Service:
    Type: AWS::ECS::Service
    Properties: {LaunchType: FARGATE, TaskDefinition: !Ref Task, DesiredCount: 2}
""")
    lines = {line.item: line for line in estimate([doc], prices=load_prices()).lines}
    assert lines["Aurora Serverless v2 compute (Db)"].floor == pytest.approx(0.5 * 1 * 730 * 0.156)
    assert lines["Aurora storage and I/O (Db)"].floor == pytest.approx(20 * 0.225)
    fargate = lines["Fargate tasks (Service)"]
    assert fargate.floor == fargate.ceiling == pytest.approx(2 * 730 * (0.25 * 0.03238 + 0.5 * 0.00356))


def test_rendered_environment_from_fixed_vars(tmp_path: Path) -> None:
    """Pinned vars, rendered by the real templates: the floor follows nat_gateways, min_acu x
    instances, and min_tasks x the task size."""
    vars_dir = copy_vars(tmp_path, {"staging.yaml": {
        "network": {"nat_gateways": 2},
        "database": {"min_acu": 1.5, "max_acu": 6, "instances": 2},
        "api": {"cpu": 512, "memory": 2048, "min_tasks": 2, "max_tasks": 5},
    }})
    cfg = load_all(vars_dir, ["staging"])[0]
    docs, regions = environment_docs(cfg)
    lines = {line.item: line for line in estimate(docs, regions, prices=load_prices()).lines}
    assert lines["NAT gateways"].floor == pytest.approx(2 * 730 * 0.045)
    aurora = [line for item, line in lines.items() if item.startswith("Aurora Serverless v2 compute")]
    assert len(aurora) == 1
    assert aurora[0].floor == pytest.approx(1.5 * 2 * 730 * 0.12)
    assert aurora[0].ceiling == pytest.approx(6 * 2 * 730 * 0.12)
    fargate = [line for item, line in lines.items() if item.startswith("Fargate tasks")]
    assert len(fargate) == 1
    assert fargate[0].floor == pytest.approx(2 * 730 * (0.5 * 0.04048 + 2 * 0.004445))
    assert fargate[0].ceiling == pytest.approx(5 * 730 * (0.5 * 0.04048 + 2 * 0.004445))


def test_every_price_names_its_source_and_date() -> None:
    data = yaml.safe_load(PRICES_FILE.read_text())
    assert data["region"] == "us-east-1" and data["hours_per_month"] == 730
    for key, entry in data["prices"].items():
        assert re.match(r"^https://aws\.amazon\.com/[a-z0-9/-]+/pricing/$", entry["source"]), key
        assert date.fromisoformat(entry["date"]) <= date.today(), key
        assert entry["price"] > 0 and entry["unit"], key


def test_a_price_without_source_is_a_user_error(tmp_path: Path) -> None:
    data = yaml.safe_load(PRICES_FILE.read_text())
    del data["prices"]["alb_hour"]["source"]
    broken = tmp_path / "prices.yaml"
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=r"prices\.alb_hour\.source: is missing"):
        load_prices(broken)


def test_delta_lists_only_the_items_that_moved() -> None:
    prices = load_prices()
    before = estimate([load_template(STACK)], prices=prices)
    bigger = load_template(STACK.replace("MaxCapacity: 16", "MaxCapacity: 32"))
    after = estimate([bigger], prices=prices)
    text = format_delta("production", before, after, markdown=False)
    assert text is not None
    assert text.splitlines()[1:] == [
        "  Aurora Serverless v2 compute (DatabaseCluster): floor $350.40 -> $350.40, "
        f"ceiling ${16 * 2 * 730 * 0.12:,.2f} -> ${32 * 2 * 730 * 0.12:,.2f}"]
    assert format_delta("production", before, before, markdown=False) is None


def test_cost_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--env", "production"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("production: estimated monthly cost (USD, us-east-1 on-demand)\n")
    assert re.search(r"^  Total +\$[\d,]+\.\d\d +\$[\d,]+\.\d\d", out, re.M)
    heading, first = out.splitlines()[1:3]  # under the title: the headings, then the first item
    assert re.split(r"  +", heading.strip()) == list(COLUMNS)
    ends = [m.end() for m in re.finditer(r"\S+(?: \S+)*", heading)]
    assert [m.end() for m in re.finditer(r"\S+(?: \S+)*", first)][1:3] == ends[1:3]  # amounts under them
    assert "Assumptions:" in out and "Not counted:" in out
    assert main(["cost", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.count("| **Total** |") == 3
    assert main(["cost", "--env", "nosuch"]) == 2


def test_every_resource_type_the_stacks_use_is_priced_or_said_why_not() -> None:
    """A new resource type is priced (one @priced entry in tracker_infra/review/cost.py, its
    prices and assumptions in prices.yaml) or named as free or usage-priced; the registry's keys
    are exactly those prices.yaml must hold."""
    from tracker_infra.review.cost import BY_USAGE_NOT_COUNTED, NO_CHARGE_OF_ITS_OWN, PRICED

    used = {r["Type"] for env in ENVS for key in ("app", "edge")
            for r in render(config(env), key)["Resources"].values()}
    priced = {t for entry in PRICED for t in entry.types}
    unaccounted = used - priced - set(NO_CHARGE_OF_ITS_OWN) - set(BY_USAGE_NOT_COUNTED)
    assert not unaccounted, f"price these or name them in cost.py: {sorted(unaccounted)}"
    assert not priced & (set(NO_CHARGE_OF_ITS_OWN) | set(BY_USAGE_NOT_COUNTED))
    prices = load_prices()
    for entry in PRICED:
        assert set(entry.prices) <= set(prices.price) and set(entry.assumptions) <= set(prices.assumption)
