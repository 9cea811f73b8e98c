"""How users reach an environment: Route 53 alias records with vars dns.hosted_zone_id, or
outputs naming the records to create at another DNS provider without it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import config, config_with, render, resources

CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"  # the fixed hosted zone of every CloudFront alias


def _records(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources(doc, "AWS::Route53::RecordSet").items()}


def test_with_a_zone_the_site_gets_a_and_aaaa_aliases_and_the_api_an_a_alias() -> None:
    cfg = config("production")
    zone = cfg.dns.hosted_zone_id
    assert zone
    site = _records(render(cfg, "edge"))
    assert {(r["Type"], r["Name"]) for r in site.values()} == {
        ("A", f"{cfg.frontend.domain}."), ("AAAA", f"{cfg.frontend.domain}.")}
    for record in site.values():
        assert record["HostedZoneId"] == zone
        assert record["AliasTarget"] == {"DNSName": {"Fn::GetAtt": ["Distribution", "DomainName"]},
                                         "HostedZoneId": CLOUDFRONT_ZONE, "EvaluateTargetHealth": False}
        assert "ResourceRecords" not in record and "TTL" not in record  # an alias, not a CNAME
    (api,) = _records(render(cfg, "app")).values()
    assert (api["Type"], api["Name"], api["HostedZoneId"]) == ("A", f"{cfg.api.domain}.", zone)
    assert api["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["ApiLoadBalancer", "DNSName"]}
    assert api["AliasTarget"]["HostedZoneId"] == {
        "Fn::GetAtt": ["ApiLoadBalancer", "CanonicalHostedZoneID"]}


def test_the_distribution_answers_ipv6_for_the_aaaa_record() -> None:
    edge = render(config("production"), "edge")
    assert edge["Resources"]["Distribution"]["Properties"]["DistributionConfig"]["IPV6Enabled"] is True


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_without_a_zone_the_outputs_name_the_records_to_create(env: str) -> None:
    cfg = config(env)
    assert cfg.dns.hosted_zone_id is None
    app, edge = render(cfg, "app"), render(cfg, "edge")
    assert not _records(app) and not _records(edge)
    api = app["Outputs"]["ApiDnsRecord"]["Value"]["Fn::Sub"]
    assert api == f"Create at your DNS provider: {cfg.api.domain} CNAME ${{ApiLoadBalancer.DNSName}}"
    site = edge["Outputs"]["FrontendDnsRecord"]["Value"]["Fn::Sub"]
    assert site.startswith(f"Create at your DNS provider: {cfg.frontend.domain} CNAME "
                           "${Distribution.DomainName}")
    assert "zone apex" in site and "ALIAS" in site


def test_a_zone_set_in_vars_adds_the_records_and_says_so() -> None:
    cfg = config_with("staging", {"dns": {"hosted_zone_id": "Z0123456789ABCDEFGHIJ"}})
    assert len(_records(render(cfg, "edge"))) == 2 and len(_records(render(cfg, "app"))) == 1
    assert "created by this stack" in render(cfg, "app")["Outputs"]["ApiDnsRecord"]["Value"]


def test_a_malformed_zone_id_is_refused() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="hosted_zone_id"):
        config_with("staging", {"dns": {"hosted_zone_id": "example.com"}})
