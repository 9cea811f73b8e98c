"""Monitoring: alarm coverage and routing, the topics and who may publish, the PostgreSQL
connection-failure filter against sample log lines, dashboards, log retention."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    ENVS,
    VARS,
    config,
    config_with,
    copy_vars,
    per_create,
    props,
    render,
    resources,
    walk,
)
from tracker_infra.cli import main
from tracker_infra.config import read_yaml
from tracker_infra.schema import Alarms, Config

FIXTURES = Path(__file__).parent / "fixtures" / "postgresql"

# The original design's alarm numbers, written out here rather than
# read from vars, so a changed default fails this test.
MIN_TASKS = {"dev": 1, "staging": 2, "production": 3}
RETENTION = {"dev": 7, "staging": 30, "production": 90}


@pytest.fixture(scope="module")
def stacks() -> dict[str, dict[str, dict[str, Any]]]:
    """env -> {"app": parsed regional stack, "edge": parsed edge stack}."""
    return {env: {key: render(config(env), key) for key in ("app", "edge")} for env in ENVS}


def alarm(doc: dict[str, Any], logical_id: str) -> dict[str, Any]:
    assert doc["Resources"][logical_id]["Type"] == "AWS::CloudWatch::Alarm"
    return props(doc, logical_id)


def dims(metric: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


TARGETS = {"LoadBalancer": {"Fn::GetAtt": ["ApiLoadBalancer", "LoadBalancerFullName"]},
           "TargetGroup": {"Fn::GetAtt": ["ApiTargetGroup", "TargetGroupFullName"]}}


# --- alarm coverage ----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_api_latency_alarm_is_p95_above_2_s_for_2_periods(stacks: Any, env: str) -> None:
    p = alarm(stacks[env]["app"], "ApiLatencyAlarm")
    assert (p["Namespace"], p["MetricName"]) == ("AWS/ApplicationELB", "TargetResponseTime")
    assert p["ExtendedStatistic"] == "p95" and "Statistic" not in p
    assert dims(p) == TARGETS
    assert p["ComparisonOperator"] == "GreaterThanThreshold" and p["Threshold"] == 2
    assert p["EvaluationPeriods"] == p["DatapointsToAlarm"] == 2


@pytest.mark.parametrize("env", ENVS)
def test_api_error_rate_alarm_is_target_5xx_over_requests_above_5_percent(
        stacks: Any, env: str) -> None:
    p = alarm(stacks[env]["app"], "ApiErrorRateAlarm")
    assert "MetricName" not in p and "Statistic" not in p  # metric math only
    by_id = {m["Id"]: m for m in p["Metrics"]}
    returned = [m for m in p["Metrics"] if m.get("ReturnData", True)]
    assert len(returned) == 1
    expression = returned[0]["Expression"]
    stats = {m["MetricStat"]["Metric"]["MetricName"]: m for m in p["Metrics"] if "MetricStat" in m}
    assert set(stats) == {"HTTPCode_Target_5XX_Count", "RequestCount"}
    errors, requests = stats["HTTPCode_Target_5XX_Count"]["Id"], stats["RequestCount"]["Id"]
    # 100 * 5xx / requests: the 5xx id in the numerator (FILLed: no 5xx, no data point)
    assert re.fullmatch(rf"100 \* FILL\({errors}, 0\) / {requests}", expression), expression
    for metric_id in (errors, requests):  # per minute, of the API's targets, not returned
        stat = by_id[metric_id]["MetricStat"]
        assert (stat["Stat"], stat["Period"], dims(stat["Metric"]), by_id[metric_id]["ReturnData"]) == (
            "Sum", 60, TARGETS, False)
    assert p["ComparisonOperator"] == "GreaterThanThreshold" and p["Threshold"] == 5
    assert p["EvaluationPeriods"] == p["DatapointsToAlarm"] == 2


@pytest.mark.parametrize("env", ENVS)
def test_running_task_alarm_fires_below_the_environments_minimum(stacks: Any, env: str) -> None:
    p = alarm(stacks[env]["app"], "ApiRunningTasksAlarm")
    assert (p["Namespace"], p["MetricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert dims(p) == {"ClusterName": {"Ref": "ApiCluster"},
                       "ServiceName": {"Fn::GetAtt": ["ApiService", "Name"]}}
    assert p["ComparisonOperator"] == "LessThanThreshold"
    assert p["Threshold"] == MIN_TASKS[env]
    assert p["TreatMissingData"] == "breaching"  # no data: no task at all
    # Container Insights must be on for the metric to exist
    settings = props(stacks[env]["app"], "ApiCluster")["ClusterSettings"]
    assert {"Name": "containerInsights", "Value": "enabled"} in settings


@pytest.mark.parametrize("env", ENVS)
def test_no_healthy_targets_alarm(stacks: Any, env: str) -> None:
    p = alarm(stacks[env]["app"], "ApiNoHealthyTargetsAlarm")
    assert (p["Namespace"], p["MetricName"]) == ("AWS/ApplicationELB", "HealthyHostCount")
    assert dims(p) == TARGETS
    assert (p["ComparisonOperator"], p["Threshold"]) == ("LessThanThreshold", 1)


@pytest.mark.parametrize("env", ENVS)
def test_connection_failure_alarm_counts_more_than_10_in_5_minutes(stacks: Any, env: str) -> None:
    doc = stacks[env]["app"]
    p = alarm(doc, "DatabaseConnectionFailuresAlarm")
    flt = props(doc, "DatabaseConnectionFailuresMetricFilter")
    assert flt["LogGroupName"] == {"Ref": "DatabaseLogGroup"}
    (transform,) = flt["MetricTransformations"]
    assert (p["Namespace"], p["MetricName"]) == (transform["MetricNamespace"],
                                                 transform["MetricName"])
    assert transform["MetricValue"] == "1"
    assert p["Statistic"] == "Sum" and p["Period"] * p["EvaluationPeriods"] == 300
    assert (p["ComparisonOperator"], p["Threshold"]) == ("GreaterThanThreshold", 10)


@pytest.mark.parametrize("env", ENVS)
def test_acu_alarm_is_above_90_percent_for_5_minutes(stacks: Any, env: str) -> None:
    p = alarm(stacks[env]["app"], "DatabaseAcuUtilizationAlarm")
    assert (p["Namespace"], p["MetricName"]) == ("AWS/RDS", "ACUUtilization")
    assert dims(p) == {"DBClusterIdentifier": {"Ref": "DatabaseCluster"}}
    assert (p["ComparisonOperator"], p["Threshold"]) == ("GreaterThanThreshold", 90)
    assert p["Period"] * p["EvaluationPeriods"] == 300
    assert p["DatapointsToAlarm"] == p["EvaluationPeriods"]  # every minute of the five


@pytest.mark.parametrize("env", ENVS)
def test_edge_stack_alarms_on_cloudfront_5xx_and_lambda_at_edge_errors(
        stacks: Any, env: str) -> None:
    doc = stacks[env]["edge"]
    p = alarm(doc, "Cloudfront5xxErrorRateAlarm")
    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == (
        "AWS/CloudFront", "5xxErrorRate", "Average")
    assert dims(p) == {"DistributionId": {"Ref": "Distribution"}, "Region": "Global"}
    assert (p["ComparisonOperator"], p["Threshold"]) == ("GreaterThanThreshold", 5)
    p = alarm(doc, "EdgeFunctionErrorsAlarm")
    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    # the replicas' metric name: us-east-1.<the function's name> (Ref of the function)
    assert dims(p) == {"FunctionName": {"Fn::Sub": "us-east-1.${SecurityHeadersFunction}"}}


def test_only_production_has_a_critical_topic_and_routes_critical_alarms_there(
        stacks: Any) -> None:
    critical = {"ApiErrorRateAlarm", "ApiNoHealthyTargetsAlarm", "Cloudfront5xxErrorRateAlarm"}
    for env in ENVS:
        for key in ("app", "edge"):
            doc = stacks[env][key]
            topics = set(resources(doc, "AWS::SNS::Topic"))
            expected = ({"AlarmWarningTopic", "AlarmCriticalTopic"} if env == "production"
                        else {"AlarmWarningTopic"})
            assert topics == expected, (env, key)
            for logical_id in resources(doc, "AWS::CloudWatch::Alarm"):
                p = props(doc, logical_id)
                topic = ("AlarmCriticalTopic" if env == "production" and logical_id in critical
                         else "AlarmWarningTopic")
                assert p["AlarmActions"] == p["OKActions"] == [{"Ref": topic}], (env, logical_id)


def config_with_alarm(env: str, name: str, change: dict[str, Any]) -> Config:
    return config_with(env, {"monitoring": {"alarms": {name: change}}})


def test_severity_and_thresholds_come_from_vars() -> None:
    cfg = config_with_alarm("staging", "api_latency_p95",
                            {"threshold": 3.5, "evaluation_periods": 4, "severity": "critical"})
    p = alarm(render(cfg), "ApiLatencyAlarm")
    assert (p["Threshold"], p["EvaluationPeriods"]) == (3.5, 4)
    # critical, but staging has no critical topic: the warning topic still gets it
    assert p["AlarmActions"] == [{"Ref": "AlarmWarningTopic"}]
    cfg = config_with_alarm("production", "api_latency_p95", {"severity": "critical"})
    assert alarm(render(cfg), "ApiLatencyAlarm")["AlarmActions"] == [{"Ref": "AlarmCriticalTopic"}]


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_explains_itself_and_chooses_missing_data(stacks: Any, env: str) -> None:
    for key in ("app", "edge"):
        doc = stacks[env][key]
        for logical_id in resources(doc, "AWS::CloudWatch::Alarm"):
            p = props(doc, logical_id)
            assert "Check first:" in p["AlarmDescription"], logical_id
            assert len(p["AlarmDescription"]) <= 1024  # CloudWatch's limit
            assert p["TreatMissingData"] in {"breaching", "notBreaching"}, logical_id
            assert not ("Statistic" in p and "ExtendedStatistic" in p), logical_id
            assert p["AlarmName"].startswith(f"tracker-{env}{'-edge' if key == 'edge' else ''}-")


def test_one_alarm_per_alarm_setting_and_three_dashboards(stacks: Any) -> None:
    """Every setting under monitoring.alarms is one alarm, in the stack whose metric it watches
    (CloudFront and Lambda@Edge in the edge stack); the dashboards are the design's three: API and
    database in the regional stack, frontend in the edge stack."""
    settings = set(Alarms.model_fields)
    edge = {s for s in settings if s.startswith(("cloudfront_", "edge_"))}
    for env in ENVS:
        alarms = {key: resources(doc, "AWS::CloudWatch::Alarm") for key, doc in stacks[env].items()}
        assert (len(alarms["app"]), len(alarms["edge"])) == (len(settings - edge), len(edge))
        dashboards = {key: resources(doc, "AWS::CloudWatch::Dashboard") for key, doc in stacks[env].items()}
        assert (len(dashboards["app"]), len(dashboards["edge"])) == (2, 1)


def test_alarm_settings_are_written_once_in_vars_defaults() -> None:
    """The schema holds no alarm values of its own: vars/defaults.yaml is their one source, and a
    setting missing from it is refused, naming it."""
    assert all(field.is_required() for field in Alarms.model_fields.values())
    assert Config.model_fields["monitoring"].annotation.model_fields["alarms"].is_required()
    defaults = read_yaml(VARS / "defaults.yaml")["monitoring"]["alarms"]
    assert set(defaults) == set(Alarms.model_fields)


def test_an_alarm_setting_missing_from_vars_is_refused_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vars_dir = copy_vars(tmp_path)
    path = vars_dir / "defaults.yaml"
    text = path.read_text()
    start = text.index("    edge_function_errors:")
    path.write_text(text[:start] + text[text.index("\n\n", start) + 1:])
    assert main(["--env", "dev", "--vars", str(vars_dir), "--out", str(tmp_path / "out")]) == 2
    assert "monitoring.alarms.edge_function_errors" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- topics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("key", ["app", "edge"])
def test_topics_are_encrypted_and_only_this_stacks_alarms_may_publish(
        stacks: Any, env: str, key: str) -> None:
    doc = stacks[env][key]
    alarm_names = [props(doc, a)["AlarmName"] for a in resources(doc, "AWS::CloudWatch::Alarm")]
    policies = {p["Topics"][0]["Ref"]: p for p in
                (props(doc, lid) for lid in resources(doc, "AWS::SNS::TopicPolicy"))}
    for topic in resources(doc, "AWS::SNS::Topic"):
        assert props(doc, topic)["KmsMasterKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}
        (allow,) = [s for s in policies[topic]["PolicyDocument"]["Statement"]
                    if s["Effect"] == "Allow"]
        assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert allow["Action"] == "sns:Publish"
        pattern = allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].rsplit(":", 1)[-1]
        assert all(fnmatch.fnmatchcase(name, pattern) for name in alarm_names)
        assert not fnmatch.fnmatchcase(f"tracker-other-{env}-x", pattern)
    _the_key_serves_the_same_alarms(doc, alarm_names)


def _the_key_serves_the_same_alarms(doc: Any, alarm_names: list[str]) -> None:
    """The key lets CloudWatch make data keys for the stack's alarms, and nobody else by that door."""
    key_statements = props(doc, "StackKey")["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in key_statements
                     if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    pattern = cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].rsplit(":", 1)[-1]
    assert all(fnmatch.fnmatchcase(name, pattern) for name in alarm_names)


@pytest.mark.parametrize("env", ENVS)
def test_email_subscriptions_follow_vars(stacks: Any, env: str) -> None:
    cfg = config(env)
    expected = {"AlarmWarningTopic": sorted(cfg.monitoring.alarm_emails)}
    if env == "production":
        expected["AlarmCriticalTopic"] = sorted(cfg.monitoring.critical_alarm_emails)
        assert "oncall@communitytracker.example.com" in expected["AlarmCriticalTopic"]
    for key in ("app", "edge"):
        doc = stacks[env][key]
        found: dict[str, list[str]] = {}
        for lid in resources(doc, "AWS::SNS::Subscription"):
            p = props(doc, lid)
            assert p["Protocol"] == "email"
            found.setdefault(p["TopicArn"]["Ref"], []).append(p["Endpoint"])
        assert {t: sorted(e) for t, e in found.items()} == expected


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"alarms": {"api_latency_p95": {"period_seconds": 90}}},
     "monitoring.alarms.api_latency_p95.period_seconds", "multiple of 60"),
    ({"alarms": {"api_error_rate": {"severity": "page"}}},
     "monitoring.alarms.api_error_rate.severity", "critical"),
    ({"alarms": {"database_acu_utilization": {"evaluation_periods": 1441}}},
     "monitoring.alarms.database_acu_utilization.evaluation_periods", "1440"),
    ({"critical_alarm_emails": ["oncall@communitytracker.example.com"]},
     "monitoring.critical_alarm_emails", "critical_topic is false"),
    ({"critical_topic": True}, "monitoring.critical_alarm_emails", "at least one address"),
])
def test_bad_monitoring_vars_are_one_line_exit_2(change: dict[str, Any], key: str, words: str,
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = copy_vars(tmp_path, {"staging.yaml": {"monitoring": change}})
    assert main(["--env", "staging", "--vars", str(bad), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f": {key}: " in lines[0] and words in lines[0], lines
    assert not (tmp_path / "out").exists()


# --- the connection-failure filter against PostgreSQL log lines --------------------------------

# CloudWatch Logs filter patterns (Amazon CloudWatch Logs user guide, "Filter pattern syntax":
# "Filter patterns are case sensitive. Enclose exact phrases and terms that include
# non-alphanumeric characters in double quotation marks"; "?ERROR ?WARN" matches events holding
# either term). The project's pattern uses only that OR-of-quoted-phrases form, and the parser
# below refuses anything else, so the emulation covers exactly the syntax in use.
_OR_OF_PHRASES = re.compile(r'\?"[^"\\]+"(?: \?"[^"\\]+")*')


def phrases(pattern: str) -> list[str]:
    if not _OR_OF_PHRASES.fullmatch(pattern):
        raise ValueError(f"not an OR of quoted phrases: {pattern!r}")
    return re.findall(r'\?"([^"\\]+)"', pattern)


def matches(pattern: str, event: str, *, whole_words: bool = False) -> bool:
    """Does CloudWatch count this log event? Case-sensitive; any phrase present. The user guide
    does not say whether a phrase may start or end inside a word, so whole_words=True reads it
    the strict way; the fixtures must classify the same under both readings."""
    for phrase in phrases(pattern):
        if whole_words:
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(phrase)}(?![A-Za-z0-9])", event):
                return True
        elif phrase in event:
            return True
    return False


def test_emulation_follows_the_user_guides_examples() -> None:
    either = '?"ERROR" ?"WARN"'
    assert matches(either, "[ERROR 400] BAD REQUEST")
    assert matches(either, "[WARN] disk at 80%")
    assert not matches(either, "[INFO] all good")
    assert not matches(either, "[error 400] bad request")  # case-sensitive
    phrase = '?"INTERNAL SERVER ERROR"'
    assert matches(phrase, "[ERROR 500] INTERNAL SERVER ERROR")
    assert not matches(phrase, "[ERROR 500] INTERNAL SERVER")
    with pytest.raises(ValueError):
        phrases("ERROR -DEBUG")  # AND/NOT forms are not emulated, so they are refused


def log_lines(name: str) -> list[str]:
    lines = (FIXTURES / name).read_text().splitlines()
    assert len(lines) >= 10
    return lines


@pytest.mark.parametrize("env", ENVS)
def test_filter_counts_real_postgresql_connection_failures(stacks: Any, env: str) -> None:
    pattern = props(stacks[env]["app"], "DatabaseConnectionFailuresMetricFilter")["FilterPattern"]
    failures = log_lines("connection-failures.log")
    for whole_words in (False, True):
        missed = [line for line in failures if not matches(pattern, line, whole_words=whole_words)]
        assert not missed, missed
    # every phrase earns its place: each one is the reason some sample line counts
    for phrase in phrases(pattern):
        assert any(phrase in line for line in failures), phrase


@pytest.mark.parametrize("env", ENVS)
def test_filter_ignores_ordinary_postgresql_lines(stacks: Any, env: str) -> None:
    pattern = props(stacks[env]["app"], "DatabaseConnectionFailuresMetricFilter")["FilterPattern"]
    ordinary = log_lines("ordinary.log")
    for whole_words in (False, True):
        counted = [line for line in ordinary if matches(pattern, line, whole_words=whole_words)]
        assert not counted, counted
    # the sample holds the near misses that matter
    assert any("LOG:  connection received" in line for line in ordinary)
    assert any("LOG:  checkpoint complete" in line for line in ordinary)
    assert any("DETAIL:  Connection matched pg_hba.conf" in line for line in ordinary)


def test_filter_test_can_fail() -> None:
    # a pattern missing a phrase misses the lines only that phrase catches
    assert not matches('?"password authentication failed"',
                       log_lines("connection-failures.log")[5])
    assert matches('?"connection"', log_lines("ordinary.log")[0])


# --- dashboards ----------------------------------------------------------------------------------


def dashboard(doc: dict[str, Any], logical_id: str) -> tuple[dict[str, Any], list[str]]:
    """The parsed body and the ${...} references !Sub fills in."""
    body = props(doc, logical_id)["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    return json.loads(body), re.findall(r"\$\{([^}]+)\}", body)


def metric_names(body: dict[str, Any]) -> set[str]:
    names = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], str):
                names.add(row[1])
                options = row[-1] if isinstance(row[-1], dict) else {}
                if "stat" in options:
                    names.add(f"{row[1]}:{options['stat']}")
    return names


@pytest.mark.parametrize("env", ENVS)
def test_dashboards_show_the_seed_designs_widgets(stacks: Any, env: str) -> None:
    app, edge = stacks[env]["app"], stacks[env]["edge"]
    api, _ = dashboard(app, "ApiDashboard")
    assert {"RequestCount", "TargetResponseTime:p50", "TargetResponseTime:p95",
            "TargetResponseTime:p99", "HTTPCode_Target_5XX_Count", "HTTPCode_Target_2XX_Count",
            "HTTPCode_Target_4XX_Count", "RunningTaskCount", "CPUUtilization",
            "MemoryUtilization"} <= metric_names(api)
    assert any("expression" in row[0] for w in api["widgets"]
               for row in w["properties"].get("metrics", []) if isinstance(row[0], dict))
    database, _ = dashboard(app, "DatabaseDashboard")
    assert {"DatabaseConnections", "CPUUtilization", "ServerlessDatabaseCapacity",
            "ACUUtilization", "VolumeBytesUsed", "ReadIOPS", "WriteIOPS",
            "DatabaseConnectionFailures"} <= metric_names(database)
    frontend, _ = dashboard(edge, "FrontendDashboard")
    assert {"Requests", "CacheHitRate", "5xxErrorRate", "4xxErrorRate", "BytesDownloaded",
            "Errors"} <= metric_names(frontend)
    assert {w["properties"]["region"] for w in frontend["widgets"] if "region" in
            w["properties"]} == {"us-east-1"}
    # cache hit rate needs CloudFront's additional metrics, switched on next to the dashboard
    subscription = resources(edge, "AWS::CloudFront::MonitoringSubscription")
    (sub,) = subscription.values()
    assert sub["Properties"]["DistributionId"] == {"Ref": "Distribution"}


@pytest.mark.parametrize("env", ENVS)
def test_dashboard_references_resolve_to_resources_of_the_same_stack(
        stacks: Any, env: str) -> None:
    for key, ids in (("app", ["ApiDashboard", "DatabaseDashboard"]), ("edge", ["FrontendDashboard"])):
        doc = stacks[env][key]
        for logical_id in ids:
            _, refs = dashboard(doc, logical_id)
            assert refs
            for ref in refs:
                target = ref.split(".")[0]
                assert target.startswith("AWS::") or target in doc["Resources"], (logical_id, ref)


def test_cache_hit_rate_widget_explains_itself_when_additional_metrics_are_off() -> None:
    doc = render(config_with("dev", {"monitoring": {"cloudfront_additional_metrics": False}}),
                 "edge")
    assert not resources(doc, "AWS::CloudFront::MonitoringSubscription")
    body, _ = dashboard(doc, "FrontendDashboard")
    assert "CacheHitRate" not in metric_names(body)
    assert any("additional metrics" in w["properties"].get("markdown", "") for w in body["widgets"])


@pytest.mark.parametrize("env", ENVS)
def test_alarm_references_resolve(stacks: Any, env: str) -> None:
    for doc in stacks[env].values():
        for logical_id in resources(doc, "AWS::CloudWatch::Alarm"):
            for node in walk(props(doc, logical_id)):
                if isinstance(node, dict) and "Ref" in node and not node["Ref"].startswith("AWS::"):
                    assert node["Ref"] in doc["Resources"], (logical_id, node)
                if isinstance(node, dict) and "Fn::GetAtt" in node:
                    assert node["Fn::GetAtt"][0] in doc["Resources"], (logical_id, node)


# --- log groups ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_log_groups_keep_the_environments_retention_and_use_the_stack_key(
        stacks: Any, env: str) -> None:
    names = {}
    for key, doc in stacks[env].items():
        for logical_id in resources(doc, "AWS::Logs::LogGroup"):
            p = props(doc, logical_id)
            assert p["RetentionInDays"] == RETENTION[env], logical_id
            assert p["KmsKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}, logical_id
            name = p.get("LogGroupName", logical_id)  # a generated name: its logical id
            names[per_create(name) if isinstance(name, dict) else name] = key
    assert names == {
        "DatabaseUserLogGroup": "app",
        f"/aws/lambda/tracker-{env}-secret-rotation": "app",  # the rotation function's own
        f"/aws/ecs/api-{env}-${{CreateId}}": "app",  # kept when protected: named per create
        f"/aws/rds/cluster/tracker-{env}/postgresql": "app",  # RDS's name: goes with the stack
        f"/aws/vpc/flowlogs-{env}-${{CreateId}}": "app",
        f"/aws/lambda/us-east-1.tracker-{env}-security-headers-${{CreateId}}": "edge",  # us-east-1 replica
    }
