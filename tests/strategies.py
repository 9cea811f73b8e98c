"""Hypothesis strategies for valid environment configurations, built from the schema's own ranges.

Each generated environment starts from vars/defaults.yaml (so keys the strategy does not vary keep
their shipped defaults) and varies what the schema lets vary: CIDRs, ACU, Fargate pairs, task
counts, retention, domains, tag values, deletion protection, NAT and instance counts, ports.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import strategies as st

from tests.helpers import VARS
from tracker_infra.config import merge, read_yaml
from tracker_infra.schema import FARGATE_MEMORY, LOG_RETENTION_DAYS, Config

DEFAULTS = read_yaml(VARS / "defaults.yaml")
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
# Private ranges to carve environments from; one distinct /16 (or smaller) block per environment.
BLOCKS = [ipaddress.IPv4Network(f"10.{i}.0.0/16") for i in range(256)] + \
         [ipaddress.IPv4Network(f"172.{i}.0.0/16") for i in range(16, 32)] + \
         [ipaddress.IPv4Network("192.168.0.0/16")]

names = st.from_regex(r"[a-z][a-z0-9]{1,11}", fullmatch=True)
acu = st.integers(1, 512).map(lambda n: n / 2)
tag_text = st.text(st.sampled_from("abcXYZ019 _.:/=+-@éß"), min_size=1, max_size=30)


@st.composite
def vpc_cidr(draw: st.DrawFn, block: ipaddress.IPv4Network) -> str:
    prefix = draw(st.integers(16, 24))
    options = list(block.subnets(new_prefix=prefix)) if prefix > 16 else [block]
    return str(draw(st.sampled_from(options[:64])))


@st.composite
def fargate_pair(draw: st.DrawFn) -> tuple[int, int]:
    cpu = draw(st.sampled_from(sorted(FARGATE_MEMORY)))
    return cpu, draw(st.sampled_from(FARGATE_MEMORY[cpu]))


def _uuid(n: int) -> str:
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


@st.composite
def environment(draw: st.DrawFn, name: str, block: ipaddress.IPv4Network) -> Config:
    account = draw(st.from_regex(r"[0-9]{12}", fullmatch=True))
    region = draw(st.sampled_from(REGIONS))
    lo = draw(acu)
    hi = draw(acu.filter(lambda x: x >= lo))
    cpu, memory = draw(fargate_pair())
    min_tasks = draw(st.integers(1, 20))
    max_tasks = draw(st.integers(min_tasks, 100))
    interval = draw(st.integers(6, 300))
    domain = f"{name}.tracker.example.org"
    data: dict[str, Any] = {
        "environment": name,
        "lifecycle": draw(st.sampled_from(["disposable", "protected"])),
        "account": account,
        "region": region,
        "description": draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                                     max_size=80)),
        "network": {"vpc_cidr": draw(vpc_cidr(block)), "nat_gateways": draw(st.sampled_from([1, 2]))},
        "database": {
            "min_acu": lo, "max_acu": hi, "instances": 2,
            "backup_retention_days": draw(st.integers(7, 35)),
        },
        "api": {
            "cpu": cpu, "memory": memory, "min_tasks": min_tasks, "max_tasks": max_tasks,
            "container_port": draw(st.sampled_from([8080, 8443, 9443])),
            "health_check": {"interval_seconds": interval,
                             "timeout_seconds": draw(st.integers(2, min(120, interval - 1)))},
            "domain": f"api.{domain}",
            "certificate_arn": f"arn:aws:acm:{region}:{account}:certificate/"
                               f"{_uuid(draw(st.integers(0, 2**64)))}",
        },
        "frontend": {
            "domain": domain,
            "certificate_arn": f"arn:aws:acm:us-east-1:{account}:certificate/"
                               f"{_uuid(draw(st.integers(0, 2**64)))}",
            "csp_report_only": draw(st.booleans()),
        },
        "monitoring": {
            "log_retention_days": draw(st.sampled_from(LOG_RETENTION_DAYS)),
            "alarm_emails": draw(st.lists(st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.example\.com",
                                                        fullmatch=True), max_size=3, unique=True)),
        },
        "tags": {"Environment": name, "Owner": draw(tag_text), "CostCenter": draw(tag_text)},
    }
    return Config.model_validate(merge(DEFAULTS, data))


@st.composite
def environments(draw: st.DrawFn, min_size: int = 1, max_size: int = 3) -> list[Config]:
    """One to several valid environments with distinct names and non-overlapping networks."""
    env_names = draw(st.lists(names, min_size=min_size, max_size=max_size, unique=True))
    blocks = draw(st.lists(st.sampled_from(BLOCKS), min_size=len(env_names),
                           max_size=len(env_names), unique=True))
    return [draw(environment(n, b)) for n, b in zip(env_names, blocks, strict=True)]
