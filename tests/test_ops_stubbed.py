"""What moto cannot answer, proved against botocore's Stubber with the response shapes of the AWS
CloudFormation, CloudWatch and SNS API references (the Stubber also checks every request and
response against botocore's own service model):

- drift detection (DetectStackDrift, DescribeStackDriftDetectionStatus,
  DescribeStackResourceDrifts): moto 5.2.5 has none of them;
- the change-set fields moto leaves out (Replacement, PolicyAction, Details with
  RequiresRecreation, BeforeValue/AfterValue, Drift) and how `plan` reports them;
- alarms in ALARM and subscriptions pending confirmation (moto's stacks skip CloudWatch alarms,
  and its e-mail subscriptions are confirmed at once);
- destroy's Lambda@Edge path: the edge stack's deletion failing on the replicated function,
  then retaining it (moto deletes the function at once);
- how a re-plan of a saved plan too old to run is compared with the approved one, on the fields
  moto leaves out (and when a saved plan is too old).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tests.helpers import config
from tracker_infra.cfn_yaml import load_template
from tracker_infra.ops import aws as aws_module
from tracker_infra.ops import destroy, drift, plan, status
from tracker_infra.ops.aws import Aws
from tracker_infra.ops.plan import Detail, ResourceChange, StackPlan, describe_changes, format_plan
from tracker_infra.rendering import ROOT

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
CFG = config("dev")
REGIONAL, EDGE = CFG.stack_name, CFG.edge_stack_name
STACK_ID = f"arn:aws:cloudformation:us-east-1:{CFG.account}:stack/{REGIONAL}/1"
EDGE_ID = f"arn:aws:cloudformation:us-east-1:{CFG.account}:stack/{EDGE}/2"
CHANGE_SET = f"arn:aws:cloudformation:us-east-1:{CFG.account}:changeSet/samcli-deploy1/abc"


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> tuple[Aws, dict[str, Stubber]]:
    """An Aws for dev whose clients answer from stubs (both stacks are in us-east-1)."""
    monkeypatch.setattr(aws_module, "POLL_SECONDS", 0)
    monkeypatch.setattr(drift, "POLL_SECONDS", 0)
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    aws = Aws(CFG, session, CFG.account)
    stubs = {}
    for service in ("cloudformation", "cloudwatch", "sns", "s3", "lambda"):
        client = aws.client(service, "us-east-1")
        stubs[service] = Stubber(client)
        stubs[service].activate()
    return aws, stubs


def stack(name: str, status_: str, **extra: Any) -> dict[str, Any]:
    stack_id = STACK_ID if name == REGIONAL else EDGE_ID
    return {"StackName": name, "StackId": stack_id, "StackStatus": status_, "CreationTime": NOW, **extra}


def no_new_events(stubs: dict[str, Stubber]) -> None:
    """A poll of a stack's event stream that finds nothing new."""
    stubs["cloudformation"].add_response("describe_stack_events", {"StackEvents": []}, {"StackName": ANY})


def stop_logging(stubs: dict[str, Stubber], bucket: str) -> None:
    """The bucket logs its accesses; destroy turns that off before emptying it."""
    stubs["s3"].add_response("get_bucket_logging", {"LoggingEnabled": {
        "TargetBucket": "tracker-dev-edge-logs", "TargetPrefix": "site/"}}, {"Bucket": bucket})
    stubs["s3"].add_response("put_bucket_logging", {}, {"Bucket": bucket, "BucketLoggingStatus": {}})


def deleting(stubs: dict[str, Stubber], name: str) -> None:
    """What destroy asks before it deletes a stack: the stack's ID, then its events so far."""
    describe(stubs, name, stack(name, "CREATE_COMPLETE"))
    no_new_events(stubs)


def describe(stubs: dict[str, Stubber], name: str, found: dict[str, Any] | None) -> None:
    if found is None:
        stubs["cloudformation"].add_client_error(
            "describe_stacks", "ValidationError", f"Stack with id {name} does not exist",
            expected_params={"StackName": name})
    else:
        stubs["cloudformation"].add_response("describe_stacks", {"Stacks": [found]}, {"StackName": name})


# --- drift ---------------------------------------------------------------------------------------

def test_drift_prints_each_drifted_property_and_exits_6(
        stubbed: tuple[Aws, dict[str, Stubber]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    aws, stubs = stubbed
    cf = stubs["cloudformation"]
    describe(stubs, REGIONAL, stack(REGIONAL, "UPDATE_COMPLETE"))
    cf.add_response("detect_stack_drift", {"StackDriftDetectionId": "d-1"}, {"StackName": REGIONAL})
    describe(stubs, EDGE, stack(EDGE, "CREATE_COMPLETE"))
    cf.add_response("detect_stack_drift", {"StackDriftDetectionId": "d-2"}, {"StackName": EDGE})
    in_progress = {"StackId": STACK_ID, "StackDriftDetectionId": "d-1",
                   "DetectionStatus": "DETECTION_IN_PROGRESS", "Timestamp": NOW}
    cf.add_response("describe_stack_drift_detection_status", in_progress, {"StackDriftDetectionId": "d-1"})
    cf.add_response("describe_stack_drift_detection_status", {
        "StackId": EDGE_ID, "StackDriftDetectionId": "d-2", "StackDriftStatus": "IN_SYNC",
        "DetectionStatus": "DETECTION_COMPLETE", "DriftedStackResourceCount": 0, "Timestamp": NOW},
        {"StackDriftDetectionId": "d-2"})
    cf.add_response("describe_stack_drift_detection_status", {
        **in_progress, "StackDriftStatus": "DRIFTED", "DetectionStatus": "DETECTION_COMPLETE",
        "DriftedStackResourceCount": 1}, {"StackDriftDetectionId": "d-1"})
    filters = {"StackResourceDriftStatusFilters": ["MODIFIED", "DELETED"]}
    cf.add_response("describe_stack_resource_drifts", {"StackResourceDrifts": [{
        "StackId": STACK_ID, "LogicalResourceId": "ApiSecurityGroup", "PhysicalResourceId": "sg-0123",
        "ResourceType": "AWS::EC2::SecurityGroup", "StackResourceDriftStatus": "MODIFIED",
        "Timestamp": NOW, "PropertyDifferences": [{
            "PropertyPath": "/SecurityGroupIngress/0/CidrIp", "ExpectedValue": "10.0.0.0/16",
            "ActualValue": "0.0.0.0/0", "DifferenceType": "NOT_EQUAL"}]}],
        "NextToken": "page-2"}, {"StackName": REGIONAL, **filters})
    cf.add_response("describe_stack_resource_drifts", {"StackResourceDrifts": [{
        "StackId": STACK_ID, "LogicalResourceId": "ApiLogGroup", "ResourceType": "AWS::Logs::LogGroup",
        "StackResourceDriftStatus": "DELETED", "Timestamp": NOW}]},
        {"StackName": REGIONAL, "NextToken": "page-2", **filters})
    cf.add_response("describe_stack_resource_drifts", {"StackResourceDrifts": []},
                    {"StackName": EDGE, **filters})
    monkeypatch.setattr(drift, "connect", lambda cfg: aws)
    code = drift.run(argparse.Namespace(env="dev", vars=aws_module.ROOT / "vars"))
    out = capsys.readouterr().out
    assert code == drift.EXIT_DRIFTED == 6
    assert f"{REGIONAL} (us-east-1): DRIFTED, 1 drifted resource(s)" in out
    assert f"{EDGE} (us-east-1): IN_SYNC, 0 drifted resource(s)" in out
    assert "/SecurityGroupIngress/0/CidrIp NOT_EQUAL: expected '10.0.0.0/16', actual '0.0.0.0/0'" in out
    assert "DELETED ApiLogGroup" in out  # from the second page
    cf.assert_no_pending_responses()


# --- plan's report on a full change set ---------------------------------------------------------

def test_plan_report_shows_replacement_verdicts_stateful_first_and_iam_and_security_groups(
        stubbed: tuple[Aws, dict[str, Stubber]]) -> None:
    aws, stubs = stubbed
    changes = [
        {"Type": "Resource", "ResourceChange": {
            "Action": "Modify", "LogicalResourceId": "ApiSecurityGroup", "PhysicalResourceId": "sg-1",
            "ResourceType": "AWS::EC2::SecurityGroup", "Replacement": "False", "Scope": ["Properties"],
            "Details": [{"Target": {"Attribute": "Properties", "Name": "SecurityGroupIngress",
                                    "RequiresRecreation": "Never",
                                    "Path": "/Properties/SecurityGroupIngress"},
                         "Evaluation": "Static", "ChangeSource": "DirectModification"}]}},
        {"Type": "Resource", "ResourceChange": {
            "Action": "Modify", "LogicalResourceId": "DatabaseCluster", "PhysicalResourceId": "tracker-dev",
            "ResourceType": "AWS::RDS::DBCluster", "Replacement": "Conditional", "PolicyAction": "Snapshot",
            "ResourceDriftStatus": "MODIFIED", "Scope": ["Properties"],
            "Details": [{"Target": {"Attribute": "Properties", "Name": "EngineVersion",
                                    "RequiresRecreation": "Conditionally",
                                    "Path": "/Properties/EngineVersion",
                                    "BeforeValue": "16.6", "AfterValue": "17.7",
                                    "Drift": {"PreviousValue": "16.6", "ActualValue": "16.8"}},
                         "Evaluation": "Static", "ChangeSource": "DirectModification"}]}},
        {"Type": "Resource", "ResourceChange": {
            "Action": "Add", "LogicalResourceId": "ApiTaskRole", "ResourceType": "AWS::IAM::Role"}},
        {"Type": "Resource", "ResourceChange": {
            "Action": "Remove", "LogicalResourceId": "OldTopic", "PhysicalResourceId": "arn:aws:sns:x",
            "ResourceType": "AWS::SNS::Topic", "PolicyAction": "Delete"}},
    ]
    base = {"ChangeSetName": "samcli-deploy1", "ChangeSetId": CHANGE_SET, "StackId": STACK_ID,
            "StackName": REGIONAL, "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE"}
    stubs["cloudformation"].add_response("describe_change_set",
                                         {**base, "Changes": changes[:2], "NextToken": "t"},
                                         {"ChangeSetName": CHANGE_SET, "IncludePropertyValues": True})
    stubs["cloudformation"].add_response("describe_change_set", {**base, "Changes": changes[2:]},
                                         {"ChangeSetName": CHANGE_SET, "IncludePropertyValues": True,
                                          "NextToken": "t"})
    found = describe_changes(aws.client("cloudformation"), CHANGE_SET)
    plans = [StackPlan(REGIONAL, "us-east-1", CHANGE_SET, "UPDATE_COMPLETE", found),
             StackPlan(EDGE, "us-east-1", None, "UPDATE_COMPLETE", drifted=True)]
    text = format_plan("dev", plans)
    assert f"{REGIONAL} (us-east-1, UPDATE_COMPLETE): 1 to add, 2 to modify, 1 to remove; " \
           "!! 1 stateful resource(s) removed or replaced" in text
    assert ("!! ~ DatabaseCluster AWS::RDS::DBCluster: Modify, Replacement: Conditional, "
            "policy: Snapshot, drift: MODIFIED") in text
    assert ("/Properties/EngineVersion: '16.6' -> '17.7' (live value '16.8') "
            "[recreation Conditionally; because of DirectModification]") in text
    assert text.index("stateful:") < text.index("DatabaseCluster") < text.index("other:")
    iam = text[text.index("IAM and resource-policy changes:"):]
    assert iam.splitlines()[1].split() == ["resource", "change", "properties"]
    assert "ApiTaskRole" in iam.splitlines()[2]
    assert "ApiSecurityGroup" in text[text.index("security-group changes:"):]
    assert (f"{EDGE} (us-east-1, UPDATE_COMPLETE): no changes; the stack had drifted at its last "
            "detection") in text
    markdown = format_plan("dev", plans, markdown=True)
    assert "| ApiTaskRole | AWS::IAM::Role | Add | - |" in markdown
    assert markdown.startswith("# plan: dev")


# --- status: alarms and pending subscriptions ------------------------------------------------------

def test_status_lists_alarms_in_alarm_and_pending_confirmations(
        stubbed: tuple[Aws, dict[str, Stubber]]) -> None:
    aws, stubs = stubbed
    topic = f"arn:aws:sns:us-east-1:{CFG.account}:tracker-dev-warning"
    found = stack(REGIONAL, "UPDATE_COMPLETE", LastUpdatedTime=NOW, Parameters=[
        {"ParameterKey": "ApiImageDigest", "ParameterValue": "sha256:" + "0" * 64}])
    describe(stubs, REGIONAL, found)
    stubs["cloudformation"].add_response("list_stack_resources", {"StackResourceSummaries": [{
        "LogicalResourceId": "AlarmWarningTopic", "PhysicalResourceId": topic,
        "ResourceType": "AWS::SNS::Topic", "LastUpdatedTimestamp": NOW,
        "ResourceStatus": "CREATE_COMPLETE"}]}, {"StackName": REGIONAL})
    stubs["sns"].add_response("list_subscriptions_by_topic", {"Subscriptions": [
        {"SubscriptionArn": "PendingConfirmation", "Owner": CFG.account, "Protocol": "email",
         "Endpoint": "devops-team@communitytracker.example.com", "TopicArn": topic},
        {"SubscriptionArn": f"{topic}:1", "Owner": CFG.account, "Protocol": "email",
         "Endpoint": "someone@example.com", "TopicArn": topic}]}, {"TopicArn": topic})
    lines = status.stack_lines(aws, REGIONAL, "us-east-1")
    assert lines[0] == f"{REGIONAL} (us-east-1): UPDATE_COMPLETE, last change 2026-12-01 03:00:00 UTC"
    assert "  image: sha256:" + "0" * 64 in lines
    assert [line for line in lines if "pending" in line] == [
        "  pending confirmation: devops-team@communitytracker.example.com (email) on AlarmWarningTopic"]
    stubs["cloudwatch"].add_response("describe_alarms", {"MetricAlarms": [{
        "AlarmName": "tracker-dev-api-error-rate", "StateValue": "ALARM",
        "StateReason": "Threshold Crossed", "StateUpdatedTimestamp": NOW}]},
        {"AlarmNamePrefix": "tracker-dev-", "StateValue": "ALARM"})
    assert status.alarm_lines(aws) == [
        "alarms in ALARM (1):", "  tracker-dev-api-error-rate since 2026-12-01 03:00: Threshold Crossed"]


# --- destroy: the Lambda@Edge replicas ----------------------------------------------------------

def test_destroy_retains_the_replicated_edge_function_and_says_how_to_finish(
        stubbed: tuple[Aws, dict[str, Stubber]]) -> None:
    """The documented failure: DELETE_FAILED on the function ("unable to delete ... because it is
    a replicated function"); the stack is deleted again with RetainResources."""
    aws, stubs = stubbed
    cf = stubs["cloudformation"]

    def resources(status_: str) -> dict[str, Any]:
        return {"StackResourceSummaries": [
            {"LogicalResourceId": "SiteBucket", "PhysicalResourceId": "tracker-dev-edge-site",
             "ResourceType": "AWS::S3::Bucket", "LastUpdatedTimestamp": NOW, "ResourceStatus": status_},
            {"LogicalResourceId": "SecurityHeadersFunction",
             "PhysicalResourceId": "tracker-dev-security-headers",
             "ResourceType": "AWS::Lambda::Function", "LastUpdatedTimestamp": NOW,
             "ResourceStatus": "DELETE_FAILED" if status_ == "DELETE_COMPLETE" else status_}]}

    cf.add_response("list_stack_resources", resources("CREATE_COMPLETE"), {"StackName": EDGE})
    stop_logging(stubs, "tracker-dev-edge-site")
    stubs["s3"].add_response("list_object_versions", {"Versions": [
        {"Key": "index.html", "VersionId": "v1"}], "DeleteMarkers": [{"Key": "old.js", "VersionId": "m1"}]},
        {"Bucket": "tracker-dev-edge-site"})
    stubs["s3"].add_response("delete_objects", {}, {"Bucket": "tracker-dev-edge-site", "Delete": {
        "Objects": [{"Key": "index.html", "VersionId": "v1"}, {"Key": "old.js", "VersionId": "m1"}],
        "Quiet": True}})
    deleting(stubs, EDGE)
    cf.add_response("delete_stack", {}, {"StackName": EDGE})
    describe(stubs, EDGE, stack(EDGE, "DELETE_FAILED"))
    no_new_events(stubs)
    cf.add_response("list_stack_resources", resources("DELETE_COMPLETE"), {"StackName": EDGE})
    cf.add_response("delete_stack", {}, {"StackName": EDGE, "RetainResources": ["SecurityHeadersFunction"]})
    describe(stubs, EDGE, None)
    no_new_events(stubs)
    left = destroy.delete_stack(aws, EDGE, "us-east-1")
    assert left == ["tracker-dev-security-headers"]
    cf.assert_no_pending_responses()
    stubs["s3"].assert_no_pending_responses()


def test_destroy_reports_the_edge_function_its_deletion_policy_kept(
        stubbed: tuple[Aws, dict[str, Stubber]]) -> None:
    """The usual path: the edge stack's DeletionPolicy keeps the function, so the deletion
    completes; GetFunction (documented ResourceNotFoundException when absent) tells what is left."""
    aws, stubs = stubbed
    cf, function = stubs["cloudformation"], "tracker-dev-security-headers"

    def deleted_stack_with_the_function() -> None:
        cf.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": "SecurityHeadersFunction", "PhysicalResourceId": function,
             "ResourceType": "AWS::Lambda::Function", "LastUpdatedTimestamp": NOW,
             "ResourceStatus": "CREATE_COMPLETE"}]}, {"StackName": EDGE})
        deleting(stubs, EDGE)
        cf.add_response("delete_stack", {}, {"StackName": EDGE})
        describe(stubs, EDGE, None)
        no_new_events(stubs)

    deleted_stack_with_the_function()
    stubs["lambda"].add_response("get_function", {"Configuration": {"FunctionName": function}},
                                 {"FunctionName": function})
    assert destroy.delete_stack(aws, EDGE, "us-east-1") == [function]
    # ...and nothing is reported once the function is really gone
    deleted_stack_with_the_function()
    stubs["lambda"].add_client_error("get_function", "ResourceNotFoundException", "Function not found",
                                     expected_params={"FunctionName": function})
    assert destroy.delete_stack(aws, EDGE, "us-east-1") == []
    cf.assert_no_pending_responses()
    stubs["lambda"].assert_no_pending_responses()


def test_destroy_stops_when_something_else_fails(stubbed: tuple[Aws, dict[str, Stubber]]) -> None:
    aws, stubs = stubbed
    cf = stubs["cloudformation"]
    cf.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": REGIONAL})
    deleting(stubs, REGIONAL)
    cf.add_response("delete_stack", {}, {"StackName": REGIONAL})
    describe(stubs, REGIONAL, stack(REGIONAL, "DELETE_FAILED"))
    no_new_events(stubs)
    cf.add_response("list_stack_resources", {"StackResourceSummaries": [{
        "LogicalResourceId": "Vpc", "PhysicalResourceId": "vpc-1", "ResourceType": "AWS::EC2::VPC",
        "LastUpdatedTimestamp": NOW, "ResourceStatus": "DELETE_FAILED"}]}, {"StackName": REGIONAL})
    cf.add_response("describe_stack_events", {"StackEvents": [{
        "StackId": STACK_ID, "EventId": "e1", "StackName": REGIONAL, "LogicalResourceId": "Vpc",
        "ResourceType": "AWS::EC2::VPC", "Timestamp": NOW, "ResourceStatus": "DELETE_FAILED",
        "ResourceStatusReason": "has dependencies"}]}, {"StackName": ANY})
    with pytest.raises(destroy.StackNotDeleted, match="DELETE_FAILED"):
        destroy.delete_stack(aws, REGIONAL, "us-east-1")


def test_an_aws_refusal_is_one_line_and_exit_7(
        stubbed: tuple[Aws, dict[str, Stubber]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """AccessDenied (the documented error of a role lacking a permission) is not a bug."""
    from tracker_infra.cli import main
    from tracker_infra.ops import outputs

    aws, stubs = stubbed
    stubs["cloudformation"].add_client_error(
        "describe_stacks", "AccessDenied", "User: arn:aws:sts::111111111111:assumed-role/x is not "
        "authorized to perform: cloudformation:DescribeStacks")
    monkeypatch.setattr(outputs, "connect", lambda cfg: aws)
    assert main(["outputs", "--env", "dev"]) == 7
    err = capsys.readouterr().err
    assert err.startswith("error: AWS: An error occurred (AccessDenied)") and err.count("\n") == 1


def test_executing_without_a_saved_plan_asks_in_a_protected_environment_only() -> None:
    """Under pytest stdin is no terminal: a protected environment without --yes is refused before
    anything is planned, naming --yes and the missing terminal; --yes and a disposable
    environment need no question."""
    from tracker_infra.errors import UserError
    from tracker_infra.ops.plan import _confirmed, need_confirmation_means

    def args(env: str, yes: bool = False) -> argparse.Namespace:
        return argparse.Namespace(env=env, vars=aws_module.ROOT / "vars", yes=yes)

    need_confirmation_means(args("dev"), config("dev"))
    need_confirmation_means(args("staging", yes=True), config("staging"))
    with pytest.raises(UserError, match=r"^--yes: not given, and there is no terminal to confirm at .*"
                                        r"staging is protected.* nothing was planned"):
        need_confirmation_means(args("staging"), config("staging"))
    assert _confirmed(args("dev"), config("dev")) and _confirmed(args("staging", yes=True), config("staging"))


def test_a_declined_confirmation_deletes_what_the_plan_made_and_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker_infra.errors import Refusal
    from tracker_infra.ops import plan

    deleted: list[str] = []
    made = [StackPlan(REGIONAL, "us-east-1", CHANGE_SET, "new")]
    monkeypatch.setattr(plan, "connect", lambda cfg: None)
    monkeypatch.setattr(plan, "make_plan", lambda aws, rendered: made)
    monkeypatch.setattr(plan, "discard", lambda aws, plans, quiet=False: deleted.extend(
        p.change_set for p in plans))
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    args = argparse.Namespace(env="staging", vars=aws_module.ROOT / "vars", yes=False, rendered=None)
    with pytest.raises(Refusal, match=r"^not confirmed; nothing was executed"):
        plan.plan_and_execute(args, config("staging"))
    assert deleted == [CHANGE_SET]


def test_timings_count_each_aws_call_and_the_sam_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRACKER_TIMINGS=1: every API call through a watched session is counted with its time."""
    from tracker_infra.ops import timing

    monkeypatch.setenv("TRACKER_TIMINGS", "1")
    monkeypatch.setattr(timing, "SPENT", {"aws": 0.0, "calls": 0, "sam": 0.0})
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    timing.watch(session)
    client = session.client("cloudformation")
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": []})
        stub.add_response("describe_stacks", {"Stacks": []})
        client.describe_stacks()
        client.describe_stacks()
    timing.sam_ran(1.5)
    assert timing.SPENT["calls"] == 2 and timing.SPENT["aws"] > 0 and timing.SPENT["sam"] == 1.5
    line = timing.summary()
    assert re.fullmatch(r"timings: [\d.]+ s in all; AWS requests [\d.]+ s \(2 calls\); SAM CLI 1\.50 s; "
                        r"the rest -?[\d.]+ s", line), line


def test_a_missing_output_names_the_command_that_deploys_this_environment() -> None:
    from tracker_infra.errors import UserError
    from tracker_infra.ops.aws import required_outputs

    with pytest.raises(UserError) as raised:
        required_outputs({"ApiEndpoint": "x"}, "tracker-staging", ("ApiEndpoint", "ApiRepositoryUri"),
                         "staging")
    assert str(raised.value).endswith("deploy it first: make deploy ENV=staging)")
    assert "<env>" not in str(raised.value)


def test_destroy_empties_a_bucket_that_filled_again_and_deletes_again(
        stubbed: tuple[Aws, dict[str, Stubber]], capsys: pytest.CaptureFixture[str]) -> None:
    """CloudFront and S3 deliver logs late (best effort), so the log bucket may hold new objects
    when CloudFormation reaches it: BucketNotEmpty. destroy empties it again and retries."""
    aws, stubs = stubbed
    cf, s3 = stubs["cloudformation"], stubs["s3"]
    logs = {"LogicalResourceId": "LogBucket", "PhysicalResourceId": "tracker-dev-edge-logs",
            "ResourceType": "AWS::S3::Bucket", "LastUpdatedTimestamp": NOW}
    cf.add_response("list_stack_resources", {"StackResourceSummaries": [
        {**logs, "ResourceStatus": "CREATE_COMPLETE"}]}, {"StackName": EDGE})
    s3.add_response("get_bucket_logging", {}, {"Bucket": "tracker-dev-edge-logs"})  # not logging
    s3.add_response("list_object_versions", {}, {"Bucket": "tracker-dev-edge-logs"})
    deleting(stubs, EDGE)
    cf.add_response("delete_stack", {}, {"StackName": EDGE})
    describe(stubs, EDGE, stack(EDGE, "DELETE_FAILED"))
    no_new_events(stubs)
    cf.add_response("list_stack_resources", {"StackResourceSummaries": [
        {**logs, "ResourceStatus": "DELETE_FAILED"}]}, {"StackName": EDGE})
    s3.add_response("list_object_versions", {"Versions": [{"Key": "E2/late.gz", "VersionId": "v9"}]},
                    {"Bucket": "tracker-dev-edge-logs"})
    s3.add_response("delete_objects", {}, {"Bucket": "tracker-dev-edge-logs", "Delete": {
        "Objects": [{"Key": "E2/late.gz", "VersionId": "v9"}], "Quiet": True}})
    cf.add_response("delete_stack", {}, {"StackName": EDGE})
    describe(stubs, EDGE, None)
    no_new_events(stubs)
    assert destroy.delete_stack(aws, EDGE, "us-east-1") == []
    cf.assert_no_pending_responses()
    s3.assert_no_pending_responses()
    assert "tracker-dev-edge-logs filled again (late log deliveries); emptying and deleting again " \
           "(2 of 3)" in capsys.readouterr().out


# --- a saved plan too old to run: when, and how its re-plan is compared ---------------------------

SAR_URL = "https://awsserverlessrepo-changesets-1f9ifp952i9h0.s3.amazonaws.com/{}/rotation.yaml"


def approved_changes(template_id: str = "a1", engine: str = "17.7", replacement: str = "Conditional",
                     drift: str = "NOT_CHECKED") -> list[ResourceChange]:
    """A regional change set as describe_changes reads it: the database's engine upgraded, and
    the hosted rotation's nested stack, whose TemplateURL each plan makes anew."""
    return [
        ResourceChange("DatabaseCluster", "AWS::RDS::DBCluster", "Modify", replacement, "Snapshot", drift,
                       [Detail("/Properties/EngineVersion", "Conditionally", "DirectModification",
                               "16.6", engine)]),
        ResourceChange("DatabaseSecretRotation", "AWS::CloudFormation::Stack", "Modify", "False", "", "",
                       [Detail("/Properties/TemplateURL", "Never", "DirectModification",
                               SAR_URL.format("old"), SAR_URL.format(template_id))]),
    ]


def plans_of(changes: list[ResourceChange], change_set: str = CHANGE_SET) -> list[StackPlan]:
    return [StackPlan(REGIONAL, "us-east-1", change_set, "UPDATE_COMPLETE", changes),
            StackPlan(EDGE, "us-east-1", None, "UPDATE_COMPLETE")]


def test_a_replan_that_differs_only_in_what_every_plan_makes_anew_is_the_approved_plan() -> None:
    """Another change set ARN, another nested template URL, drift still unchecked against now in
    sync (the report shows neither): the same changes."""
    fresh = plans_of(approved_changes(template_id="b2", drift="IN_SYNC"), CHANGE_SET.replace("abc", "def"))
    assert plan.plan_differences(plans_of(approved_changes()), fresh) == []


@pytest.mark.parametrize(("fresh", "named"), [
    ({"replacement": "True"}, ("DatabaseCluster", "Replacement: Conditional", "Replacement: True")),
    ({"engine": "17.8"}, ("DatabaseCluster", "'17.7'", "'17.8'")),
    ({"drift": "MODIFIED"}, ("DatabaseCluster", "drift: MODIFIED")),
])
def test_a_replan_names_each_change_that_is_not_the_approved_one(fresh: dict[str, str],
                                                                named: tuple[str, ...]) -> None:
    found = plan.plan_differences(plans_of(approved_changes()), plans_of(approved_changes(**fresh)))
    assert found and all(stack == REGIONAL for stack, _ in found)
    text = "\n".join(line for _, line in found)
    assert all(part in text for part in named), text
    assert "DatabaseSecretRotation" not in text


def test_a_replan_names_a_resource_it_adds_or_no_longer_changes() -> None:
    approved = plans_of(approved_changes())
    extra = ResourceChange("ApiLogGroup", "AWS::Logs::LogGroup", "Modify", "False")
    fresh = plans_of([approved_changes()[1], extra])
    found = {line.split()[0]: line for _, line in plan.plan_differences(approved, fresh)}
    assert set(found) == {"DatabaseCluster", "ApiLogGroup"}
    assert "was approved" in found["DatabaseCluster"] and "not in the approved plan" in found["ApiLogGroup"]
    # the edge stack planned with changes where the approved plan had none
    edge = [plans_of(approved_changes())[0],
            StackPlan(EDGE, "us-east-1", CHANGE_SET, "UPDATE_COMPLETE", [extra])]
    assert [stack for stack, _ in plan.plan_differences(approved, edge)] == [EDGE]


def test_a_plan_for_review_names_the_keys_its_artifacts_have_under_the_stack_s_own_prefix() -> None:
    """What `sam package` made under plan/<stack> (an s3:// CodeUri, an S3Key) is named at the
    stack's prefix, the same key below it; everything else is left as it was."""
    bucket, edge = "tracker-artifacts-111111111111", "tracker-dev-edge"
    packaged = {"Resources": {
        "EdgeFunction": {"Properties": {"CodeUri": f"s3://{bucket}/plan/{edge}/0a1b2c"}},
        "Rotation": {"Properties": {"Code": {"S3Bucket": bucket, "S3Key": f"plan/{edge}/3d4e5f"}}},
        "Other": {"Properties": {"Description": f"a sentence naming plan/{edge}/", "List": [f"s3://x/plan/{edge}/1"]}}}}
    moved = plan.stack_keys(packaged, bucket, edge)["Resources"]
    assert moved["EdgeFunction"]["Properties"]["CodeUri"] == f"s3://{bucket}/{edge}/0a1b2c"
    assert moved["Rotation"]["Properties"]["Code"] == {"S3Bucket": bucket, "S3Key": f"{edge}/3d4e5f"}
    assert moved["Other"] == packaged["Resources"]["Other"]  # not a location in this bucket


def test_the_artifact_buckets_keep_what_the_deployed_stacks_name() -> None:
    """A rollback or a late approval re-reads the templates and code a deployment named: every
    bootstrap's artifact bucket is versioned, keeps every current object and expires only
    overwritten versions, so a saved plan has no artifact limit."""
    templates = [load_template(path.read_text()) for path in sorted((ROOT / "bootstrap").glob("*.yaml"))]
    buckets = [r["Properties"] for t in templates for r in t["Resources"].values()
               if r["Type"] == "AWS::S3::Bucket"]
    assert buckets
    for bucket in buckets:
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = bucket["LifecycleConfiguration"]["Rules"]
        assert not [r for r in rules if {"ExpirationInDays", "ExpirationDate", "Transitions"} & set(r)]
        assert all(r["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 30 for r in rules
                   if "NoncurrentVersionExpiration" in r)
