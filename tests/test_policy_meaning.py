"""The review judges policies and security-group rules by what they allow (review/security.py,
review/policy.py): each kind of widening flagged one way, the same edit undone not flagged; and a
property test over generated policy documents, one a strict subset of the other."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker_infra.review.iam_actions import service_actions
from tracker_infra.review.security import iam_changes, rule_changes
from tracker_infra.review.template import Template

Doc = dict[str, Any]
ACCOUNT, OTHER = "111111111111", "222222222222"
BUCKET_ARN = "arn:aws:s3:::site/*"


def _template(resources: dict[str, Any]) -> Template:
    return Template({"Resources": resources})


def _policy(
    statements: list[Doc],
    type_: str = "AWS::S3::BucketPolicy",
    key: str = "PolicyDocument",
    text: bool = False,
) -> Template:
    doc = {"Version": "2012-10-17", "Statement": statements}
    return _template({"Policy": {"Type": type_, "Properties": {key: json.dumps(doc) if text else doc}}})


def iam_widenings(old: Template, new: Template) -> list[str]:
    return [c.widening for c in iam_changes(old, new) if c.widening]


def _read(**extra: Any) -> Doc:
    return {
        "Effect": "Allow",
        "Principal": {"AWS": ACCOUNT},
        "Action": "s3:GetObject",
        "Resource": BUCKET_ARN,
        **extra,
    }


SOURCE = "arn:aws:cloudfront::111111111111:distribution/EDFDVBD6EXAMPLE"
# (narrower statement, wider statement, what the widening says first)
STATEMENT_PAIRS = {
    "new principal": (
        _read(),
        _read(Principal={"AWS": [ACCOUNT, OTHER]}),
        "new principal AWS:arn:aws:iam::2",
    ),
    "anyone": (_read(), _read(Principal="*"), "new principal *"),
    "account covers its role": (
        _read(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"}),
        _read(),
        "new principal AWS:arn:aws:iam::111111111111:root",
    ),
    "new action": (_read(), _read(Action=["s3:GetObject", "s3:PutObject"]), "new action s3:PutObject"),
    "wildcard action": (
        _read(Action="s3:Get*"),
        _read(Action="s3:*"),
        "new action s3:* (now allows s3:Abort",
    ),
    "wider resource": (_read(), _read(Resource="arn:aws:s3:::*"), "wider resource arn:aws:s3:::*"),
    "question mark": (
        _read(Resource="arn:aws:s3:::site/a.txt"),
        _read(Resource="arn:aws:s3:::site/?.txt"),
        "wider resource arn:aws:s3:::site/?.txt",
    ),
    "condition removed": (
        _read(Condition={"StringEquals": {"AWS:SourceArn": SOURCE}}),
        _read(),
        "condition removed: StringEquals AWS:SourceArn",
    ),
    "StringEquals -> StringLike with a wildcard": (
        _read(Condition={"StringEquals": {"AWS:SourceArn": SOURCE}}),
        _read(Condition={"StringLike": {"AWS:SourceArn": "arn:aws:cloudfront::111111111111:distribution/*"}}),
        "condition loosened: StringEquals AWS:SourceArn",
    ),
    "ArnEquals -> ArnLike with a wildcard": (
        _read(Condition={"ArnEquals": {"aws:SourceArn": SOURCE}}),
        _read(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:cloudfront::*:distribution/*"}}),
        "condition loosened: ArnEquals aws:SourceArn",
    ),
    "IfExists added": (
        _read(Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}}),
        _read(Condition={"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}),
        "condition loosened: StringEquals aws:SourceAccount",
    ),
    "condition value added": (
        _read(Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}}),
        _read(Condition={"StringEquals": {"aws:SourceAccount": [ACCOUNT, OTHER]}}),
        "condition loosened",
    ),
    "NotAction excludes less": (
        _read(Action=None, NotAction=["iam:*", "s3:*"]),
        _read(Action=None, NotAction="iam:*"),
        "new action",
    ),
    "source IP range wider": (
        _read(Condition={"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}}),
        _read(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        "condition loosened",
    ),
    "excluded IP range smaller": (
        _read(Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        _read(Condition={"NotIpAddress": {"aws:SourceIp": "10.1.0.0/16"}}),
        "condition loosened",
    ),
    "inside an intrinsic": (
        _read(Resource={"Fn::Sub": "${Site.Arn}/reports/*"}),
        _read(Resource={"Fn::Sub": "${Site.Arn}/*"}),
        "wider resource ${GetAtt Site.Arn}/*",
    ),
    "a reference to anything": (_read(Resource={"Ref": "Site"}), _read(Resource="*"), "wider resource *"),
    "OIDC trust widened": (
        {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::111111111111:oidc-provider/token.example"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {"token.example:sub": "repo:org/infra:ref:refs/heads/main"}},
        },
        {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::111111111111:oidc-provider/token.example"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {"token.example:sub": "repo:org/*"}},
        },
        "condition loosened: StringLike token.example:sub",
    ),
}


def _clean(statement: Doc) -> Doc:
    return {k: v for k, v in statement.items() if v is not None}


@pytest.mark.parametrize("case", sorted(STATEMENT_PAIRS))
def test_a_wider_statement_widens_and_the_narrower_one_does_not(case: str) -> None:
    narrow, wide, said = (_clean(s) if isinstance(s, dict) else s for s in STATEMENT_PAIRS[case])
    found = iam_widenings(_policy([narrow]), _policy([wide]))
    assert len(found) == 1 and found[0].startswith(said), found
    assert iam_widenings(_policy([wide]), _policy([narrow])) == []


NEUTRAL_PAIRS = {
    "StringEquals -> StringLike, no wildcard": (
        _read(Condition={"StringEquals": {"aws:SourceArn": SOURCE}}),
        _read(Condition={"StringLike": {"aws:SourceArn": SOURCE}}),
    ),
    # IAM User Guide, condition operators: ArnEquals and ArnLike match alike, wildcards included.
    "ArnEquals -> ArnLike, same values": (
        _read(Condition={"ArnEquals": {"aws:SourceArn": SOURCE}}),
        _read(Condition={"ArnLike": {"aws:SourceArn": SOURCE}}),
    ),
    "condition key case": (
        _read(Condition={"StringEquals": {"aws:sourceaccount": ACCOUNT}}),
        _read(Condition={"StringEquals": {"AWS:SourceAccount": ACCOUNT}}),
    ),
    "account id and its root ARN": (_read(), _read(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})),
    "Sub and Join of the same ARN": (
        _read(Resource={"Fn::Sub": "${Site.Arn}/*"}),
        _read(Resource={"Fn::Join": ["", [{"Fn::GetAtt": ["Site", "Arn"]}, "/*"]]}),
    ),
    "Principal * and AWS *": (_read(Principal="*"), _read(Principal={"AWS": "*"})),
    "action case": (_read(), _read(Action="S3:getobject")),
}


@pytest.mark.parametrize("case", sorted(NEUTRAL_PAIRS))
def test_an_edit_that_allows_the_same_widens_neither_way(case: str) -> None:
    a, b = NEUTRAL_PAIRS[case]
    assert iam_widenings(_policy([a]), _policy([b])) == []
    assert iam_widenings(_policy([b]), _policy([a])) == []


def test_a_reference_to_something_else_is_new_either_way() -> None:
    site, data = _read(Resource={"Fn::Sub": "${Site.Arn}/*"}), _read(Resource={"Fn::Sub": "${Data.Arn}/*"})
    assert iam_widenings(_policy([site]), _policy([data])) == ["new resource ${GetAtt Data.Arn}/*"]
    assert iam_widenings(_policy([data]), _policy([site])) == ["new resource ${GetAtt Site.Arn}/*"]
    # a wildcard beside a reference does not reach into what the reference resolves to
    assert iam_widenings(
        _policy([_read(Resource="arn:aws:s3:::*")]), _policy([_read(Resource={"Ref": "Site"})])
    )


def test_a_wildcard_action_is_covered_by_its_actions_listed_one_by_one() -> None:
    gets = [a for a in service_actions("s3") or () if a.startswith("s3:Get")]
    assert len(gets) > 20  # the table holds the service's actions
    listed, wildcard = _read(Action=gets), _read(Action="s3:Get*")
    assert iam_widenings(_policy([listed]), _policy([wildcard])) == []
    assert iam_widenings(_policy([wildcard]), _policy([listed])) == []
    found = iam_widenings(_policy([_read(Action=gets[1:])]), _policy([wildcard]))
    assert found == [f"new action s3:Get* (now allows {gets[0]})"]


def test_statements_merged_or_split_are_judged_as_the_requests_they_allow() -> None:
    split = [_read(), _read(Action="s3:PutObject")]
    merged = [_read(Action=["s3:GetObject", "s3:PutObject"])]
    assert iam_widenings(_policy(split), _policy(merged)) == []
    assert iam_widenings(_policy(merged), _policy(split)) == []


DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": ["s3:DeleteObject", "s3:PutObject"],
    "Resource": BUCKET_ARN,
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


@pytest.mark.parametrize(
    ("after", "said"),
    [
        (None, "deny removed"),
        (
            {**DENY, "Action": "s3:DeleteObject"},
            "deny narrowed: no longer denies s3:PutObject on arn:aws:s3:::site/*",
        ),
        (
            {**DENY, "Condition": {"Bool": {"aws:SecureTransport": "false", "aws:ViaAWSService": "false"}}},
            "deny narrowed: no longer denies s3:DeleteObject",
        ),
    ],
)
def test_a_deny_removed_or_narrowed_widens_and_one_widened_does_not(after: Doc | None, said: str) -> None:
    old, new = _policy([_read(), DENY]), _policy([_read(), *([after] if after else [])])
    found = iam_widenings(old, new)
    assert len(found) == 1 and found[0].startswith(said), found
    assert iam_widenings(new, old) == []


@pytest.mark.parametrize(
    ("action", "said"),
    [("s3:PutObject", "deny narrowed: no longer denies all of s3:* on arn:aws:s3:::site/* to *"),
     ("sns:Publish", "deny removed")],  # another service's action: nothing of the old deny is left
)
def test_a_wildcard_deny_narrowed_to_one_of_its_actions_is_not_removed(action: str, said: str) -> None:
    old = _policy([_read(), {**DENY, "Action": "s3:*"}])
    new = _policy([_read(), {**DENY, "Action": action}])
    assert iam_widenings(old, new) == [said]


@pytest.mark.parametrize(
    ("type_", "key"),
    [
        ("AWS::ECR::Repository", "RepositoryPolicyText"),
        ("AWS::SecretsManager::ResourcePolicy", "ResourcePolicy"),
        ("AWS::SNS::TopicPolicy", "PolicyDocument"),
        ("AWS::SQS::QueuePolicy", "PolicyDocument"),
    ],
)
@pytest.mark.parametrize("text", [False, True])
def test_resource_policies_are_found_whatever_the_property_is_called(
    type_: str, key: str, text: bool
) -> None:
    old, new = _policy([_read()], type_, key, text), _policy([_read(Principal="*")], type_, key, text)
    assert iam_widenings(old, new) == ["new principal *"]


def _role(**props: Any) -> Template:
    return _template(
        {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "sts:AssumeRole",
                                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                            }
                        ]
                    },
                    **props,
                },
            }
        }
    )


ADMIN = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"}
BOUNDARY = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/boundary"}


@pytest.mark.parametrize(
    ("before", "after", "said"),
    [
        ({}, {"ManagedPolicyArns": [ADMIN]}, "AWS managed policy AdministratorAccess attached"),
        ({}, {"ManagedPolicyArns": [{"Ref": "Mine"}]}, "managed policy ${Ref Mine} attached"),
        ({"PermissionsBoundary": BOUNDARY}, {}, "permissions boundary removed"),
        (
            {"PermissionsBoundary": BOUNDARY},
            {"PermissionsBoundary": "arn:aws:iam::aws:policy/PowerUserAccess"},
            "permissions boundary changed (was arn:${Ref AWS::Partition}:iam::"
            "${Ref AWS::AccountId}:policy/boundary)",
        ),
    ],
)
def test_managed_policies_attached_and_boundaries_lost_widen(before: Doc, after: Doc, said: str) -> None:
    assert iam_widenings(_role(**before), _role(**after)) == [said]
    back = iam_widenings(_role(**after), _role(**before))  # a boundary changed back is a change too
    assert (
        back == [] if "changed" not in said else [w[:31] for w in back] == ["permissions boundary changed (w"]
    )


def _permission(**props: Any) -> Template:
    return _template(
        {
            "Invoke": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Ref": "Rotation"},
                    "Principal": "secretsmanager.amazonaws.com",
                    **props,
                },
            }
        }
    )


@pytest.mark.parametrize(
    ("narrow", "wide", "said"),
    [
        ({"SourceArn": {"Ref": "Secret"}}, {}, "condition removed: ArnLike AWS:SourceArn ${Ref Secret}"),
        ({"SourceAccount": ACCOUNT}, {"SourceAccount": [ACCOUNT, OTHER]}, "condition loosened"),
        ({}, {"Principal": "*"}, "new principal *"),
        ({}, {"Action": "lambda:*"}, "new action lambda:* (now allows"),
    ],
)
def test_lambda_permissions_are_the_statements_of_the_function_policy(
    narrow: Doc, wide: Doc, said: str
) -> None:
    found = iam_widenings(_permission(**narrow), _permission(**wide))
    assert len(found) == 1 and found[0].startswith(said), found
    assert iam_widenings(_permission(**wide), _permission(**narrow)) == []


def test_a_lambda_permission_renamed_is_the_same_grant() -> None:
    old = _permission(SourceAccount=ACCOUNT)
    new = Template({"Resources": {"Renamed": old.doc["Resources"]["Invoke"]}})
    assert iam_widenings(old, new) == []


# --- security groups -----------------------------------------------------------------------------


def _group(ingress: list[Doc] | None = None, egress: list[Doc] | None = None) -> Template:
    props: Doc = {"GroupDescription": "g"}
    props.update({k: v for k, v in (("SecurityGroupIngress", ingress), ("SecurityGroupEgress", egress)) if v})
    return _template({"Group": {"Type": "AWS::EC2::SecurityGroup", "Properties": props}})


def _rule(cidr: str, low: int = 443, high: int = 443, protocol: str = "tcp") -> Doc:
    return {"IpProtocol": protocol, "FromPort": low, "ToPort": high, "CidrIp": cidr}


NOTHING = {"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "255.255.255.255/32"}


def rule_widenings(old: Template, new: Template) -> list[str]:
    return [c.widening for c in rule_changes(old, new) if c.widening]


@pytest.mark.parametrize(
    ("narrow", "wide", "said"),
    [
        (_group(ingress=[_rule("10.0.1.0/24")]), _group(ingress=[_rule("10.0.0.0/16")]), "new peer"),
        (
            _group(ingress=[_rule("10.0.0.0/16")]),
            _group(ingress=[_rule("10.0.0.0/16", 443, 444)]),
            "more ports",
        ),
        (
            _group(ingress=[_rule("10.0.0.0/16")]),
            _group(ingress=[_rule("10.0.0.0/16", protocol="-1")]),
            "more ports",
        ),
        (_group(egress=[_rule("10.0.0.0/16")]), _group(egress=[_rule("0.0.0.0/0")]), "open to the internet"),
        (
            _group(egress=[NOTHING]),
            _group(),
            "AWS's default allow-all egress (the group declares no egress rule)",
        ),
        (
            _group(egress=[_rule("10.0.0.0/16")]),
            _group(),
            "AWS's default allow-all egress (the group declares no egress rule)",
        ),
    ],
)
def test_a_rule_outside_the_old_rules_widens_and_one_inside_does_not(
    narrow: Template, wide: Template, said: str
) -> None:
    assert rule_widenings(narrow, wide) == [said]
    assert rule_widenings(wide, narrow) == []


def test_an_ipv6_range_is_not_inside_an_ipv4_one() -> None:
    v4 = _group(ingress=[_rule("0.0.0.0/0")])
    v6 = _group(ingress=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv6": "::/0"}])
    assert rule_widenings(v4, v6) == ["open to the internet"]


PORT_22 = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}


@pytest.mark.parametrize(
    "peer",
    [
        {"SourceSecurityGroupId": "sg-0123456789abcdef0"},  # a group ID written out
        {"SourceSecurityGroupId": {"Fn::ImportValue": "bastion-GroupId"}},  # another stack's group
        {"CidrIp": {"Fn::GetAtt": ["VPC", "CidrBlock"]}},  # a CIDR known at deploy time only
    ],
)
def test_a_rule_whose_peer_is_not_a_literal_cidr_or_a_group_of_the_template_is_judged(peer: Doc) -> None:
    before = _group(ingress=[_rule("10.0.0.0/16")])
    after = _group(ingress=[_rule("10.0.0.0/16"), {**PORT_22, **peer}])
    assert rule_widenings(before, after) == ["new peer"]
    assert rule_widenings(after, before) == []


def test_a_standalone_rule_on_another_stacks_group_is_judged() -> None:
    shared = {"GroupId": {"Fn::ImportValue": "shared-GroupId"}, **PORT_22, "CidrIp": "0.0.0.0/0"}
    rule = {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": shared}
    assert rule_widenings(_template({}), _template({"Rule": rule})) == ["open to the internet"]


# --- the property: a strict subset widens in one direction only ---------------------------------

ACTION_POOL = ("s3:GetObject", "s3:PutObject", "s3:List*", "s3:Delete*")  # no two overlap
NARROWER_ACTION = {"s3:List*": "s3:ListBucket", "s3:Delete*": "s3:DeleteObject"}
PATH_POOL = ("logs/*", "data/a.txt", "img/?.png")  # no two overlap
NARROWER_PATH = {"logs/*": "logs/2024/*", "img/?.png": "img/a.png"}
PRINCIPAL_POOL = (ACCOUNT, OTHER, "333333333333")


def _subset(draw: st.DrawFn, pool: tuple[str, ...]) -> list[str]:
    return sorted(draw(st.sets(st.sampled_from(pool), min_size=1, max_size=len(pool))))


@st.composite
def _statement(draw: st.DrawFn, index: int) -> Doc:
    statement: Doc = {
        "Effect": "Allow",
        "Action": _subset(draw, ACTION_POOL),
        "Resource": [f"arn:aws:s3:::b{index}/{p}" for p in _subset(draw, PATH_POOL)],
    }
    principal = draw(st.sampled_from(["none", "anyone", "accounts"]))
    if principal != "none":
        statement["Principal"] = "*" if principal == "anyone" else {"AWS": _subset(draw, PRINCIPAL_POOL)}
    condition = draw(st.sampled_from(["none", "equals", "like", "if-exists"]))
    if condition != "none":
        op, values = {
            "equals": ("StringEquals", _subset(draw, ("vpc-1", "vpc-2", "vpc-3"))),
            "like": ("StringLike", ["vpc-*"]),
            "if-exists": ("StringEqualsIfExists", ["vpc-1"]),
        }[condition]
        statement["Condition"] = {op: {"aws:SourceVpc": values}}
    return statement


def _narrowings(s: Doc) -> list[str]:
    """The ways to make statement ``s`` allow strictly less."""
    ways = ["add condition key", "add deny"]
    ways += ["drop action"] if len(s["Action"]) > 1 else []
    ways += ["narrow action"] if set(s["Action"]) & set(NARROWER_ACTION) else []
    ways += ["drop resource"] if len(s["Resource"]) > 1 else []
    ways += ["narrow resource"] if any(r.split("/", 1)[1] in NARROWER_PATH for r in s["Resource"]) else []
    principal = s.get("Principal")
    ways += ["anyone to account"] if principal == "*" else []
    ways += ["drop principal"] if isinstance(principal, dict) and len(principal["AWS"]) > 1 else []
    condition = s.get("Condition", {})
    ways += ["like to equals"] if "StringLike" in condition else []
    ways += ["drop if-exists"] if "StringEqualsIfExists" in condition else []
    ways += ["drop value"] if len(condition.get("StringEquals", {}).get("aws:SourceVpc", [])) > 1 else []
    return ways


def _narrow_path(resource: str) -> str:
    head, path = resource.split("/", 1)
    return f"{head}/{NARROWER_PATH.get(path, path)}"


def _narrowed(s: Doc, way: str) -> list[Doc]:
    """Statement ``s`` made to allow strictly less, in one way (a list: "add deny" adds one)."""
    s = copy.deepcopy(s)
    if way == "add deny":
        return [s, {**s, "Effect": "Deny", "Action": s["Action"][0], "Resource": s["Resource"][0]}]
    if way in ("drop action", "drop resource"):
        key = "Action" if way == "drop action" else "Resource"
        s[key] = s[key][1:]
    elif way == "narrow action":
        s["Action"] = [NARROWER_ACTION.get(a, a) for a in s["Action"]]
    elif way == "narrow resource":
        s["Resource"] = [_narrow_path(r) for r in s["Resource"]]
    elif way == "anyone to account":
        s["Principal"] = {"AWS": ACCOUNT}
    elif way == "drop principal":
        s["Principal"]["AWS"] = s["Principal"]["AWS"][1:]
    elif way == "add condition key":
        s.setdefault("Condition", {}).setdefault("StringEquals", {})["aws:SourceAccount"] = ACCOUNT
    else:
        s["Condition"] = _narrowed_condition(s["Condition"], way)
    return [s]


def _narrowed_condition(condition: Doc, way: str) -> Doc:
    if way == "like to equals":
        return {"StringEquals": {"aws:SourceVpc": "vpc-7"}}
    if way == "drop if-exists":
        return {"StringEquals": condition["StringEqualsIfExists"]}
    values = condition["StringEquals"]["aws:SourceVpc"]
    return {"StringEquals": {"aws:SourceVpc": values[1:]}}


@st.composite
def strict_pairs(draw: st.DrawFn) -> tuple[list[Doc], list[Doc]]:
    """(subset, superset): a document and the same with one statement allowing strictly less."""
    wide = [draw(_statement(i)) for i in range(draw(st.integers(1, 3)))]
    index = draw(st.integers(0, len(wide) - 1))
    way = draw(st.sampled_from(_narrowings(wide[index])))
    narrow = [*wide[:index], *_narrowed(wide[index], way), *wide[index + 1 :]]
    return narrow, wide


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(strict_pairs())
def test_a_strict_subset_widens_in_exactly_one_direction(pair: tuple[list[Doc], list[Doc]]) -> None:
    narrow, wide = (_policy(p) for p in pair)
    assert iam_widenings(narrow, wide), "subset -> superset must widen"
    assert iam_widenings(wide, narrow) == [], "superset -> subset must not widen"
    assert iam_widenings(wide, _policy(copy.deepcopy(pair[1]))) == []


@settings(max_examples=40, deadline=None)
@given(strict_pairs())
def test_a_strict_subset_widens_in_exactly_one_direction_quick(pair: tuple[list[Doc], list[Doc]]) -> None:
    narrow, wide = (_policy(p) for p in pair)
    assert iam_widenings(narrow, wide) and iam_widenings(wide, narrow) == []
