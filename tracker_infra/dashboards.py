"""CloudWatch dashboard bodies (the API, Database and Frontend dashboards; docs/design.md).

A DashboardBody is a JSON document in a string. It is built here as Python data and dumped with
``json.dumps``, so no value can break the JSON; the template passes it through the ``yaml`` filter
into ``!Sub``, which fills in the ``${...}`` references (resource names, the region) at deploy time.
The only ``${`` sequences in a body are those references: labels use no dynamic ``${LABEL}``.

Registered in the Jinja environment as ``dashboard_body(name, cfg)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .schema import Config

EDGE_REGION = "us-east-1"  # CloudFront and Lambda@Edge (us-east-1 replica) metrics live here
WIDTH, HEIGHT, COLUMNS = 12, 6, 2  # two widgets a row on CloudWatch's 24-unit grid

Metric = list[Any]


def _metric(namespace: str, name: str, dimensions: dict[str, str], **options: Any) -> Metric:
    row: Metric = [namespace, name]
    for key, value in dimensions.items():
        row += [key, value]
    return [*row, options] if options else row


def _graph(title: str, metrics: list[Metric], region: str, *, stat: str = "Average",
           period: int = 60, lines: list[tuple[str, float]] | None = None,
           right_label: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title, "view": "timeSeries", "stacked": False, "region": region,
        "stat": stat, "period": period, "metrics": metrics,
    }
    if lines:  # thresholds drawn as horizontal lines, labelled
        properties["annotations"] = {"horizontal": [{"label": label, "value": value}
                                                    for label, value in lines]}
    if right_label:
        properties["yAxis"] = {"right": {"label": right_label}}
    return {"type": "metric", "properties": properties}


def _text(markdown: str) -> dict[str, Any]:
    return {"type": "text", "properties": {"markdown": markdown}}


def _alarms(title: str, logical_ids: list[str], region: str) -> dict[str, Any]:
    return {"type": "alarm", "properties": {
        "title": title, "region": region,
        "alarms": [f"${{{logical_id}.Arn}}" for logical_id in logical_ids],
    }}


def _layout(widgets: list[dict[str, Any]]) -> str:
    """Place the widgets on the grid, left to right, top to bottom, and dump the body."""
    placed = []
    for index, widget in enumerate(widgets):
        placed.append({**widget, "x": (index % COLUMNS) * WIDTH, "y": (index // COLUMNS) * HEIGHT,
                       "width": WIDTH, "height": HEIGHT})
    return json.dumps({"widgets": placed}, sort_keys=True, separators=(",", ":"))


# --- the regional stack ------------------------------------------------------------------------

_ALB = "AWS/ApplicationELB"
_TARGETS = {"LoadBalancer": "${ApiLoadBalancer.LoadBalancerFullName}",
            "TargetGroup": "${ApiTargetGroup.TargetGroupFullName}"}
_SERVICE = {"ClusterName": "${ApiCluster}", "ServiceName": "${ApiService.Name}"}
_REGION = "${AWS::Region}"


def api(cfg: Config) -> str:
    alarms = cfg.monitoring.alarms
    return _layout([
        _graph("Requests", [_metric(_ALB, "RequestCount", _TARGETS, label="Requests")],
               _REGION, stat="Sum"),
        _graph("Latency (target response time, s)", [
            _metric(_ALB, "TargetResponseTime", _TARGETS, stat=p, label=p)
            for p in ("p50", "p95", "p99")
        ], _REGION, lines=[("p95 alarm", alarms.api_latency_p95.threshold)]),
        _graph("Error rate (target 5xx / requests, %)", [
            [{"expression": "100 * FILL(m5xx, 0) / requests", "label": "Error rate %",
              "id": "rate"}],
            _metric(_ALB, "HTTPCode_Target_5XX_Count", _TARGETS, id="m5xx", visible=False),
            _metric(_ALB, "RequestCount", _TARGETS, id="requests", visible=False),
        ], _REGION, stat="Sum", lines=[("alarm", alarms.api_error_rate.threshold)]),
        _graph("Status codes", [
            *[_metric(_ALB, f"HTTPCode_Target_{code}_Count", _TARGETS, label=f"target {code}")
              for code in ("2XX", "3XX", "4XX", "5XX")],
            _metric(_ALB, "HTTPCode_ELB_5XX_Count",
                    {"LoadBalancer": _TARGETS["LoadBalancer"]}, label="load balancer 5XX"),
        ], _REGION, stat="Sum"),
        _graph("Tasks", [
            _metric("ECS/ContainerInsights", name, _SERVICE, label=label)
            for name, label in (("RunningTaskCount", "running"), ("DesiredTaskCount", "desired"),
                                ("PendingTaskCount", "pending"))
        ], _REGION, lines=[("minimum", cfg.api.min_tasks), ("maximum", cfg.api.max_tasks)]),
        _graph("CPU and memory utilisation (%)", [
            _metric("AWS/ECS", "CPUUtilization", _SERVICE, label="CPU"),
            _metric("AWS/ECS", "MemoryUtilization", _SERVICE, label="memory"),
        ], _REGION, lines=[("CPU scaling target", cfg.api.cpu_target_percent),
                           ("memory scaling target", cfg.api.memory_target_percent)]),
        _graph("Targets", [
            _metric(_ALB, "HealthyHostCount", _TARGETS, label="healthy", stat="Minimum"),
            _metric(_ALB, "UnHealthyHostCount", _TARGETS, label="unhealthy", stat="Maximum"),
        ], _REGION),
        _alarms("API alarms", ["ApiLatencyAlarm", "ApiErrorRateAlarm", "ApiRunningTasksAlarm",
                               "ApiNoHealthyTargetsAlarm"], _REGION),
    ])


_RDS = "AWS/RDS"
_CLUSTER = {"DBClusterIdentifier": "${DatabaseCluster}"}


def _instances(cfg: Config) -> list[tuple[str, dict[str, str]]]:
    roles = ["Writer", "Reader"][: cfg.database.instances]
    return [(role.lower(), {"DBInstanceIdentifier": f"${{Database{role}Instance}}"})
            for role in roles]


def database(cfg: Config) -> str:
    alarms = cfg.monitoring.alarms
    instances = _instances(cfg)

    def each(name: str, what: str, **options: Any) -> list[Metric]:
        return [_metric(_RDS, name, dims, label=f"{role} {what}".strip(), **options)
                for role, dims in instances]

    return _layout([
        _graph("Connections", [
            *each("DatabaseConnections", ""),
            _metric(f"{cfg.project}/{cfg.environment}", "DatabaseConnectionFailures", {},
                    label="failed connections (log)", stat="Sum", yAxis="right"),
        ], _REGION, right_label="failures"),
        _graph("CPU (%)", each("CPUUtilization", "CPU"), _REGION),
        _graph("Capacity (ACU)", [
            _metric(_RDS, "ServerlessDatabaseCapacity", _CLUSTER, label="ACU in use"),
            _metric(_RDS, "ACUUtilization", _CLUSTER, label="% of max ACU", yAxis="right"),
        ], _REGION, lines=[("max ACU", cfg.database.max_acu)], right_label="%"),
        _graph("Storage", [
            _metric(_RDS, "VolumeBytesUsed", _CLUSTER, label="cluster volume bytes"),
            *each("FreeLocalStorage", "free local storage"),
        ], _REGION, period=300),
        _graph("IOPS", [*each("ReadIOPS", "read"), *each("WriteIOPS", "write")], _REGION),
        _graph("Query latency (s)", [*each("ReadLatency", "read"), *each("WriteLatency", "write"),
                                     *each("CommitLatency", "commit (ms)", yAxis="right")],
               _REGION, right_label="ms"),
        _graph("Freeable memory (bytes)", each("FreeableMemory", ""), _REGION),
        _alarms("Database alarms", ["DatabaseConnectionFailuresAlarm",
                                    "DatabaseAcuUtilizationAlarm"], _REGION),
        _text(f"ACU alarm above {alarms.database_acu_utilization.threshold:g} % of max ACU; "
              f"connection-failure alarm above "
              f"{alarms.database_connection_failures.threshold:g} failed connections in "
              f"{alarms.database_connection_failures.period_seconds // 60} minutes. The failures "
              "come from a metric filter on the exported PostgreSQL log."),
    ])


# --- the edge stack ------------------------------------------------------------------------------

_CLOUDFRONT = "AWS/CloudFront"
_DISTRIBUTION = {"Region": "Global", "DistributionId": "${Distribution}"}


def frontend(cfg: Config) -> str:
    extra = cfg.monitoring.cloudfront_additional_metrics
    function = "us-east-1.${SecurityHeadersFunction}"  # name of the replicas' metrics (Fn::Sub)
    if extra:
        cache: dict[str, Any] = _graph(
            "Cache hit rate (%)", [_metric(_CLOUDFRONT, "CacheHitRate", _DISTRIBUTION,
                                           label="cache hit rate")], EDGE_REGION, period=300)
    else:
        cache = _text("Cache hit rate needs CloudFront's additional metrics: set "
                      "monitoring.cloudfront_additional_metrics in vars.")
    status_rates = ["401", "403", "404", "502", "503", "504"] if extra else []
    return _layout([
        _graph("Requests", [_metric(_CLOUDFRONT, "Requests", _DISTRIBUTION, label="requests")],
               EDGE_REGION, stat="Sum", period=300),
        cache,
        _graph("Error rates (%)", [
            *[_metric(_CLOUDFRONT, f"{kind}ErrorRate", _DISTRIBUTION, label=kind)
              for kind in ("Total", "4xx", "5xx", *status_rates)],
        ], EDGE_REGION, period=300,
            lines=[("5xx alarm", cfg.monitoring.alarms.cloudfront_5xx_error_rate.threshold)]),
        _graph("Bytes", [
            _metric(_CLOUDFRONT, "BytesDownloaded", _DISTRIBUTION, label="downloaded"),
            _metric(_CLOUDFRONT, "BytesUploaded", _DISTRIBUTION, label="uploaded"),
        ], EDGE_REGION, stat="Sum", period=300),
        _graph("Security-headers function (executions served from us-east-1)", [
            _metric("AWS/Lambda", "Invocations", {"FunctionName": function}, label="invocations"),
            _metric("AWS/Lambda", "Errors", {"FunctionName": function}, label="errors"),
            _metric(_CLOUDFRONT, "LambdaExecutionError", _DISTRIBUTION,
                    label="execution errors (all regions)"),
            _metric(_CLOUDFRONT, "LambdaValidationError", _DISTRIBUTION,
                    label="invalid responses (all regions)"),
        ], EDGE_REGION, stat="Sum", period=300),
        _alarms("Frontend alarms", ["Cloudfront5xxErrorRateAlarm", "EdgeFunctionErrorsAlarm"],
                EDGE_REGION),
    ])


BODIES: dict[str, Callable[[Config], str]] = {"api": api, "database": database,
                                              "frontend": frontend}


def dashboard_body(name: str, cfg: Config) -> str:
    """The DashboardBody of one dashboard, for ``!Sub``."""
    return BODIES[name](cfg)
