"""The edge stack (rendered/<env>/edge.yaml), per environment: bucket, OAC, cache rules, error
responses, the Lambda@Edge wiring, the function's constraints and its rendered configuration.

Expected values come from the vars (through the parsed Config) or from AWS's documented limits
(Lambda@Edge restrictions, CloudFront quotas), never from the rendered output itself.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.helpers import ENVS, config, config_with, per_create, props, render, resources, stack_of
from tracker_infra.output import render_files
from tracker_infra.rehearsal.transforms import processed, sam_transform
from tracker_infra.schema import Config

# What a Vite build and a single-page app ask CloudFront for -> the TTL (a vars.frontend.cache
# field) the request must get. / and client-side routes are HTML: a release must show there
# within html_seconds, like /index.html.
PATHS = {
    "/": "html_seconds", "/index.html": "html_seconds", "/events/42": "html_seconds",
    "/about": "html_seconds", "/help.html": "html_seconds",
    "/assets/index-B1x9f0aa.js": "assets_seconds", "/assets/index-Cq2f3e.css": "assets_seconds",
    "/assets/hero-D4d9.png": "assets_seconds", "/assets/inter-a1b2.woff2": "assets_seconds",
    "/favicon.svg": "default_seconds", "/icons.svg": "default_seconds",
    "/robots.txt": "default_seconds", "/manifest.webmanifest": "default_seconds",
}
VERSION_REF = {"Ref": "SecurityHeadersFunction.Version"}


@pytest.fixture(scope="module")
def edge(configs: dict[str, Config]) -> dict[str, dict[str, Any]]:
    """env -> the parsed edge stack, rendered in memory from the current vars."""
    return {env: render(cfg, "edge") for env, cfg in configs.items()}


def distribution(doc: dict[str, Any]) -> dict[str, Any]:
    return props(doc, "Distribution")["DistributionConfig"]


def behaviours(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cache behaviour, the default one first."""
    dist = distribution(doc)
    return [dist["DefaultCacheBehavior"], *dist["CacheBehaviors"]]


def ttls(doc: dict[str, Any], behaviour: dict[str, Any]) -> tuple[int, int, int]:
    ref = behaviour["CachePolicyId"]["Ref"]
    policy = props(doc, ref)["CachePolicyConfig"]
    return policy["MinTTL"], policy["DefaultTTL"], policy["MaxTTL"]


def transformed(doc: dict[str, Any]) -> dict[str, Any]:
    """The edge stack after the SAM transform, as CloudFormation would see it after sam deploy
    (the local CodeUri replaced by the S3 location sam package would give it)."""
    return processed(doc, "us-east-1")


# --- region, transform ------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_edge_stack_is_in_us_east_1_whatever_the_environment_region(env: str) -> None:
    cfg = config_with(env, {"region": "eu-west-1"})
    stack = stack_of(cfg, "edge")
    assert (stack.region, stack.name, stack.output) == ("us-east-1", f"tracker-{env}-edge", "edge.yaml")
    assert stack_of(cfg, "app").region == "eu-west-1"


def test_both_stacks_render_for_every_environment(configs: dict[str, Config]) -> None:
    for cfg in configs.values():
        assert [s.key for s in (stack_of(cfg, "app"), stack_of(cfg, "edge"))] == ["app", "edge"]


@pytest.mark.parametrize("env", ENVS)
def test_edge_stack_uses_the_sam_transform(edge: dict[str, dict[str, Any]], env: str) -> None:
    assert edge[env]["Transform"] == "AWS::Serverless-2016-10-31"


@pytest.mark.parametrize("env", ENVS)
def test_sam_transform_points_every_behaviour_at_a_numbered_version(
        edge: dict[str, dict[str, Any]], env: str) -> None:
    out = transformed(edge[env])
    versions = [k for k, v in out["Resources"].items() if v["Type"] == "AWS::Lambda::Version"]
    assert len(versions) == 1
    dist = out["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    for behaviour in [dist["DefaultCacheBehavior"], *dist["CacheBehaviors"]]:
        assert behaviour["LambdaFunctionAssociations"] == [
            {"EventType": "origin-response", "LambdaFunctionARN": {"Ref": versions[0]}}]
    function = out["Resources"]["SecurityHeadersFunction"]["Properties"]
    assert "Environment" not in function and "Layers" not in function


def test_a_new_package_publishes_a_new_version(edge: dict[str, dict[str, Any]]) -> None:
    """headers.json lives in the package: another package is another version (AutoPublishAlias)."""
    first = transformed(edge["staging"])
    doc = copy.deepcopy(edge["staging"])
    doc["Resources"]["SecurityHeadersFunction"]["Properties"]["CodeUri"] = "s3://artifacts/other.zip"
    second = sam_transform(doc, "us-east-1")

    def version_ids(out: dict[str, Any]) -> set[str]:
        return {k for k, v in out["Resources"].items() if v["Type"] == "AWS::Lambda::Version"}

    assert version_ids(first) and version_ids(first).isdisjoint(version_ids(second))


# --- cache behaviours ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def behaviour_for(doc: dict[str, Any], path: str) -> dict[str, Any]:
    """The cache behaviour CloudFront picks for a request path: the first one, in order, whose
    PathPattern matches (case-sensitive; * any characters, / included; ? one), else the default."""
    for behaviour in distribution(doc)["CacheBehaviors"]:
        pattern = re.escape(behaviour["PathPattern"].lstrip("/"))
        pattern = pattern.replace(r"\*", ".*").replace(r"\?", ".")
        if re.fullmatch(pattern, path.lstrip("/")):
            return behaviour
    return distribution(doc)["DefaultCacheBehavior"]


def test_behaviour_for_follows_cloudfronts_matching_order() -> None:
    doc = {"Resources": {"Distribution": {"Properties": {"DistributionConfig": {
        "DefaultCacheBehavior": {"Id": "default"},
        "CacheBehaviors": [{"PathPattern": "assets/*", "Id": 1}, {"PathPattern": "*.js", "Id": 2},
                           {"PathPattern": "/img/?.png", "Id": 3}]}}}}}
    assert behaviour_for(doc, "/assets/a.js")["Id"] == 1  # first match wins
    assert behaviour_for(doc, "/lib/a.js")["Id"] == 2
    assert behaviour_for(doc, "/img/a.png")["Id"] == 3
    assert behaviour_for(doc, "/img/ab.png")["Id"] == "default"
    assert behaviour_for(doc, "/")["Id"] == "default"


@pytest.mark.parametrize("env", ENVS)
def test_every_request_path_gets_its_ttl_from_vars(edge: dict[str, dict[str, Any]],
                                                   configs: dict[str, Config], env: str) -> None:
    cache = configs[env].frontend.cache
    doc = edge[env]
    for path, field in PATHS.items():
        seconds = getattr(cache, field)
        assert ttls(doc, behaviour_for(doc, path)) == (0, seconds, seconds), path
    patterns = [b["PathPattern"] for b in distribution(doc)["CacheBehaviors"]]
    assert len(patterns) == len(set(patterns)) <= 24  # CloudFront's quota: 25 with the default


def test_a_root_request_takes_the_html_ttl_even_when_the_ttls_differ() -> None:
    cfg = config_with("staging", {"frontend": {"cache": {"html_seconds": 60, "default_seconds": 7200}}})
    doc = render(cfg, "edge")
    assert ttls(doc, behaviour_for(doc, "/")) == (0, 60, 60)
    assert ttls(doc, behaviour_for(doc, "/favicon.svg")) == (0, 7200, 7200)


def test_issue_ttls_hold_in_the_shipped_vars(configs: dict[str, Config]) -> None:
    """*.html 5 minutes, assets 1 year, default 1 hour, 5xx 10 s (the issue's numbers)."""
    for cfg in configs.values():
        cache = cfg.frontend.cache
        assert (cache.html_seconds, cache.assets_seconds, cache.default_seconds,
                cache.error_seconds) == (300, 365 * 24 * 3600, 3600, 10)


def test_a_changed_ttl_reaches_the_template() -> None:
    cfg = config_with("staging", {"frontend": {"cache": {"html_seconds": 60, "error_seconds": 3}}})
    doc = render(cfg, "edge")
    assert ttls(doc, behaviour_for(doc, "/index.html")) == (0, 60, 60)
    errors = {e["ErrorCode"]: e for e in distribution(doc)["CustomErrorResponses"]}
    assert errors[503]["ErrorCachingMinTTL"] == 3


def test_a_zero_ttl_is_refused_by_the_schema() -> None:
    with pytest.raises(ValidationError, match="html_seconds"):
        config_with("dev", {"frontend": {"cache": {"html_seconds": 0}}})


@pytest.mark.parametrize("env", ENVS)
def test_cache_policies_key_on_the_path_only_with_gzip_and_brotli(
        edge: dict[str, dict[str, Any]], env: str) -> None:
    policies = resources(edge[env], "AWS::CloudFront::CachePolicy")
    assert set(policies) == {"HtmlCachePolicy", "AssetsCachePolicy", "DefaultCachePolicy"}
    for logical_id in policies:
        key = props(edge[env], logical_id)["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
        assert key["EnableAcceptEncodingGzip"] is True
        assert key["EnableAcceptEncodingBrotli"] is True
        assert key["CookiesConfig"] == {"CookieBehavior": "none"}
        assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
        assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}


@pytest.mark.parametrize("env", ENVS)
def test_every_behaviour_compresses_redirects_to_https_and_reads_only(
        edge: dict[str, dict[str, Any]], env: str) -> None:
    for behaviour in behaviours(edge[env]):
        assert behaviour["Compress"] is True
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
        assert behaviour["TargetOriginId"] == "SiteBucket"


@pytest.mark.parametrize("env", ENVS)
def test_every_behaviour_runs_the_function_on_origin_response_by_version(
        edge: dict[str, dict[str, Any]], env: str) -> None:
    for behaviour in behaviours(edge[env]):
        assert behaviour["LambdaFunctionAssociations"] == [
            {"EventType": "origin-response", "LambdaFunctionARN": VERSION_REF}]
        assert "FunctionAssociations" not in behaviour  # no CloudFront Function beside it


# --- distribution -------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_distribution_serves_the_domain_over_modern_tls(edge: dict[str, dict[str, Any]],
                                                        configs: dict[str, Config], env: str) -> None:
    dist = distribution(edge[env])
    frontend = configs[env].frontend
    assert dist["Aliases"] == [frontend.domain]
    assert dist["ViewerCertificate"] == {"AcmCertificateArn": frontend.certificate_arn,
                                         "SslSupportMethod": "sni-only",
                                         "MinimumProtocolVersion": "TLSv1.2_2021"}
    assert ":us-east-1:" in frontend.certificate_arn
    assert dist["HttpVersion"] == "http2and3"
    assert dist["PriceClass"] == frontend.price_class
    assert dist["Enabled"] is True


@pytest.mark.parametrize("env", ENVS)
def test_spa_routes_and_5xx_error_caching(edge: dict[str, dict[str, Any]],
                                          configs: dict[str, Config], env: str) -> None:
    errors = {e["ErrorCode"]: e for e in distribution(edge[env])["CustomErrorResponses"]}
    assert set(errors) == {403, 404, 500, 502, 503, 504}
    for code in (403, 404):
        assert errors[code]["ResponseCode"] == 200
        assert errors[code]["ResponsePagePath"] == "/index.html"
    for code in (500, 502, 503, 504):
        assert errors[code]["ErrorCachingMinTTL"] == configs[env].frontend.cache.error_seconds
        assert "ResponsePagePath" not in errors[code]  # the origin's own 5xx, briefly cached


@pytest.mark.parametrize("env", ENVS)
def test_origin_is_the_bucket_through_oac_with_an_empty_oai(edge: dict[str, dict[str, Any]],
                                                             env: str) -> None:
    [origin] = distribution(edge[env])["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["SiteBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["SiteOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    oac = props(edge[env], "SiteOriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"],
            oac["SigningProtocol"]) == ("s3", "always", "sigv4")
    assert not resources(edge[env], "AWS::CloudFront::CloudFrontOriginAccessIdentity")


@pytest.mark.parametrize("env", ENVS)
def test_access_logs_go_to_an_acl_enabled_log_bucket(edge: dict[str, dict[str, Any]], env: str) -> None:
    logging = distribution(edge[env])["Logging"]
    assert logging["Bucket"] == {"Fn::GetAtt": ["DistributionLogBucket", "DomainName"]}
    log_bucket = props(edge[env], "DistributionLogBucket")
    # CloudFront standard logging writes through an ACL grant: ACLs must stay enabled there
    assert log_bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    assert all(log_bucket["PublicAccessBlockConfiguration"].values())


# --- site bucket ------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_site_bucket_is_private_versioned_encrypted_and_owner_enforced(
        edge: dict[str, dict[str, Any]], env: str) -> None:
    bucket = props(edge[env], "SiteBucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "WebsiteConfiguration" not in bucket  # website endpoints cannot use OAC


@pytest.mark.parametrize("env", ENVS)
def test_site_bucket_lifecycle(edge: dict[str, dict[str, Any]], env: str) -> None:
    rules = [r for r in props(edge[env], "SiteBucket")["LifecycleConfiguration"]["Rules"]
             if r["Status"] == "Enabled"]
    transitions = [t for r in rules for t in r.get("Transitions", [])]
    assert transitions == [{"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 30}]
    noncurrent = [r["NoncurrentVersionExpiration"] for r in rules if "NoncurrentVersionExpiration" in r]
    assert noncurrent == [{"NoncurrentDays": 90}]
    assert not any("ExpirationInDays" in r for r in rules)  # current objects are never expired


@pytest.mark.parametrize("env", ENVS)
def test_bucket_policy_denies_plain_http_and_admits_only_this_distribution(
        edge: dict[str, dict[str, Any]], env: str) -> None:
    policy = props(edge[env], "SiteBucketPolicy")
    assert policy["Bucket"] == {"Ref": "SiteBucket"}
    statements = policy["PolicyDocument"]["Statement"]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["SiteBucket", "Arn"]} in deny["Resource"]
    assert {"Fn::Sub": "${SiteBucket.Arn}/*"} in deny["Resource"]
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"  # no ListBucket: a missing key is a 403, not a listing
    assert allow["Resource"] == {"Fn::Sub": "${SiteBucket.Arn}/*"}
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source == "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"


@pytest.mark.parametrize("env", ENVS)
def test_buckets_are_kept_outside_dev(edge: dict[str, dict[str, Any]], env: str) -> None:
    expected = ("Delete", "Delete") if env == "dev" else ("RetainExceptOnCreate", "Retain")
    for logical_id in ("SiteBucket", "DistributionLogBucket", "SecurityHeadersLogGroup"):
        resource = edge[env]["Resources"][logical_id]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == expected


@pytest.mark.parametrize("env", ENVS)
def test_every_bucket_denies_plain_http(edge: dict[str, dict[str, Any]], env: str) -> None:
    no_tls = {"Bool": {"aws:SecureTransport": "false"}}
    policies = resources(edge[env], "AWS::S3::BucketPolicy").values()
    covered = {p["Properties"]["Bucket"]["Ref"] for p in policies
               if any(s["Effect"] == "Deny" and s.get("Condition") == no_tls
                      for s in p["Properties"]["PolicyDocument"]["Statement"])}
    assert covered == set(resources(edge[env], "AWS::S3::Bucket"))


# --- the function -------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_function_fits_lambda_at_edge(edge: dict[str, dict[str, Any]], env: str) -> None:
    function = edge[env]["Resources"]["SecurityHeadersFunction"]
    assert function["Type"] == "AWS::Serverless::Function"
    p = function["Properties"]
    assert per_create(p["FunctionName"]) == f"tracker-{env}-security-headers-${{CreateId}}"
    assert (p["Runtime"], p["Architectures"], p["MemorySize"], p["Timeout"]) == (
        "python3.12", ["x86_64"], 128, 5)
    assert (p["CodeUri"], p["Handler"], p["AutoPublishAlias"]) == ("edge/", "handler.handler", "live")
    assert p["Role"] == {"Fn::GetAtt": ["SecurityHeadersFunctionRole", "Arn"]}
    for unsupported in ("Environment", "Layers", "VpcConfig", "DeadLetterQueue", "Tracing",
                        "ReservedConcurrentExecutions", "ProvisionedConcurrencyConfig",
                        "ImageUri", "PackageType", "EphemeralStorage", "KmsKeyArn"):
        assert unsupported not in p, unsupported
    assert "Globals" not in edge[env]  # nothing can slip in through SAM's Globals


@pytest.mark.parametrize("env", ENVS)
def test_role_is_assumable_by_lambda_and_edgelambda(edge: dict[str, dict[str, Any]], env: str) -> None:
    role = props(edge[env], "SecurityHeadersFunctionRole")
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert set(statement["Principal"]["Service"]) == {"lambda.amazonaws.com", "edgelambda.amazonaws.com"}


@pytest.mark.parametrize("env", ENVS)
def test_role_writes_only_its_own_logs_in_any_region(edge: dict[str, dict[str, Any]], env: str) -> None:
    role = props(edge[env], "SecurityHeadersFunctionRole")
    assert "ManagedPolicyArns" not in role
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    arns = {per_create(r) for s in statements for r in s["Resource"]}
    group = ("arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:"
             f"/aws/lambda/us-east-1.tracker-{env}-security-headers-${{CreateId}}")
    assert arns == {group, group + ":*"}
    assert {a for s in statements for a in s["Action"]} == {
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}


@pytest.mark.parametrize("env", ENVS)
def test_log_group_has_the_lambda_at_edge_name(edge: dict[str, dict[str, Any]],
                                               configs: dict[str, Config], env: str) -> None:
    group = props(edge[env], "SecurityHeadersLogGroup")
    function = props(edge[env], "SecurityHeadersFunction")["FunctionName"]
    assert per_create(group["LogGroupName"]) == "/aws/lambda/us-east-1." + per_create(function)
    assert group["RetentionInDays"] == configs[env].monitoring.log_retention_days
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}


# --- outputs and the rendered package ----------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_outputs_are_exported(edge: dict[str, dict[str, Any]], configs: dict[str, Config], env: str) -> None:
    outputs = edge[env]["Outputs"]
    assert outputs["FrontendUrl"]["Value"] == f"https://{configs[env].frontend.domain}"
    assert outputs["FrontendBucketName"]["Value"] == {"Ref": "SiteBucket"}
    assert outputs["DistributionId"]["Value"] == {"Ref": "Distribution"}
    for name in ("FrontendUrl", "FrontendBucketName", "DistributionId"):
        assert outputs[name]["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


def _connect_src(csp: str) -> list[str]:
    for directive in csp.split(";"):
        name, *sources = directive.split()
        if name == "connect-src":
            return sources
    raise AssertionError(f"no connect-src in {csp!r}")


@pytest.mark.parametrize("env", ENVS)
def test_package_holds_handler_and_this_environments_headers(tmp_path: Path, env: str) -> None:
    cfg = config(env)
    files, _ = render_files(cfg, tmp_path)
    package = tmp_path / env / "edge"  # CodeUri edge/ beside rendered/<env>/edge.yaml
    assert {p.name for p in files if p.parent == package} == {"handler.py", "headers.json"}
    headers = json.loads(files[package / "headers.json"])["headers"]
    csp_name = ("Content-Security-Policy-Report-Only" if cfg.frontend.csp_report_only
                else "Content-Security-Policy")
    sources = _connect_src(headers[csp_name])
    assert f"https://{cfg.api.domain}" in sources
    others = {config(e).api.domain for e in ENVS if e != env}
    assert not any(f"https://{d}" in sources for d in others)
    assert headers["Strict-Transport-Security"] == cfg.frontend.security_headers["Strict-Transport-Security"]
