"""Layering: which part of the architecture (network, database, API, ...) a resource belongs to.

The layer comes from the CloudFormation type (TYPE_LAYERS); a type without a layer of its own
(log group, role, bucket, function) joins the layer of the resources that reference it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from .template import Template

LAYERS = {  # drawing order and titles
    "network": "Network", "database": "Database", "api": "API", "frontend": "Frontend",
    "monitoring": "Monitoring", "shared": "Encryption", "other": "Other",
}

# CloudFormation type prefix -> layer (the longest matching prefix wins). Types not listed take
# the layer of the resources that reference them (see layers).
TYPE_LAYERS = {
    "AWS::EC2::": "network",
    "AWS::RDS::": "database", "AWS::SecretsManager::": "database", "AWS::DynamoDB::": "database",
    "AWS::ElastiCache::": "database",
    "AWS::ECS::": "api", "AWS::ECR::": "api", "AWS::ElasticLoadBalancingV2::": "api",
    "AWS::ApplicationAutoScaling::": "api", "AWS::ApiGateway": "api", "AWS::Serverless::Api": "api",
    "AWS::CloudFront::": "frontend", "AWS::CloudFront::MonitoringSubscription": "monitoring",
    "AWS::CloudWatch::": "monitoring", "AWS::SNS::": "monitoring", "AWS::Budgets::": "monitoring",
    "AWS::Logs::MetricFilter": "monitoring",
    "AWS::KMS::": "shared",
}


def type_layer(type_: str) -> str | None:
    matches = [prefix for prefix in TYPE_LAYERS if type_.startswith(prefix)]
    return TYPE_LAYERS[max(matches, key=len)] if matches else None


def layers(t: Template) -> dict[str, str]:
    """Logical ID -> layer: by type, else the layer most of its referrers have, else of what it
    references; the encryption key and monitoring count last, as they touch every layer."""
    layer = {rid: type_layer(t.type(rid)) for rid in t.resources}
    incoming: dict[str, set[str]] = defaultdict(set)
    for rid in t.resources:
        for target in t.refs[rid] | t.depends[rid]:
            incoming[target].add(rid)
    order = list(LAYERS)

    def vote(neighbours: Iterable[str], known: dict[str, str | None], skip: set[str]) -> str | None:
        counts = Counter(known[n] for n in neighbours if known[n] and known[n] not in skip)
        if not counts:
            return None
        return min(counts, key=lambda name: (-counts[name], order.index(name)))  # type: ignore[arg-type]

    for skip in ({"shared", "monitoring"}, {"shared"}):
        while True:  # each pass reads the previous pass only, so the order of IDs cannot matter
            known = dict(layer)
            changed = False
            for rid in sorted(t.resources):
                if known[rid] is None:
                    chosen = vote(incoming[rid], known, skip) or vote(
                        t.refs[rid] | t.depends[rid], known, skip)
                    if chosen:
                        layer[rid], changed = chosen, True
            if not changed:
                break
    return {rid: name or "other" for rid, name in layer.items()}

