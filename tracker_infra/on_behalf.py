"""Calls AWS makes on the bootstrap roles' behalf where no stand-in can see them.

Making a change set, CloudFormation runs the edge stack's SAM transform as the caller (the plan
or the deploy role: `by="caller"`); executing it, it replicates the Lambda@Edge function, creates
service-linked roles and passes the stacks' roles to their services as the stack's execution role
(`by="execution"`). moto runs none of that, so these calls are listed here, each with where AWS
documents it, and tests/test_ops_bootstrap.py judges every environment's roles against them with
the policy evaluator (tests/iam_policy.py), the execution role within its permissions boundary.

Each resource is a concrete example of what the call acts on, with {account}, {region} (the
stack's), {edge} (us-east-1) and {name} (<project>-<env>) filled in per environment (names
that end in a create ID, such as the edge function's, carry an example one); `context`
holds the condition keys AWS sends with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TRANSFORMS = "CloudFormation User Guide, Control access with IAM: conditions and transforms " \
             "(cloudformation:CreateChangeSet on arn:aws:cloudformation:<region>:aws:transform/<name>)"
EDGE = "CloudFront Developer Guide, Setting IAM permissions and roles for Lambda@Edge"
MONITORING = "RDS User Guide, Setting up and enabling Enhanced Monitoring (MonitoringRoleArn: " \
             "iam:PassRole, no iam:PassedToService value documented)"
LINKED = "IAM User Guide, Service-linked role permissions (iam:CreateServiceLinkedRole, iam:AWSServiceName)"


# the edge function is named per create of its stack (<name>-security-headers-<create ID>)
EDGE_FUNCTION_VERSION = "arn:aws:lambda:{edge}:{account}:function:{name}-security-headers-0a1b2c3d:1"


@dataclass(frozen=True)
class Call:
    action: str
    resource: str
    source: str
    context: dict[str, str] = field(default_factory=dict)
    stack: str = "regional"  # the stack whose region the call is made in: regional | edge
    by: str = "execution"  # who makes it: caller (plan and deploy roles) | execution


def _linked(service: str, role: str, stack: str = "regional") -> Call:
    return Call("iam:CreateServiceLinkedRole",
                f"arn:aws:iam::{{account}}:role/aws-service-role/{service}/{role}", LINKED,
                {"iam:AWSServiceName": service}, stack)


CALLS: tuple[Call, ...] = (
    Call("cloudformation:CreateChangeSet",
         "arn:aws:cloudformation:{edge}:aws:transform/Serverless-2016-10-31", TRANSFORMS, stack="edge",
         by="caller"),
    Call("iam:PassRole", "arn:aws:iam::{account}:role/{name}-DatabaseMonitoringRole-1A2B3C4D5E6F",
         MONITORING),
    Call("lambda:GetFunction", EDGE_FUNCTION_VERSION, EDGE, stack="edge"),
    Call("lambda:EnableReplication", EDGE_FUNCTION_VERSION, EDGE, stack="edge"),
    Call("cloudfront:UpdateDistribution", "arn:aws:cloudfront::{account}:distribution/E2QWRUHEXAMPLE", EDGE,
         stack="edge"),
    _linked("replicator.lambda.amazonaws.com", "AWSServiceRoleForLambdaReplicator", "edge"),
    _linked("logger.cloudfront.amazonaws.com", "AWSServiceRoleForCloudFrontLogger", "edge"),
    _linked("ecs.amazonaws.com", "AWSServiceRoleForECS"),
    _linked("elasticloadbalancing.amazonaws.com", "AWSServiceRoleForElasticLoadBalancing"),
    _linked("rds.amazonaws.com", "AWSServiceRoleForRDS"),
    _linked("ecs.application-autoscaling.amazonaws.com",
            "AWSServiceRoleForApplicationAutoScaling_ECSService"),
)
