"""render.py diff: property-level changes, replacement from CloudFormation's schemas, stateful flags,
the three sources (committed rendered/, a git revision, another environment) and exit codes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import VARS, config, copy_vars, render, resources
from tracker_infra.cfn_yaml import load_template
from tracker_infra.cli import main
from tracker_infra.rendering import ROOT
from tracker_infra.review.baseline import normaliser
from tracker_infra.review.diff import diff_templates
from tracker_infra.review.replacement import create_only
from tracker_infra.review.report import (
    MAY,
    NO,
    UNKNOWN,
    YES,
    Change,
    Report,
    ResourceChange,
    StackChanges,
    format_report,
)
from tracker_infra.review.values import compact

FIXTURES = Path(__file__).parent / "fixtures" / "diff"


def fixture(name: str) -> dict[str, Any]:
    return load_template((FIXTURES / name).read_text())


def by_id(result: StackChanges) -> dict[str, Any]:
    return {r.logical_id: r for r in result.resources}


def text_of(result: StackChanges, markdown: bool = False) -> str:
    return format_report(Report("test", [result]), markdown)


# --- hand-made template pairs ------------------------------------------------------------------


def test_in_place_changes_show_paths_and_old_new_values() -> None:
    result = diff_templates(fixture("base.yaml"), fixture("scale-up.yaml"), name="t/app.yaml")
    changed = by_id(result)
    assert set(changed) == {"DataBucket", "DatabaseCluster", "AlarmTopic", "AlarmTopicSubscription"}
    cluster = changed["DatabaseCluster"]
    assert [(c.path, c.old, c.new) for c in cluster.changes] == [
        ("Properties.ServerlessV2ScalingConfiguration.MaxCapacity", 4, 8)]
    assert cluster.replacement == NO and not cluster.data_at_risk
    # Tags are matched by Key: the reorder is no change, the Owner value is.
    assert [(c.path, c.old, c.new) for c in changed["DataBucket"].changes] == [
        ("Properties.Tags[Key=Owner].Value", "devops-team", "platform-team")]
    assert changed["AlarmTopicSubscription"].kind == "added"
    assert [(c.path, c.new) for c in result.other] == [("Outputs.TopicArn", {"Value": {"Ref": "AlarmTopic"}})]
    text = text_of(result)
    assert "Properties.KmsMasterKeyId: !Ref StackKey -> !GetAtt StackKey.Arn" in text
    assert "!!" not in text and "STATEFUL" not in text


def test_create_only_change_replaces_stateful_resource_and_what_references_it() -> None:
    result = diff_templates(fixture("base.yaml"), fixture("replace-database.yaml"), name="t/app.yaml")
    changed = by_id(result)
    cluster = changed["DatabaseCluster"]
    assert cluster.replacement == YES and cluster.data_at_risk
    assert "DatabaseName" in cluster.reason
    assert [(c.path, c.replaces) for c in cluster.changes] == [("Properties.DatabaseName", YES)]
    # The instance's DBClusterIdentifier (create-only) is !Ref DatabaseCluster: a new cluster
    # means a new instance, though its own text did not change.
    instance = changed["DatabaseWriterInstance"]
    assert instance.replacement == YES and instance.changes == []
    assert "DatabaseCluster" in instance.reason
    # A stateless replacement is reported but is not a danger.
    task = changed["ApiTaskDefinition"]
    assert task.replacement == YES and not task.data_at_risk
    assert {c.path for c in task.changes if c.replaces == YES} == {"Properties.Cpu", "Properties.Memory"}
    # A removed log group is deleted with its logs (no DeletionPolicy).
    assert changed["ApiLogGroup"].kind == "removed" and changed["ApiLogGroup"].data_at_risk
    report = Report("test", [result])
    assert {r.logical_id for _, r in report.data_at_risk} == {"DatabaseCluster", "DatabaseWriterInstance",
                                                         "ApiLogGroup"}
    text = format_report(report, markdown=False)
    assert text.splitlines()[2] == ("!! 3 stateful resource(s) replaced, deleted or moved to a "
                                    "replaced network: their data does not follow.")
    assert "UpdateReplacePolicy: Snapshot" in text
    assert 'Properties.DatabaseName: "tracker" -> "activity" (requires replacement)' in text
    markdown = format_report(report, markdown=True)
    assert "> [!CAUTION]" in markdown
    assert "`Properties.DatabaseName`: `\"tracker\"` → `\"activity\"` **(requires replacement)**" in markdown


def test_replacement_comes_from_cloudformation_provider_schemas() -> None:
    cluster = create_only("AWS::RDS::DBCluster")
    assert cluster is not None
    assert {"DatabaseName", "KmsKeyId", "StorageEncrypted"} <= set(cluster["always"])
    assert "ServerlessV2ScalingConfiguration" not in cluster["always"]
    assert "Engine" in cluster["conditional"]
    assert cluster["names"] == ["DBClusterIdentifier"]
    bucket = create_only("AWS::S3::Bucket")
    assert bucket is not None and "BucketName" in bucket["always"]
    assert create_only("Custom::Anything") is None
    # SAM types are looked up through the type they expand to.
    assert create_only("AWS::Serverless::Function") == create_only("AWS::Lambda::Function")


def test_conditionally_create_only_change_is_flagged_as_possible_replacement() -> None:
    base = fixture("base.yaml")
    changed = fixture("base.yaml")
    changed["Resources"]["DatabaseCluster"]["Properties"]["Engine"] = "aurora-mysql"
    cluster = by_id(diff_templates(base, changed))["DatabaseCluster"]
    assert cluster.replacement == MAY and cluster.data_at_risk
    assert [c.replaces for c in cluster.changes] == [MAY]


def test_type_change_and_retained_removal() -> None:
    base = fixture("base.yaml")
    changed = fixture("base.yaml")
    changed["Resources"]["ApiLogGroup"]["Type"] = "AWS::Logs::LogStream"
    del changed["Resources"]["DataBucket"]
    result = diff_templates(base, changed)
    log = by_id(result)["ApiLogGroup"]
    assert log.replacement == YES and log.reason == "Type changed" and log.data_at_risk
    bucket = by_id(result)["DataBucket"]
    assert bucket.kind == "removed" and bucket.data_at_risk
    assert "kept in the account by DeletionPolicy: Retain" in text_of(result)


def test_intrinsic_functions_are_shown_in_short_form() -> None:
    assert compact({"Ref": "DatabaseCluster"}) == "!Ref DatabaseCluster"
    assert compact({"Fn::GetAtt": ["StackKey", "Arn"]}) == "!GetAtt StackKey.Arn"
    assert compact({"Fn::Sub": "arn:${AWS::Partition}:s3:::x"}) == '!Sub "arn:${AWS::Partition}:s3:::x"'
    assert (compact({"Fn::Join": [",", [{"Ref": "A"}, "b"]]}) == '!Join [",", [!Ref A, "b"]]')
    assert compact({"Fn::Select": [0, {"Fn::GetAZs": ""}]}) == '!Select [0, !GetAZs ""]'
    assert compact("x" * 200).endswith("…") and len(compact("x" * 200)) == 160


def test_json_bodies_inside_sub_are_compared_as_json() -> None:
    def dashboard(x: int) -> dict[str, Any]:
        body = ('{"widgets": [{"type": "metric", "x": ' + str(x)
                + ', "properties": {"region": "${AWS::Region}"}}]}')
        return {"Resources": {"Dash": {"Type": "AWS::CloudWatch::Dashboard",
                                       "Properties": {"DashboardBody": {"Fn::Sub": body}}}}}

    change = by_id(diff_templates(dashboard(0), dashboard(12)))["Dash"].changes
    assert [(c.path, c.old, c.new) for c in change] == [
        ("Properties.DashboardBody.!Sub(json).widgets[0].x", 0, 12)]


# --- environment diff --------------------------------------------------------------------------


def test_normaliser_replaces_only_the_environments_own_names() -> None:
    cfg = config("production")
    norm = normaliser(cfg)
    assert norm("tracker-production-edge") == "<stack>-edge"
    assert norm(f"arn:aws:iam::{cfg.account}:root") == "arn:aws:iam::<account>:root"
    assert norm(cfg.network.vpc_cidr) == "<vpc-cidr>"
    assert norm(f"https://{cfg.api.domain}") == "https://<api-domain>"
    assert norm(cfg.frontend.domain) == "<domain>"
    # An e-mail at the site's domain is an address, not the site's name; "productions" is a word.
    assert norm("devops-team@communitytracker.example.com") == "devops-team@communitytracker.example.com"
    assert norm("productions") == "productions"
    assert norm({"Environment": ["production", 3]}) == {"Environment": ["<env>", 3]}


def test_environment_diff_shows_sizing_not_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "staging", "production"]) == 0
    out = capsys.readouterr().out
    staging, production = config("staging"), config("production")
    change_lines = [line for line in out.splitlines() if line.startswith("      ")]
    assert change_lines, out
    for line in change_lines:
        for own in ("staging", "production", staging.account, production.account, "10.1.", "10.2.",
                    staging.frontend.domain):
            assert own not in line, line
    assert (f"Properties.ServerlessV2ScalingConfiguration.MaxCapacity: {staging.database.max_acu} -> "
            f"{production.database.max_acu}") in out
    # The VPC differs only by its CIDR, which is normalised away.
    vpcs = resources(render(staging), "AWS::EC2::VPC")
    for logical_id in vpcs:
        assert f"~ {logical_id} " not in out
    assert "Estimated monthly cost, staging -> production" in out


def test_environment_diff_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "staging"]) == 2
    assert main(["diff", "staging", "staging"]) == 2
    assert main(["diff", "staging", "production", "--base", "HEAD"]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 3 and "Traceback" not in err


# --- committed rendered/ and git revisions -----------------------------------------------------


def _render(vars_dir: Path, out: Path) -> None:
    assert main(["--all", "--vars", str(vars_dir), "--out", str(out)]) == 0


def _set_vars(vars_dir: Path, name: str, old: str, new: str) -> None:
    path = vars_dir / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_committed_vs_fresh_shows_a_max_acu_change_and_its_cost(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vars_dir = copy_vars(tmp_path)
    out = tmp_path / "rendered"
    _render(vars_dir, out)
    capsys.readouterr()
    before = config("production").database
    _set_vars(vars_dir, "production.yaml", f"max_acu: {before.max_acu:g}\n", "max_acu: 32\n")
    assert main(["diff", "--vars", str(vars_dir), "--out", str(out), "--format", "markdown"]) == 0
    out_text = capsys.readouterr().out
    cluster_ids = list(resources(render(config("production")), "AWS::RDS::DBCluster"))
    assert len(cluster_ids) == 1
    assert f"- ~ **{cluster_ids[0]}** `AWS::RDS::DBCluster`" in out_text
    assert (f"`Properties.ServerlessV2ScalingConfiguration.MaxCapacity`: `{float(before.max_acu)}` → "
            "`32.0`") in out_text
    assert "production/app.yaml" in out_text and "staging/" not in out_text and "dev/" not in out_text
    assert "[!CAUTION]" not in out_text
    # Ceiling moves by (32 - 16) ACU x instances x 730 h x $0.12; the floor (min ACU) does not.
    delta = (32 - before.max_acu) * before.instances * 730 * 0.12
    assert "ceiling $" in out_text and f"(+${delta:,.2f})" in out_text
    assert "floor $" in out_text and "(+$0.00)" in out_text


def test_base_outside_git_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rendered"
    out.mkdir()
    assert main(["diff", "--base", "main", "--vars", str(VARS), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --base: ") and len(err.strip().splitlines()) == 1


# --- verdicts beyond create-only properties ----------------------------------------------------


def test_a_fixed_custom_name_on_a_replaced_resource_is_a_refused_update() -> None:
    base = fixture("base.yaml")
    base["Resources"]["DatabaseCluster"]["Properties"]["DBClusterIdentifier"] = "tracker-prod"
    renamed = copy.deepcopy(base)
    renamed["Resources"]["DatabaseCluster"]["Properties"]["DatabaseName"] = "activity"
    cluster = by_id(diff_templates(base, renamed))["DatabaseCluster"]
    assert cluster.replacement == YES
    assert cluster.refused.startswith('DBClusterIdentifier is fixed ("tracker-prod")')
    # A new name with the replacement is a replacement CloudFormation performs.
    both = copy.deepcopy(renamed)
    both["Resources"]["DatabaseCluster"]["Properties"]["DBClusterIdentifier"] = "tracker-prod-2"
    assert by_id(diff_templates(base, both))["DatabaseCluster"].refused == ""
    text = text_of(diff_templates(base, renamed))
    assert "!! CloudFormation will refuse this update: 1 custom-named resource(s)" in text


def test_an_engine_major_version_change_is_irreversible_and_a_minor_one_is_not() -> None:
    def version(v: str) -> dict[str, Any]:
        doc = fixture("base.yaml")
        doc["Resources"]["DatabaseCluster"]["Properties"]["EngineVersion"] = v
        return doc

    major = by_id(diff_templates(version("16.4"), version("17.2")))["DatabaseCluster"]
    assert major.irreversible.startswith("engine major version 16 -> 17")
    assert major.replacement == NO
    assert "!! Irreversible:" in text_of(diff_templates(version("16.4"), version("17.2")))
    assert by_id(diff_templates(version("16.4"), version("16.6")))["DatabaseCluster"].irreversible == ""


def test_a_type_without_a_schema_is_unknown_with_its_cause_not_an_alarm() -> None:
    def custom(size: int) -> dict[str, Any]:
        return {"Resources": {"Thing": {"Type": "Custom::Thing", "Properties": {"Size": size}}}}

    thing = by_id(diff_templates(custom(1), custom(2)))["Thing"]
    assert thing.replacement == UNKNOWN and thing.reason == "no resource schema for Custom::Thing"
    text = text_of(diff_templates(custom(1), custom(2)))
    assert "!!" not in text
    assert "-- Unknown: whether 1 resource(s) are replaced cannot be judged" in text
    assert "--   no resource schema for Custom::Thing: 1 resource(s)" in text


def _role(statements: list[dict[str, Any]], ingress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [
            {"PolicyName": "app", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]}},
        "Group": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "g", "SecurityGroupIngress": ingress or []}}}}


READ = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}


@pytest.mark.parametrize(("after", "widening"), [
    ({**READ, "Action": ["s3:GetObject", "s3:PutObject"]}, "new action s3:PutObject"),
    ({**READ, "Resource": "*"}, "wider resource *"),
    ({**READ, "Resource": "arn:aws:s3:::other/*"}, "new resource arn:aws:s3:::other/*"),
    ({**READ, "Resource": "arn:aws:s3:::bucket/reports/*"}, ""),  # narrower: covered by bucket/*
    ({**READ, "Action": "s3:Get*"}, "new action s3:Get* (now allows s3:GetAccelerateConfiguration, "),
])
def test_iam_statement_changes_mark_each_widening(after: dict[str, Any], widening: str) -> None:
    result = diff_templates(_role([READ]), _role([after]))
    added = [c for c in result.iam if c.sign == "+"]
    removed = [c for c in result.iam if c.sign == "-"]
    assert len(added) == 1 and len(removed) == 1
    assert added[0].resource == "Role app" and added[0].effect == "Allow"
    assert added[0].widening.startswith(widening) and bool(added[0].widening) == bool(widening)
    assert removed[0].actions == "s3:GetObject" and removed[0].widening == ""


def test_removing_a_deny_widens() -> None:
    deny = {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
    result = diff_templates(_role([READ, deny]), _role([READ]))
    assert [(c.sign, c.effect, c.widening) for c in result.iam] == [("-", "Deny", "deny removed")]


@pytest.mark.parametrize(("rule", "widening"), [
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}, "open to the internet"),
    ({"IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443, "CidrIp": "10.0.0.0/16"}, "more ports"),
    ({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "192.168.0.0/16"}, "new peer"),
])
def test_security_group_rule_changes_mark_each_widening(rule: dict[str, Any], widening: str) -> None:
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/16"}
    result = diff_templates(_role([READ], [https]), _role([READ], [https, rule]))
    assert [(c.sign, c.group, c.direction, c.peer, c.widening) for c in result.rules] == [
        ("+", "Group", "ingress", rule["CidrIp"], widening)]
    assert f"WIDENS: {widening}" in text_of(result)


def test_markdown_collapses_detail_and_stays_under_the_comment_limit() -> None:
    many = StackChanges("big/app.yaml", "stack, region", resources=[
        ResourceChange(f"Alarm{i}", "changed", "AWS::CloudWatch::Alarm",
                       changes=[Change("Properties.Threshold", i, i + 1)]) for i in range(3000)])
    report = Report("Template review: test", [many])
    full = format_report(report, markdown=True, limit=10**9)
    assert full.count("<details>") == 1 and full.count("</details>") == 1
    assert full.index("<details>") < full.index("**Alarm0**")
    cut = format_report(report, markdown=True, limit=20_000)
    assert len(cut) <= 20_000
    assert cut.count("<details>") == cut.count("</details>") == 1
    assert cut.rstrip().endswith("or run `render.py diff` locally._")
    assert format_report(report, markdown=True) != full and len(format_report(report, markdown=True)) < 65_536


def test_a_logical_id_renamed_is_said_as_a_rename_with_what_happens_to_the_data() -> None:
    bucket = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {
        "VersioningConfiguration": {"Status": "Enabled"}, "BucketEncryption": {"x": 1},
        "Tags": [{"Key": "Project", "Value": "t"}]}}
    other = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}}
    old = {"Resources": {"SiteBucket": bucket, "Topic": other}}
    new = {"Resources": {"WebsiteBucket": copy.deepcopy(bucket), "Topic": other}}
    result = diff_templates(old, new, name="t/edge.yaml")
    assert by_id(result)["WebsiteBucket"].renamed_from == "SiteBucket"
    text = text_of(result)
    assert ("!!   t/edge.yaml WebsiteBucket (AWS::S3::Bucket): likely a rename of SiteBucket. "
            "CloudFormation creates WebsiteBucket and deletes SiteBucket. Its data does not follow") in text
    assert "keep the logical ID SiteBucket, or move it with CloudFormation's stack refactoring" in text
    # a new resource of another shape is not a rename
    new["Resources"]["WebsiteBucket"]["Properties"] = {"AccessControl": "Private"}
    assert by_id(diff_templates(old, new))["WebsiteBucket"].renamed_from == ""


# --- secrets in the clear, the edge headers, NOT JUDGED, the head's order, --fail-on-unjudged -----


def _production(key: str) -> dict[str, Any]:
    return render(config("production"), key)


def _container_env(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["Resources"]["ApiTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"]


def _function_env(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["Resources"]["DatabaseUserFunction"]["Properties"]["Environment"]["Variables"]


RESOLVE = "{{resolve:secretsmanager:tracker/db:SecretString:password}}"
SECRETS = {
    "dynamic reference in a container": (lambda d: _container_env(d).append({"Name": "DB", "Value": RESOLVE}),
                                         "ApiTaskDefinition"),
    "token written into a container": (
        lambda d: _container_env(d).append({"Name": "API_TOKEN", "Value": "x1"}), "ApiTaskDefinition"),
    "password in a function's variables": (lambda d: _function_env(d).update(DbPassword="hunter22"),
                                           "DatabaseUserFunction"),
    "a parameter default": (lambda d: d["Parameters"].update(AdminPassword={"Type": "String",
                                                                            "Default": "letmein"}),
                            "AdminPassword"),
    "an output": (lambda d: d["Outputs"].update(Leak={"Value": {"Fn::Sub": f"x-{RESOLVE}"}}), "Leak"),
}


@pytest.mark.parametrize("name", SECRETS)
def test_a_secret_moved_into_the_clear_widens(name: str) -> None:
    plant, where = SECRETS[name]
    before = _production("app")
    after = copy.deepcopy(before)
    plant(after)
    result = diff_templates(before, after, "production/app.yaml")
    assert [(w.category, w.logical_id) for w in result.widenings] == [("secrets", where)]
    assert result.unjudged == []  # the rule judged the variables
    assert diff_templates(after, before).widenings == []  # taking it out is no widening


def test_variables_that_are_no_secrets_are_judged_neutral() -> None:
    before = _production("app")
    after = copy.deepcopy(before)
    _container_env(after).append({"Name": "LOG_LEVEL", "Value": "debug"})
    _container_env(after).append({"Name": "SESSION_KEY_ARN", "Value": {"Ref": "ApiDatabaseSecret"}})
    _function_env(after).update(TOKEN_TABLE_NAME="tokens")
    result = diff_templates(before, after)
    assert result.widenings == [] and result.unjudged == []


HEADERS = {"Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
           "Content-Security-Policy": "default-src 'none'; script-src 'self'; frame-ancestors 'none'",
           "Referrer-Policy": "strict-origin-when-cross-origin", "X-Frame-Options": "DENY",
           "Permissions-Policy": "camera=(), geolocation=()"}


@pytest.mark.parametrize(("header", "value", "weaker"), [
    ("Strict-Transport-Security", "max-age=300; includeSubDomains; preload", "max-age 63072000 -> 300"),
    ("Strict-Transport-Security", "max-age=63072000; preload", "includesubdomains dropped"),
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
     "script-src gains 'unsafe-inline'"),
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'", "frame-ancestors removed"),
    ("Referrer-Policy", "unsafe-url", "'strict-origin-when-cross-origin' -> 'unsafe-url'"),
    ("X-Frame-Options", "SAMEORIGIN", "'DENY' -> 'SAMEORIGIN'"),
    ("Permissions-Policy", "camera=(self), geolocation=()", "camera gains self"),
    ("X-Frame-Options", None, "X-Frame-Options no longer sent"),
])
def test_a_weaker_edge_header_is_found_by_the_header_rule(header: str, value: str | None,
                                                          weaker: str) -> None:
    from tracker_infra.header_grading import configuration_changes

    new = {k: v for k, v in HEADERS.items() if k != header or value is not None}
    if value is not None:
        new[header] = value
    weakened, unjudged = configuration_changes(HEADERS, new)
    assert len(weakened) == 1 and weaker in weakened[0] and unjudged == []


@pytest.mark.parametrize(("header", "value"), [
    ("Strict-Transport-Security", "max-age=126144000; includeSubDomains; preload"),
    ("Content-Security-Policy", "default-src 'none'; script-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), geolocation=(), usb=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
])
def test_a_stricter_edge_header_is_not_weaker(header: str, value: str) -> None:
    from tracker_infra.header_grading import configuration_changes

    assert configuration_changes(HEADERS, {**HEADERS, header: value}) == ([], [])


def test_a_header_the_rule_has_no_order_for_is_not_judged() -> None:
    from tracker_infra.header_grading import configuration_changes

    old = {**HEADERS, "X-Custom": "a"}
    assert configuration_changes(old, {**HEADERS, "X-Custom": "b"}) == ([], [("X-Custom", "a", "b")])
    assert configuration_changes(HEADERS, {**HEADERS, "Access-Control-Allow-Origin": "*"}) == (
        [], [("Access-Control-Allow-Origin", "", "*")])


def test_headers_weakened_through_vars_fail_the_broadening_gate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vars_dir = copy_vars(tmp_path)
    out = tmp_path / "rendered"
    _render(vars_dir, out)
    capsys.readouterr()
    _set_vars(vars_dir, "defaults.yaml", "max-age=63072000", "max-age=600")
    args = ["diff", "--vars", str(vars_dir), "--out", str(out), "--env", "production"]
    assert main([*args, "--fail-on-broadening"]) == 5
    text = capsys.readouterr().out
    assert ("!!   WIDENS headers: production/edge.yaml SecurityHeadersFunction (AWS::Serverless::Function): "
            "edge/headers.json: Strict-Transport-Security weaker: max-age 63072000 -> 600") in text


def test_a_security_bearing_change_no_rule_judges_is_not_judged_with_both_values() -> None:
    before = _production("app")
    after = copy.deepcopy(before)
    listener = after["Resources"]["ApiHttpsListener"]["Properties"]
    listener["Certificates"] = [{"CertificateArn": "arn:aws:acm:us-east-1:333333333333:certificate/other"}]
    container = after["Resources"]["ApiTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    container["LinuxParameters"] = {"Capabilities": {"Add": ["SYS_ADMIN"]}}
    after["Resources"]["ApiTaskDefinition"]["Properties"]["Tags"].append({"Key": "Team", "Value": "x"})
    scaling = after["Resources"]["DatabaseCluster"]["Properties"]["ServerlessV2ScalingConfiguration"]
    scaling["MaxCapacity"] = 64  # not security-bearing
    result = diff_templates(before, after, "production/app.yaml")
    assert sorted((u.logical_id, u.path) for u in result.unjudged) == [
        ("ApiHttpsListener", "Properties.Certificates[0].CertificateArn"),
        ("ApiTaskDefinition", "Properties.ContainerDefinitions[Name=api].LinuxParameters"),
    ]
    head = [line for line in text_of(result).splitlines() if line.startswith("!!")]
    assert head[0].startswith("!! 2 security-bearing change(s) in 2 resource(s) that no rule judges")
    assert any(line.startswith("!!   NOT JUDGED: production/app.yaml ApiHttpsListener "
                               "(AWS::ElasticLoadBalancingV2::Listener): Properties.Certificates[0]"
                               ".CertificateArn: ") and line.endswith('-> "arn:aws:acm:us-east-1:'
                                                                      '333333333333:certificate/other"')
               for line in head), head


def test_a_change_security_py_does_not_see_is_not_judged() -> None:
    """A policy change with no row in security.py's table is not taken as judged: given no rows,
    the attached policy is NOT JUDGED, and so is a document that no longer reads as one (its
    Statement made a condition); with security.py's own rows, the attached AdministratorAccess is
    a widening instead."""
    from tracker_infra.review.unjudged import unjudged

    before = _production("app")
    after = copy.deepcopy(before)
    role = after["Resources"]["ApiTaskRole"]["Properties"]
    role["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    role["Policies"][0]["PolicyDocument"]["Statement"] = {"Fn::If": ["Always", statements, []]}
    found = [(u.logical_id, u.path) for u in unjudged(before["Resources"], after["Resources"], [], [])]
    assert ("ApiTaskRole", "Properties.ManagedPolicyArns") in found
    assert any(path.startswith("Properties.Policies[") for _, path in found), found
    only_attached = copy.deepcopy(before)
    only_attached["Resources"]["ApiTaskRole"]["Properties"]["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/AdministratorAccess"]
    result = diff_templates(before, only_attached)
    assert result.unjudged == []
    assert any("AdministratorAccess" in c.widening for c in result.iam), result.iam


def test_the_head_is_one_line_per_resource_in_order_of_harm() -> None:
    from tracker_infra.review.widening import Widening

    stack = StackChanges("production/app.yaml", widenings=[
        Widening("audit", "a", "Alarm", "AWS::CloudWatch::Alarm", "alarm actions removed"),
        Widening("exposure", "b", "Bucket", "AWS::S3::Bucket", "public access block off"),
        Widening("data", "c", "Bucket", "AWS::S3::Bucket", "DeletionPolicy: Retain removed"),
        Widening("data", "d", "Balancer", "AWS::ElasticLoadBalancingV2::LoadBalancer",
                 "deletion protection off"),
        Widening("exposure", "e", "QueuePolicy", "AWS::SQS::QueuePolicy", "policy allows anyone"),
    ])
    head = [line for line in text_of(stack).splitlines() if line.startswith("!!")]
    assert head[1:] == [
        "!!   WIDENS data: production/app.yaml Bucket (AWS::S3::Bucket): DeletionPolicy: Retain removed",
        "!!       WIDENS exposure: production/app.yaml Bucket (AWS::S3::Bucket): public access block off",
        "!!   WIDENS exposure: production/app.yaml QueuePolicy (AWS::SQS::QueuePolicy): policy allows anyone",
        "!!   WIDENS data: production/app.yaml Balancer (AWS::ElasticLoadBalancingV2::LoadBalancer): "
        "deletion protection off",  # the rest: data protection of what holds no data, then security
        "!!   WIDENS audit: production/app.yaml Alarm (AWS::CloudWatch::Alarm): alarm actions removed",
    ]


def test_fail_on_unjudged_has_its_own_exit_code(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from tracker_infra.errors import EXIT_CODES, EXIT_UNJUDGED

    assert EXIT_UNJUDGED == 9 and "--fail-on-unjudged" in EXIT_CODES[EXIT_UNJUDGED]
    vars_dir = copy_vars(tmp_path)
    out = tmp_path / "rendered"
    _render(vars_dir, out)
    capsys.readouterr()
    _set_vars(vars_dir, "production.yaml", "certificate/33333333-3333-4333-8333-333333333332",
              "certificate/33333333-3333-4333-8333-333333333339")
    args = ["diff", "--vars", str(vars_dir), "--out", str(out), "--env", "production"]
    assert main([*args, "--fail-on-broadening", "--fail-on-replace"]) == 0
    assert main([*args, "--fail-on-broadening", "--fail-on-unjudged"]) == EXIT_UNJUDGED
    assert "NOT JUDGED: production/" in capsys.readouterr().out


def test_a_trust_condition_changed_past_the_shown_width_still_widens() -> None:
    """The deploy role's GitHub subject widened to every repository of the organisation: the
    condition differs only past the first 120 characters shown, and is still a widening."""
    old = load_template((ROOT / "bootstrap" / "333333333333.yaml").read_text())
    new = copy.deepcopy(old)
    trust = new["Resources"]["ProductionDeployRole"]["Properties"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] = (
        "repo:community-tracker/*")
    result = diff_templates(old, new, "bootstrap/333333333333.yaml")
    assert any("condition loosened" in c.widening and "repo:community-tracker/*" in c.widening
               for c in result.iam), result.iam
