"""The operational commands (plan, --execute, outputs, status, destroy, the account guard) run
through ``render.py``'s own entry point against a local moto server: real boto3 calls, and for
``plan`` the real SAM CLI (`sam deploy --no-execute-changeset`, packaging included).

moto does not run CloudFormation transforms, so the change sets that are executed are made from
copies the SAM transform has already run on (tests/moto_deploy.py, as in the deploy rehearsal);
``plan`` on the real rendered/dev/ is proved too, up to the change set. moto's change sets list
only the action, the logical ID and the type of each change (no Replacement verdict, no
property details): the report's handling of those fields is proved against the documented
response shapes in tests/test_ops_stubbed.py.

The server runs with moto's request recorder on, so a test can read every call it received.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import yaml

from tests.helpers import VARS, config, copy_vars
from tests.iam_policy import allows, recorded_requests
from tracker_infra.cli import main
from tracker_infra.errors import EXIT_USER
from tracker_infra.ops import aws as aws_module
from tracker_infra.ops.plan import REPLAN_WHY
from tracker_infra.rehearsal.moto_copy import (
    create_artifact_buckets,
    deploy_bootstrap,
    deployable_copies,
    request_certificates,
    sam_env,
    undo_what_moto_cannot_delete,
    without_nat_gateways,
)
from tracker_infra.rehearsal.server import MotoServer
from tracker_infra.rendering import ROOT

pytestmark = pytest.mark.rehearsal

ACCOUNT = config("dev").account  # the moto server answers as this account
OTHER_ACCOUNT = "999999999999"


@dataclass
class Moto:
    server: MotoServer
    workdir: Path
    recording: Path
    vars: Path  # vars/ with staging moved into the moto account
    swaps: dict[str, str]  # certificate ARN in vars -> moto's
    artifact_bucket: str

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(service, region_name=region)

    def calls(self) -> list[tuple[str, str]]:
        """(service, action) of every request the server received since the last reset."""
        found = []
        for line in self.recording.read_text().splitlines():
            entry = json.loads(line)
            headers = {k.lower(): v for k, v in entry["headers"].items()}
            service = headers.get("authorization", "").split("/")[3] if "authorization" in headers else "?"
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode(errors="replace")
            action = headers.get("x-amz-target") or parse_qs(body).get("Action", [entry["method"]])[0]
            found.append((service, action))
        return found

    def change_set_template(self, stack_name: str) -> str:
        """The template of the last CreateChangeSet the server received for this stack (its
        TemplateBody, or the object its TemplateURL names: moto's GetTemplate of a change set is
        empty)."""
        for line in reversed(self.recording.read_text().splitlines()):
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode(errors="replace")
            params = {k: v[0] for k, v in parse_qs(body).items()}
            if params.get("Action") == "CreateChangeSet" and params.get("StackName") == stack_name:
                if "TemplateBody" in params:
                    return params["TemplateBody"]
                key = params["TemplateURL"].split(f"/{self.artifact_bucket}/", 1)[1]  # path-style
                found = self.client("s3").get_object(Bucket=self.artifact_bucket, Key=key)
                return str(found["Body"].read().decode())
        raise AssertionError(f"no CreateChangeSet for {stack_name} was recorded")

    def reset_calls(self) -> None:
        self.recording.write_text("")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    workdir = tmp_path_factory.mktemp("ops")
    recording = workdir / "recording.jsonl"
    server = MotoServer.start(workdir / "moto.log", env={
        "MOTO_ACCOUNT_ID": ACCOUNT, "MOTO_ENABLE_RECORDING": "true",
        "MOTO_RECORDER_FILEPATH": str(recording)})
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key in os.environ:
                if key.startswith(("AWS_", "SAM_")):
                    mp.delenv(key)
            for key, value in sam_env(server, workdir / "home", config("dev").region).items():
                mp.setenv(key, value)
            mp.setattr(aws_module, "POLL_SECONDS", 0.05)
            # dev's account as its bootstrap stack makes it (deploy roles, artifact bucket); the
            # staging copy's bucket, which samconfig.toml names by staging's account in vars
            bucket = config("dev").artifact_bucket
            deploy_bootstrap(boto3.client("cloudformation", region_name="us-east-1"), ACCOUNT)
            create_artifact_buckets(boto3.client("s3", region_name="us-east-1"),
                                    {config("staging").artifact_bucket})
            staging = config("staging")
            vars_dir = copy_vars(workdir, {"staging.yaml": {
                "account": ACCOUNT,
                "api": {"certificate_arn": staging.api.certificate_arn.replace(staging.account, ACCOUNT)},
                "frontend": {"certificate_arn": staging.frontend.certificate_arn.replace(
                    staging.account, ACCOUNT)}}})
            def acm_in(region: str) -> Any:
                return boto3.client("acm", region_name=region)

            swaps = {}
            for cfg in (config("dev"), aws_module.load(vars_dir, "staging")):
                swaps.update(request_certificates(acm_in, cfg))
            yield Moto(server, workdir, recording, vars_dir, swaps, bucket)
    finally:
        server.stop()


def moto_copies(moto: Moto, env: str, vars_dir: Path = VARS) -> Path:
    """rendered/<env>/ as copies moto can deploy (transforms run, certificates swapped)."""
    rendered = moto.workdir / f"rendered-{vars_dir.parent.name}-{env}"
    if not rendered.exists():
        # render.py's entry point in this process (the process boundary is not what these tests
        # are about; the plan test runs the SAM CLI on the real rendered/dev/).
        code, out, err = cli("--env", env, "--vars", str(vars_dir), "--out", str(rendered))
        assert code == 0, (out, err)
        deployable_copies(rendered / env, moto.client("s3"), moto.artifact_bucket, "us-east-1", moto.swaps)
    return rendered


def stack(name: str) -> dict[str, Any] | None:
    client = boto3.client("cloudformation", region_name="us-east-1")
    found = [s for s in client.describe_stacks()["Stacks"]
             if s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"]
    return found[0] if found else None


def parameters(described: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}


# --- the guard -------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["plan", "status", "outputs", "drift", "destroy"])
def test_guard_refuses_another_account_before_any_other_call(moto: Moto, command: str) -> None:
    vars_dir = copy_vars(moto.workdir / f"guard-{command}", {"dev.yaml": {"account": OTHER_ACCOUNT}})
    for name in ("dev.yaml",):  # the certificates must belong to the account the vars name
        text = (vars_dir / name).read_text().replace(f":{ACCOUNT}:", f":{OTHER_ACCOUNT}:")
        (vars_dir / name).write_text(text)
    moto.reset_calls()
    extra = ["--yes"] if command == "destroy" else []
    code, out, err = cli(command, "--env", "dev", "--vars", str(vars_dir), *extra)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"account {ACCOUNT}" in err and OTHER_ACCOUNT in err and "dev.yaml: account:" in err
    assert moto.calls() == [("sts", "GetCallerIdentity")]


def regions_called(moto: Moto) -> set[str]:
    """The regions of the requests the server received (each signature's credential scope)."""
    found = set()
    for line in moto.recording.read_text().splitlines():
        headers = {k.lower(): v for k, v in json.loads(line)["headers"].items()}
        if "authorization" in headers:
            found.add(headers["authorization"].split("/")[2])
    return found


@pytest.mark.parametrize("variable", ["AWS_DEFAULT_REGION", "AWS_REGION"])
def test_a_session_configured_for_another_region_still_calls_the_environment_s(
        moto: Moto, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "eu-west-1")
    moto.reset_calls()
    code, out, err = cli("status", "--env", "dev")
    assert code == 0 and err == "", (out, err)
    assert regions_called(moto) == {config("dev").region}


# --- plan: change sets made by the SAM CLI ---------------------------------------------------------

def assert_the_plan_role_uploaded_only_for_review(moto: Moto, role: RoleCalls) -> None:
    """The plan role uploaded (PutObject, nothing refused) and both stacks' artifacts are under
    plan/<stack>/ in the artifact bucket."""
    # (the empty stacks it made are deleted with DeleteStack, which only the deploy role may call)
    assert [d for d in role.denied if not d.startswith("cloudformation:DeleteStack ")] == []
    assert "s3:PutObject" in role.actions
    keys = [o["Key"] for o in moto.client("s3").list_objects_v2(Bucket=moto.artifact_bucket)["Contents"]]
    cfg = config("dev")
    assert {k.split("/")[1] for k in keys if k.startswith("plan/")} == {cfg.stack_name, cfg.edge_stack_name}


@pytest.mark.slow
def test_plan_on_the_rendered_templates_packages_and_creates_both_change_sets(moto: Moto) -> None:
    """The real rendered/dev/ (transforms and all), as dev's plan role: SAM packages the functions'
    code under plan/<stack> (all the role may write), creates the change sets; plan describes them
    and prints the report. Never executed (moto cannot run the transforms); the change sets are
    deleted afterwards."""
    cfg = config("dev")
    with as_deploy_role(moto, cfg, "plan") as role:
        moto.reset_calls()
        code, out, err = cli("plan", "--env", "dev")
        calls = moto.calls()
    assert code == 0, err
    assert_the_plan_role_uploaded_only_for_review(moto, role)
    for name in (cfg.stack_name, cfg.edge_stack_name):
        assert f"{name} (us-east-1, new): " in out
    assert "SiteBucket AWS::S3::Bucket: Add" in out and "Database" in out
    # stateful resources are listed before the others
    assert out.index("stateful:") < out.index("other:")
    assert calls[0] == ("sts", "GetCallerIdentity")
    assert ("cloudformation", "DescribeChangeSet") in calls
    assert ("cloudformation", "ExecuteChangeSet") not in calls
    assert any(service == "s3" and action == "PUT" for service, action in calls)  # the packaged code
    # made two change sets; not saved, not executed: nothing is left behind, neither the change
    # sets nor the stacks CloudFormation made to hold them
    counts = {a: calls.count(("cloudformation", a))
              for a in ("CreateChangeSet", "DeleteChangeSet", "DeleteStack")}
    assert counts == {"CreateChangeSet": 2, "DeleteChangeSet": 2, "DeleteStack": 2}
    assert "the change sets were deleted (nothing saved); keep them with --save FILE" in out
    for name in (cfg.stack_name, cfg.edge_stack_name):
        assert stack(name) is None


@pytest.mark.slow
def test_a_saved_plan_of_new_stacks_is_explained_by_status_and_removed_by_discard(moto: Moto) -> None:
    plan_file = moto.workdir / "discard-plan.json"
    code, out, err = cli("plan", "--env", "dev", "--save", str(plan_file))
    assert code == 0, err
    assert f"discard it (its change sets and any empty stack they wait in) with: python render.py plan " \
           f"--env dev --discard {plan_file}" in out
    cfg = config("dev")
    assert stack(cfg.stack_name)["StackStatus"] == "REVIEW_IN_PROGRESS"
    # the reviewed edge template names the key its code has under the stack's own prefix, where
    # the plan role cannot write; what it uploaded went under plan/ with the same key
    template = moto.change_set_template(cfg.edge_stack_name)
    uris = re.findall(rf"s3://{moto.artifact_bucket}/([\w./-]+)", template)
    assert uris and all(u.startswith(f"{cfg.edge_stack_name}/") for u in uris), uris
    for uri in uris:
        moto.client("s3").head_object(Bucket=moto.artifact_bucket, Key=f"plan/{uri}")
    code, out, _ = cli("status", "--env", "dev")
    assert code == 0 and "nothing is deployed: the stack only holds a saved plan's change sets" in out
    assert "render.py plan --env dev --discard FILE" in out
    code, out, err = cli("plan", "--env", "dev", "--discard", str(plan_file))
    assert code == 0, err
    for name in (cfg.stack_name, cfg.edge_stack_name):
        assert f"{name}: deleted the empty stack the plan made (REVIEW_IN_PROGRESS)" in out
        assert stack(name) is None


@pytest.fixture(scope="module")
def deployed(moto: Moto) -> dict[str, Any]:
    """dev planned (--save) as dev's plan role, executed from the saved plan (planned again, and
    its own change sets run) as its deploy role (as the pipeline's two jobs do), then planned again."""
    rendered = moto_copies(moto, "dev")
    without_nat_gateways(rendered / "dev" / "app.yaml")  # so that the last test can destroy dev
    plan_file = moto.workdir / "dev-plan.json"
    with as_deploy_role(moto, config("dev"), "plan") as plan_role:
        planned = cli("plan", "--env", "dev", "--rendered", str(rendered), "--save", str(plan_file))
        assert planned[0] == 0, planned
        saved = json.loads(plan_file.read_text())
    approved = {e["arn"]: stack(e["stack"])["StackId"] for e in saved["change_sets"]}
    with as_deploy_role(moto, config("dev"), known=approved) as role:
        start = len(moto.recording.read_text().splitlines())
        executed = cli("plan", "--env", "dev", "--rendered", str(rendered), "--execute", str(plan_file))
        calls = moto.calls()[start:]
    again = cli("plan", "--env", "dev", "--rendered", str(rendered))
    return {"planned": planned, "saved": saved, "executed": executed, "calls": calls, "again": again,
            "role": role, "plan_role": plan_role, "rendered": rendered}


@pytest.mark.slow
def test_plan_and_execute_ask_nothing_the_deploy_role_is_refused(deployed: dict[str, Any]) -> None:
    """The plan as the plan role, the execution as the deploy role: nothing either asks is refused."""
    plan_role, role = deployed["plan_role"], deployed["role"]
    assert {"cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet"} <= plan_role.actions
    assert {"cloudformation:ExecuteChangeSet", "cloudformation:DescribeStackEvents"} <= role.actions
    assert plan_role.denied == [] and role.denied == [], role.denied


@pytest.mark.slow
def test_execute_plans_again_and_runs_its_own_change_sets(deployed: dict[str, Any]) -> None:
    """The saved change sets (the unapproved job's, whose artifacts it could overwrite) are only
    compared with: the ones run are the re-plan's, and the saved ones are deleted."""
    code, out, err = deployed["executed"]
    assert code == 0, (out, err)
    arns = [c["arn"] for c in deployed["saved"]["change_sets"]]
    assert all(arns) and len(arns) == 2
    assert f"planning again from {deployed['rendered']} to compare with the approved plan: " \
           f"{REPLAN_WHY}" in out
    assert deployed["calls"].count(("cloudformation", "CreateChangeSet")) == 2
    assert deployed["calls"].count(("cloudformation", "ExecuteChangeSet")) == 2
    executed = re.findall(r"^tracker-dev(?:-edge)?: executing (\S+) ", out, re.M)
    assert len(executed) == 2 and not set(executed) & set(arns), out
    assert available_change_sets("tracker-dev") == available_change_sets("tracker-dev-edge") == []
    # the stacks' events streamed while waiting (moto reports the stacks' own events only)
    for stack_name in ("tracker-dev", "tracker-dev-edge"):
        assert re.search(rf"^  \+\d\d:\d\d {stack_name} +CREATE_IN_PROGRESS +AWS::CloudFormation::Stack  "
                         rf"User Initiated\n  \+\d\d:\d\d {stack_name} +CREATE_COMPLETE ", out, re.M), out
    cfg = config("dev")
    assert out.index(cfg.stack_name) < out.index(cfg.edge_stack_name)  # regional first
    for name in (cfg.stack_name, cfg.edge_stack_name):
        assert stack(name)["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.slow
def test_a_saved_plan_records_when_it_was_made_and_says_how_to_run_it(deployed: dict[str, Any]) -> None:
    code, out, _ = deployed["planned"]
    assert code == 0
    saved = deployed["saved"]
    made = datetime.datetime.fromisoformat(saved["created"])
    age = datetime.datetime.now(datetime.UTC) - made
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=10)
    assert "run it with: python render.py plan --env dev --execute " in out


@pytest.mark.slow
def test_a_saved_plan_whose_change_sets_cannot_run_is_refused_before_any_replan(
        moto: Moto, deployed: dict[str, Any]) -> None:
    """A saved change set run by hand meanwhile (EXECUTE_COMPLETE): refused, and nothing planned."""
    rendered = tagged_copy(moto, "run-by-hand", "by-hand")
    plan_file = saved(moto, rendered, "run-by-hand")
    approved = json.loads(plan_file.read_text())["change_sets"][0]["arn"]
    client = boto3.client("cloudformation", region_name="us-east-1")
    client.execute_change_set(ChangeSetName=approved)
    client.get_waiter("stack_update_complete").wait(StackName="tracker-dev", WaiterConfig={"Delay": 1})
    moto.reset_calls()
    code, out, err = cli("plan", "--env", "dev", "--rendered", str(rendered), "--execute", str(plan_file))
    assert code == 2 and "ExecutionStatus: is EXECUTE_COMPLETE" in err and "plan again" in err
    assert err.count("\n") == 1 and "planning again" not in out
    assert ("cloudformation", "CreateChangeSet") not in moto.calls()


@pytest.mark.slow
def test_execute_refuses_a_plan_already_run(moto: Moto, deployed: dict[str, Any]) -> None:
    """Its change sets were deleted when it ran (the re-plan's ran instead)."""
    plan_file = moto.workdir / "dev-plan.json"
    code, _, err = cli("plan", "--env", "dev", "--execute", str(plan_file))
    assert code == 2 and "ExecutionStatus: does not exist" in err and "plan again" in err
    assert err.count("\n") == 1


# --- a saved plan: planned again, run only when the changes are the same ----------------------------

def tagged_copy(moto: Moto, name: str, repository_tag: str, vpc_tag: str = "") -> Path:
    """dev's deployed copies (rendered/ as executed above) with a tag on the image repository
    (which moto updates in place), and, given vpc_tag, one on the VPC."""
    rendered = moto.workdir / f"rendered-{name}"
    shutil.copytree(moto_copies(moto, "dev"), rendered)
    app = rendered / "dev" / "app.yaml"
    template = json.loads(app.read_text())
    resources = template["Resources"]
    repository = next(r for r in resources.values() if r["Type"] == "AWS::ECR::Repository")
    repository["Properties"]["Tags"].append({"Key": "Replan", "Value": repository_tag})
    if vpc_tag:
        resources["VPC"]["Properties"]["Tags"].append({"Key": "Replan", "Value": vpc_tag})
    app.write_text(json.dumps(template))
    return rendered


def saved(moto: Moto, rendered: Path, name: str) -> Path:
    """A saved plan of ``rendered``."""
    plan_file = moto.workdir / f"{name}.json"
    code, out, err = cli("plan", "--env", "dev", "--rendered", str(rendered), "--save", str(plan_file))
    assert code == 0, (out, err)
    return plan_file


def available_change_sets(stack_name: str) -> list[str]:
    client = boto3.client("cloudformation", region_name="us-east-1")
    return [c["ChangeSetId"] for c in client.list_change_sets(StackName=stack_name)["Summaries"]
            if c["StackName"] == stack_name and c["ExecutionStatus"] == "AVAILABLE"]


def repository_tags() -> dict[str, str]:
    ecr = boto3.client("ecr", region_name="us-east-1")
    arn = ecr.describe_repositories()["repositories"][0]["repositoryArn"]
    return {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=arn)["tags"]}


@pytest.mark.slow
def test_a_saved_plan_whose_replan_makes_the_same_changes_runs_the_new_change_sets(
        moto: Moto, deployed: dict[str, Any]) -> None:
    """Planned as dev's plan role and run (planned again) as its deploy role, like the pipeline's jobs."""
    rendered = tagged_copy(moto, "replan-same", "one")
    with as_deploy_role(moto, config("dev"), "plan") as plan_role:
        plan_file = saved(moto, rendered, "replan-same")
    approved = json.loads(plan_file.read_text())["change_sets"][0]["arn"]
    assert approved and available_change_sets("tracker-dev") == [approved]
    made = {approved: stack("tracker-dev")["StackId"]}
    with as_deploy_role(moto, config("dev"), known=made) as role:
        start = len(moto.recording.read_text().splitlines())
        code, out, err = cli("plan", "--env", "dev", "--rendered", str(rendered), "--execute", str(plan_file))
        calls = moto.calls()[start:]
    assert code == 0, (out, err)
    assert REPLAN_WHY in out and "executing the new ones" in out
    assert calls.count(("cloudformation", "CreateChangeSet")) == 2  # planned again: both stacks
    assert calls.count(("cloudformation", "ExecuteChangeSet")) == 1  # the edge stack has no changes
    assert stack("tracker-dev")["StackStatus"] == "UPDATE_COMPLETE"
    assert repository_tags()["Replan"] == "one"
    assert available_change_sets("tracker-dev") == []  # the approved one deleted, the new one run
    assert role.denied == [] and plan_role.denied == []


@pytest.mark.slow
def test_a_saved_plan_whose_replan_differs_runs_nothing_and_names_the_difference(
        moto: Moto, deployed: dict[str, Any]) -> None:
    """Meanwhile the templates gained a tag on the VPC."""
    approved_copy = tagged_copy(moto, "replan-approved", "two")
    plan_file = saved(moto, approved_copy, "replan-approved")
    approved = json.loads(plan_file.read_text())["change_sets"][0]["arn"]
    changed = tagged_copy(moto, "replan-changed", "two", vpc_tag="meanwhile")
    start = len(moto.recording.read_text().splitlines())
    code, out, err = cli("plan", "--env", "dev", "--rendered", str(changed), "--execute", str(plan_file))
    calls = moto.calls()[start:]
    assert code == EXIT_USER, (out, err)
    assert f"planning again from {changed}" in out
    lines = err.splitlines()
    assert len(lines) == 2, err  # one difference, then what to do
    assert lines[0].startswith(f"error: {plan_file}: tracker-dev: VPC AWS::EC2::VPC: Modify ")
    assert "not in the approved plan" in lines[0]
    assert "the plan must be approved again" in lines[1] and "nothing was executed" in lines[1]
    assert ("cloudformation", "ExecuteChangeSet") not in calls
    assert calls.count(("cloudformation", "CreateChangeSet")) == 2
    assert calls.count(("cloudformation", "DeleteChangeSet")) == 1  # the new one (edge: no changes)
    assert available_change_sets("tracker-dev") == [approved]  # the approved one is left, as it was
    assert repository_tags()["Replan"] == "one"  # what the previous test ran, unchanged
    assert cli("plan", "--env", "dev", "--discard", str(plan_file))[0] == 0


@pytest.mark.slow
def test_plan_of_an_unchanged_environment_says_so(deployed: dict[str, Any]) -> None:
    code, out, err = deployed["again"]
    assert code == 0, err
    assert out.count("no changes") == 2, out


def test_plan_without_a_template_is_one_line(moto: Moto) -> None:
    code, _, err = cli("plan", "--env", "dev", "--rendered", str(moto.workdir / "nowhere"))
    assert code == 2 and err.count("\n") == 1 and "app.yaml: is missing" in err


# --- deletion protection: off for the first create, on from the second deploy --------------------

@pytest.mark.slow
def test_first_create_passes_deletion_protection_false_then_true(moto: Moto) -> None:
    rendered = moto_copies(moto, "staging", moto.vars)
    args = ("plan", "--env", "staging", "--vars", str(moto.vars), "--rendered", str(rendered))
    code, out, err = cli(*args, "--save", str(moto.workdir / "staging.json"))
    assert code == 0, err
    client = boto3.client("cloudformation", region_name="us-east-1")
    first = json.loads((moto.workdir / "staging.json").read_text())["change_sets"][0]["arn"]
    assert parameters(client.describe_change_set(ChangeSetName=first))["DeletionProtection"] == "false"
    code, out, err = cli(*args, "--execute", str(moto.workdir / "staging.json"))
    assert code == 0, (out, err)
    assert parameters(stack("tracker-staging"))["DeletionProtection"] == "false"
    code, out, err = cli(*args, "--save", str(moto.workdir / "staging2.json"))
    assert code == 0, err
    second = json.loads((moto.workdir / "staging2.json").read_text())["change_sets"][0]["arn"]
    assert parameters(client.describe_change_set(ChangeSetName=second))["DeletionProtection"] == "true"
    assert cli(*args, "--execute", str(moto.workdir / "staging2.json"))[0] == 0
    assert parameters(stack("tracker-staging"))["DeletionProtection"] == "true"


@pytest.mark.slow
def test_execute_refuses_a_plan_of_another_environment(moto: Moto, deployed: dict[str, Any]) -> None:
    code, _, err = cli("plan", "--env", "staging", "--vars", str(moto.vars), "--execute",
                       str(moto.workdir / "dev-plan.json"))
    assert code == 2 and "is a plan for dev" in err


# --- outputs and status read the real stacks ------------------------------------------------------

@pytest.fixture(scope="module")
def created(moto: Moto) -> Path:
    """A disposable environment "ops" (dev's vars under another name: stacks tracker-ops and
    tracker-ops-edge) created with CreateStack: moto fills in the Outputs of a stack made that
    way, not of one made through a change set. Returns its vars folder."""
    vars_dir = copy_vars(moto.workdir / "created")
    ops = yaml.safe_load((vars_dir / "dev.yaml").read_text())
    ops.update(environment="ops")
    ops["network"]["vpc_cidr"] = "10.7.0.0/16"
    ops["api"]["domain"] = "api.ops.example.com"
    ops["frontend"]["domain"] = "ops.example.com"
    ops["tags"]["Environment"] = "ops"
    (vars_dir / "ops.yaml").write_text(yaml.safe_dump(ops))
    rendered = moto_copies(moto, "ops", vars_dir)
    without_nat_gateways(rendered / "ops" / "app.yaml")
    client = boto3.client("cloudformation", region_name="us-east-1")
    for name, file in (("tracker-ops", "app.yaml"), ("tracker-ops-edge", "edge.yaml")):
        client.create_stack(StackName=name, TemplateBody=(rendered / "ops" / file).read_text(),
                            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    return vars_dir


@pytest.mark.slow
def test_outputs_json_holds_both_stacks(created: Path) -> None:
    code, out, err = cli("outputs", "--env", "ops", "--vars", str(created), "--json")
    assert code == 0, err
    found = json.loads(out)
    assert set(found) == {"tracker-ops", "tracker-ops-edge"}
    for name in found:
        expected = {o["OutputKey"]: o["OutputValue"] for o in stack(name)["Outputs"]}
        assert found[name] == expected
    # (moto leaves out outputs it cannot resolve, e.g. of the Secrets Manager secret it skips)
    assert {"ApiRepositoryUri", "ApiEndpoint", "EcsClusterName"} <= set(found["tracker-ops"])
    assert {"FrontendBucketName", "FrontendUrl"} <= set(found["tracker-ops-edge"])
    code, text, _ = cli("outputs", "--env", "ops", "--vars", str(created))
    assert code == 0 and found["tracker-ops-edge"]["FrontendBucketName"] in text


def test_outputs_of_stacks_not_deployed(moto: Moto) -> None:
    vars_dir = copy_vars(moto.workdir / "none", {"defaults.yaml": {"project": "none"}})
    code, out, _ = cli("outputs", "--env", "dev", "--vars", str(vars_dir), "--json")
    assert code == 0 and json.loads(out) == {"none-dev": None, "none-dev-edge": None}


@pytest.mark.slow
def test_status_shows_each_stack_and_the_image(created: Path) -> None:
    code, out, err = cli("status", "--env", "ops", "--vars", str(created))
    assert code == 0, err
    assert "tracker-ops (us-east-1): CREATE_COMPLETE, last change " in out
    assert "tracker-ops-edge (us-east-1): CREATE_COMPLETE" in out
    assert "image: none released yet" in out
    assert "drift: NOT_CHECKED" in out
    assert "alarms: none in ALARM" in out


# --- as the deploy role -----------------------------------------------------------------------------

def deploy_role(role_arn: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The bootstrap stack's deploy role (the moto fixture deployed it), assumed through STS:
    (the session's credentials, the documents of the role's policies as IAM holds them)."""
    iam = boto3.client("iam", region_name="us-east-1")
    documents = []
    for attached in iam.list_attached_role_policies(RoleName=role_arn.rsplit("/", 1)[1])["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        documents.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)[
            "PolicyVersion"]["Document"])
    found = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=role_arn, RoleSessionName="deploy", DurationSeconds=7200)["Credentials"]
    return ({"AWS_ACCESS_KEY_ID": found["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": found["SecretAccessKey"],
             "AWS_SESSION_TOKEN": found["SessionToken"]}, documents)


@dataclass
class RoleCalls:
    """What the commands run inside as_deploy_role asked: every IAM action, and those the role's
    policies refuse ("action on resource")."""
    actions: set[str]
    denied: list[str]


@contextlib.contextmanager
def as_deploy_role(moto: Moto, cfg: Any, kind: str = "deploy",
                   known: dict[str, str] | None = None) -> Iterator[RoleCalls]:
    """Run the block's commands as the environment's bootstrap role of this kind (plan or deploy),
    assumed through STS;
    on leaving, each call the server recorded with the role's credentials (the SAM CLI's too: it
    runs with the same environment) is judged by moto's policy evaluator with the ARN it acts on
    and its region (tests/iam_policy.py), against the policies as moto's IAM holds them."""
    credentials, documents = deploy_role(cfg.plan_role_arn if kind == "plan" else cfg.deploy_role_arn)
    assert documents  # the role holds the bootstrap's policies
    found = RoleCalls(set(), [])
    start = len(moto.recording.read_text().splitlines())
    with pytest.MonkeyPatch.context() as patch:
        for key, value in credentials.items():
            patch.setenv(key, value)
        yield found
    lines = moto.recording.read_text().splitlines()[start:]
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")  # the test's own calls

    def stack_of(change_set: str) -> str:
        """The stack of a change set (``known``: those made before the block and gone since). One
        deleted since, whose stack the recording does not name, is judged on the environment's
        stack of its region: both of its stacks are named by the same statements."""
        if change_set in (known or {}):
            return (known or {})[change_set]
        try:
            return str(cloudformation.describe_change_set(ChangeSetName=change_set)["StackId"])
        except cloudformation.exceptions.ClientError:
            region = change_set.split(":")[3]
            return f"arn:aws:cloudformation:{region}:{cfg.account}:stack/{cfg.stack_name}/deleted"

    requests = [r for r in recorded_requests(lines, cfg.account, stack_of)
                if r.access_key == credentials["AWS_ACCESS_KEY_ID"]]
    found.actions.update(r.action for r in requests)
    found.denied.extend(sorted({f"{r.action} on {r.resource}" for r in requests
                                if not allows(documents, r.action, r.resource,
                                              {"aws:RequestedRegion": r.region})}))


@pytest.mark.slow
def test_every_call_of_plan_status_outputs_and_drift_is_allowed_to_the_plan_role(
        moto: Moto, deployed: dict[str, Any]) -> None:
    """plan (with the SAM CLI's own calls), status, outputs and drift on dev, as dev's plan role."""
    rendered = moto_copies(moto, "dev")
    with as_deploy_role(moto, config("dev"), "plan") as role:
        ran = [cli("plan", "--env", "dev", "--rendered", str(rendered)), cli("status", "--env", "dev"),
               cli("outputs", "--env", "dev"), cli("drift", "--env", "dev")]
    assert [code for code, _, _ in ran[:3]] == [0, 0, 0], ran
    # (the SAM CLI finds its uploads of the earlier plan: HeadObject, s3:GetObject, and no PutObject)
    assert {"cloudformation:CreateChangeSet", "s3:GetObject", "cloudformation:DescribeStacks"} <= role.actions
    assert role.denied == []


# --- destroy ----------------------------------------------------------------------------------------

def test_destroy_refuses_a_protected_environment_before_any_call(moto: Moto) -> None:
    moto.reset_calls()
    code, out, err = cli("destroy", "--env", "staging", "--vars", str(moto.vars), "--yes")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "defaults.yaml: lifecycle: is 'protected'" in err
    assert moto.calls() == []  # refused before the STS guard: nothing was asked, nothing deleted


@pytest.mark.slow
def test_destroy_removes_a_disposable_environment_and_its_versioned_buckets(created: Path) -> None:
    outputs = json.loads(cli("outputs", "--env", "ops", "--vars", str(created), "--json")[1])
    bucket = outputs["tracker-ops-edge"]["FrontendBucketName"]
    s3 = boto3.client("s3", region_name="us-east-1")
    # The template versions the bucket; moto's CloudFormation does not apply VersioningConfiguration,
    # so the test turns it on as the stack would.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=bucket, Key="index.html", Body=body)
    s3.delete_object(Bucket=bucket, Key="index.html")  # a delete marker on top of two versions
    undo_what_moto_cannot_delete(boto3.client("ec2", region_name="us-east-1"),
                                 outputs["tracker-ops"]["VpcId"])
    code, out, err = cli("destroy", "--env", "ops", "--vars", str(created), "--yes")
    assert code == 0, out + err
    assert f"emptied {bucket} (3 versions and markers)" in out
    assert out.index("tracker-ops-edge: deleted") < out.index("tracker-ops: deleted")
    assert stack("tracker-ops") is None and stack("tracker-ops-edge") is None
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # again: nothing left to delete
    code, out, _ = cli("destroy", "--env", "ops", "--vars", str(created), "--yes")
    assert code == 0 and out.count("not deployed") == 2


def test_a_failed_sam_run_is_one_line_and_exit_5(moto: Moto, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    stub = tmp_path / "sam"
    stub.write_text("#!/bin/sh\necho 'Error: Failed to create changeset for the stack: tracker-dev' >&2\n"
                    "exit 1\n")
    stub.chmod(0o755)
    monkeypatch.setenv("SAM", str(stub))
    code, out, err = cli("plan", "--env", "dev")
    assert code == 7 and out == "", err
    assert err.count("\n") == 1 and err.endswith("Failed to create changeset for the stack: tracker-dev\n")


@pytest.mark.slow
def test_a_missing_artifact_bucket_names_the_bucket_and_the_bootstrap_step(
        moto: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """samconfig.toml naming a bucket nobody made (the bootstrap stack not deployed): the real
    SAM CLI fails packaging, and the line names the bucket and the step that makes it."""
    from tracker_infra.ops import plan

    missing = "tracker-artifacts-never-bootstrapped"
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(plan.SAMCONFIG.read_text().replace(f'"{moto.artifact_bucket}"', f'"{missing}"'))
    monkeypatch.setattr(plan, "SAMCONFIG", samconfig)
    code, out, err = cli("plan", "--env", "dev")
    assert code == 7 and err.count("\n") == 1 and "Traceback" not in err, (out, err)
    assert err.startswith(f"error: dev: the artifact bucket {missing} does not exist"), err
    assert '"The bootstrap stack"' in err and "vars/" not in err
    assert "## The bootstrap stack" in (ROOT / "docs" / "deploying.md").read_text()  # the step named exists


@pytest.mark.slow
def test_destroy_of_dev_asks_nothing_its_deploy_role_is_refused(moto: Moto, deployed: dict[str, Any]) -> None:
    """Last in the module: dev, made by the plan and execute above, destroyed as its role."""
    cfg = config("dev")
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    vpc = cloudformation.describe_stack_resource(StackName=cfg.stack_name, LogicalResourceId="VPC")[
        "StackResourceDetail"]["PhysicalResourceId"]
    undo_what_moto_cannot_delete(boto3.client("ec2", region_name="us-east-1"), vpc)
    with as_deploy_role(moto, cfg) as role:
        code, out, err = cli("destroy", "--env", "dev", "--yes")
    assert code == 0, out + err
    assert stack(cfg.stack_name) is None and stack(cfg.edge_stack_name) is None
    assert {"cloudformation:DeleteStack", "s3:ListBucketVersions"} <= role.actions
    assert role.denied == []
