"""The shipped create-only table (tracker_infra/review/create_only.json) is what cfn-lint's public
schema manager says today: regenerated here from PROVIDER_SCHEMA_MANAGER and compared."""

from __future__ import annotations

from tracker_infra.review.schema_table import TABLE, dumps, generate


def test_the_shipped_create_only_table_is_fresh() -> None:
    fresh = dumps(generate())
    assert TABLE.read_text(encoding="utf-8") == fresh, (
        "stale: run `make regen` and commit the table")


def test_the_table_holds_what_the_verdicts_need() -> None:
    table = generate()
    assert "VpcId" in table["AWS::EC2::Subnet"]["always"]
    assert "CidrBlock" in table["AWS::EC2::VPC"]["always"]
    assert table["AWS::Logs::LogGroup"]["names"] == ["LogGroupName"]
    assert table["AWS::RDS::DBCluster"]["names"] == ["DBClusterIdentifier"]
    assert "Cluster" not in table["AWS::ECS::Service"]["names"]  # a reference, not its own name
