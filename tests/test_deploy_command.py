"""`render.py deploy` (and `make deploy`, which runs it): render, check the output against the
commit, cfn-lint, then plan and execute, stopping at the first failure; and, before executing,
the question when the plan broadens security.

The commands run in-process on a committed copy of vars/ and rendered/ in a throwaway git
repository; cfn-lint is a logging stub (CFN_LINT) and the plan-and-execute step is recorded
(the step itself runs against moto in tests/test_ops_moto.py). The question is proved with the
plan's change sets given, CloudFormation's GetTemplate answered by botocore's Stubber (its request
checked: TemplateStage Original), and a fake terminal."""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from tests.helpers import config, copy_sources
from tracker_infra.cfn_yaml import load_template
from tracker_infra.cli import main
from tracker_infra.ops import broadening, plan
from tracker_infra.ops import deploy as deploy_command
from tracker_infra.ops.aws import Aws

STUB = """#!/bin/sh
echo "cfn-lint $*" >> "$STUB_LOG"
case "$*" in *"$STUB_FAIL_ON"*) echo "E3001 a planted problem"; exit 2 ;; esac
"""
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_sources(("vars", "rendered", "docs"), tmp_path_factory.mktemp("deploy") / "repo")
    for step in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*GIT, *step], cwd=root, check=True, capture_output=True)
    (root.parent / "cfn-lint").write_text(STUB)
    (root.parent / "cfn-lint").chmod(0o755)
    return root


@pytest.fixture
def deploy(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """deploy(*args, fail_on=...) -> (exit code, the steps run, stdout + stderr)."""
    log = repo.parent / "calls.log"
    steps: list[str] = []

    def planned(args: argparse.Namespace, cfg: Any) -> int:
        steps.append(f"plan and execute {cfg.environment} yes={args.yes}")
        return 0

    monkeypatch.setattr(deploy_command, "deploy_stacks", planned)
    monkeypatch.setenv("CFN_LINT", str(repo.parent / "cfn-lint"))
    monkeypatch.setenv("STUB_LOG", str(log))

    def run(*args: str, fail_on: str = "never") -> tuple[int, list[str], str]:
        monkeypatch.setenv("STUB_FAIL_ON", fail_on)
        log.unlink(missing_ok=True)
        steps.clear()
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(["deploy", *args, "--vars", str(repo / "vars"), "--rendered", str(repo / "rendered")])
        lint = log.read_text().splitlines() if log.exists() else []
        return code, [line.replace(str(repo) + "/", "") for line in lint] + steps, out.getvalue()

    yield run
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=repo, check=True)


def test_deploy_renders_lints_then_plans_and_executes(deploy: Any) -> None:
    code, steps, out = deploy("--env", "staging", "--yes")
    assert code == 0, out
    assert steps == ["cfn-lint rendered/staging/app.yaml rendered/staging/edge.yaml",
                     "plan and execute staging yes=True"]
    assert out.index("==> render staging") < out.index("==> check") < out.index("==> plan and deploy")
    assert out.rstrip().endswith("==> staging deployed")


def test_a_lint_problem_stops_before_the_plan(deploy: Any) -> None:
    code, steps, out = deploy("--env", "dev", fail_on="edge.yaml")
    assert code == 2 and steps[-1].startswith("cfn-lint"), out
    assert "E3001 a planted problem" in out and "cfn-lint reported problems" in out
    assert "nothing was deployed" in out


def test_output_that_differs_from_the_commit_is_refused(deploy: Any, repo: Path) -> None:
    dev = repo / "vars" / "dev.yaml"
    data = yaml.safe_load(dev.read_text())
    data["description"] = "changed after the commit"  # any rendered change will do
    dev.write_text(yaml.safe_dump(data, sort_keys=False))
    code, steps, out = deploy("--env", "dev")
    assert code == 2 and steps == [], out
    assert ("rendered/dev: differs from the commit (2 file(s): rendered/dev/app.yaml, "
            "rendered/dev/edge.yaml)") in out.replace(str(repo) + "/", "")
    code, steps, out = deploy("--env", "dev", "--allow-uncommitted")
    assert code == 0 and steps[-1] == "plan and execute dev yes=False", out


@pytest.mark.parametrize("args, message", [
    (("--env", "nope"), "nope.yaml"),
    (("--env", "production", "--allow-uncommitted"), "--allow-uncommitted: is refused for production"),
    # no terminal and no --yes: refused before rendering or calling anything
    (("--env", "staging"), "error: --yes: not given, and there is no terminal to confirm at"),
])
def test_bad_arguments_are_refused_before_anything_runs(deploy: Any, args: tuple[str, ...],
                                                         message: str) -> None:
    code, steps, out = deploy(*args)
    assert code == 2 and steps == [], out
    assert message in out and "==> render" not in out and out.count("error:") == 1


# --- a deploy asks before it widens ---------------------------------------------------------------

CHANGE_SET = "arn:aws:cloudformation:us-east-1:111111111111:changeSet/samcli-deploy1/abc"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@dataclass
class Deployed:
    """What a deploy did: exit code, output, the questions asked, change sets deleted and run."""

    code: int
    out: str
    err: str
    asked: list[str]
    discarded: list[str]
    executed: list[str]


def rendered_dev(repo: Path) -> dict[str, Any]:
    return load_template((repo / "rendered" / "dev" / "app.yaml").read_text())


@pytest.fixture
def ask(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """ask(deployed template or None (a first create), changes, *args, tty=, answer=) -> Deployed:
    `deploy --env dev` whose plan is the regional stack with those changes, the deployed
    template served by GetTemplate."""
    monkeypatch.setenv("CFN_LINT", str(repo.parent / "cfn-lint"))
    monkeypatch.setenv("STUB_LOG", str(repo.parent / "calls.log"))
    monkeypatch.setenv("STUB_FAIL_ON", "never")

    def run(deployed: dict[str, Any] | None, changes: list[plan.ResourceChange], *args: str,
            tty: bool = True, answer: str = "") -> Deployed:
        cfg = config("dev")
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        aws = Aws(cfg, session, cfg.account)
        stub = Stubber(aws.client("cloudformation", "us-east-1"))
        if deployed is not None and "--yes" not in args:
            stub.add_response("get_template", {"TemplateBody": yaml.safe_dump(deployed, sort_keys=False)},
                              {"StackName": cfg.stack_name, "TemplateStage": "Original"})
        stub.activate()
        status = "UPDATE_COMPLETE" if deployed is not None else "new"
        made = [plan.StackPlan(cfg.stack_name, "us-east-1", CHANGE_SET, status, changes)]
        asked: list[str] = []
        discarded: list[str] = []
        executed: list[str] = []
        monkeypatch.setattr(deploy_command, "connect", lambda cfg: aws)
        monkeypatch.setattr(plan, "make_plan", lambda aws, rendered: made)
        monkeypatch.setattr(plan, "discard", lambda aws, plans, quiet=False: discarded.extend(
            p.change_set for p in plans))
        monkeypatch.setattr(plan, "execute", lambda aws, plans: executed.extend(
            p.change_set for p in plans) or 0)
        monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or answer)
        monkeypatch.setattr(sys, "stdin", Terminal() if tty else io.StringIO())
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["deploy", "--env", "dev", *args, "--vars", str(repo / "vars"),
                         "--rendered", str(repo / "rendered")])
        stub.assert_no_pending_responses()
        return Deployed(code, out.getvalue(), err.getvalue(), asked, discarded, executed)

    yield run
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=repo, check=True)


def _policy(doc: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The statements of a role's first inline policy."""
    return doc["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def narrowed(repo: Path) -> dict[str, Any]:
    """Deployed: the API task role could also read every object in S3 (the render takes it away)."""
    doc = rendered_dev(repo)
    _policy(doc, "ApiTaskRole").append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    return doc


def retagged(repo: Path) -> dict[str, Any]:
    """Deployed: the same grants, another description and tag (names, not access)."""
    doc = rendered_dev(repo)
    role = doc["Resources"]["ApiTaskRole"]["Properties"]
    role["Description"] = "an older description"
    role["Tags"] = [{"Key": "Environment", "Value": "old"}]
    return doc


@pytest.mark.parametrize("deployed", [narrowed, retagged])
def test_a_narrowing_or_neutral_change_executes_without_asking(ask: Any, repo: Path, deployed: Any) -> None:
    done = ask(deployed(repo), [plan.ResourceChange("ApiTaskRole", "AWS::IAM::Role", "Modify")])
    assert done.code == 0, (done.out, done.err)
    assert done.asked == [] and done.executed == [CHANGE_SET] and done.discarded == []
    assert "broaden" not in done.out


def without_decrypt(repo: Path) -> dict[str, Any]:
    """Deployed: the API task role could not decrypt with the stack key (the render adds it)."""
    doc = rendered_dev(repo)
    statements = _policy(doc, "ApiTaskRole")
    statements[:] = [s for s in statements if s.get("Sid") != "DecryptWithTheStackKeyOnly"]
    return doc


@pytest.mark.parametrize("answer, code", [("n", 2), ("y", 0)])
def test_a_broadening_change_shows_its_statements_and_asks(ask: Any, repo: Path, answer: str,
                                                           code: int) -> None:
    done = ask(without_decrypt(repo), [plan.ResourceChange("ApiTaskRole", "AWS::IAM::Role", "Modify")],
               answer=answer)
    assert done.code == code, (done.out, done.err)
    assert len(done.asked) == 1 and "broaden security in dev" in done.asked[0]
    shown = done.out.split("IAM statement changes:")[1]
    assert "ApiTaskRole reread-database-credentials" in shown and "kms:Decrypt" in shown
    assert "WIDENS: new action kms:Decrypt" in shown and "!GetAtt StackKey.Arn" in shown
    if answer == "n":
        assert done.executed == [] and done.discarded == [CHANGE_SET]
        assert done.err == "error: not confirmed; nothing was executed (the change sets were deleted)\n"
    else:
        assert done.executed == [CHANGE_SET] and done.discarded == []


def test_an_opened_security_group_rule_is_shown_and_asked(ask: Any, repo: Path) -> None:
    """Deployed: the load balancer took HTTP from the VPC only; the render opens it to the internet."""
    doc = rendered_dev(repo)
    (http,) = [r for r in doc["Resources"]["AlbSecurityGroup"]["Properties"]["SecurityGroupIngress"]
               if r["FromPort"] == 80]
    http["CidrIp"] = "10.0.0.0/16"
    done = ask(doc, [plan.ResourceChange("AlbSecurityGroup", "AWS::EC2::SecurityGroup", "Modify")],
               answer="n")
    assert done.code == 2 and len(done.asked) == 1, (done.out, done.err)
    shown = done.out.split("Security-group rule changes:")[1]
    (added,) = [line for line in shown.splitlines() if line.lstrip().startswith("+")]
    assert "AlbSecurityGroup" in added and "tcp 80" in added and "0.0.0.0/0" in added
    assert "WIDENS: open to the internet" in added and "could not judge" not in done.out
    assert done.executed == [] and done.discarded == [CHANGE_SET]


def test_without_a_terminal_a_broadening_plan_is_refused_unless_yes(ask: Any, repo: Path) -> None:
    changes = [plan.ResourceChange("ApiTaskRole", "AWS::IAM::Role", "Modify")]
    done = ask(without_decrypt(repo), changes, tty=False)
    assert done.code == 5 and done.asked == [], (done.out, done.err)
    assert done.err.count("\n") == 1 and done.err.startswith("error: the plan broadens security")
    assert "--yes" in done.err and "nothing was executed" in done.err
    assert done.executed == [] and done.discarded == [CHANGE_SET]
    done = ask(without_decrypt(repo), changes, "--yes", tty=False)
    assert done.code == 0 and done.asked == [] and done.executed == [CHANGE_SET], (done.out, done.err)


def _session_length_changed(repo: Path) -> tuple[dict[str, Any], plan.ResourceChange]:
    """A security-bearing property no rule judges (the review's NOT JUDGED)."""
    doc = rendered_dev(repo)
    doc["Resources"]["DatabaseMonitoringRole"]["Properties"]["MaxSessionDuration"] = 43200
    return doc, plan.ResourceChange("DatabaseMonitoringRole", "AWS::IAM::Role", "Modify")


def _unchanged_template(repo: Path) -> tuple[dict[str, Any], plan.ResourceChange]:
    return rendered_dev(repo), plan.ResourceChange("ApiTaskRole", "AWS::IAM::Role", "Modify", details=[
        plan.Detail("Policies", "Never", "ApiDatabaseSecret")])


def _made_by_a_transform(repo: Path) -> tuple[dict[str, Any], plan.ResourceChange]:
    return rendered_dev(repo), plan.ResourceChange("RotationLambdaRole", "AWS::IAM::Role", "Add")


@pytest.mark.parametrize("case, why", [
    (_session_length_changed, "DatabaseMonitoringRole (AWS::IAM::Role): Properties.MaxSessionDuration "
                              "changed, which no rule judges"),
    (_unchanged_template, "ApiTaskRole (AWS::IAM::Role, Modify): its template is unchanged; "
                          "CloudFormation changes it because of ApiDatabaseSecret"),
    (_made_by_a_transform, "RotationLambdaRole (AWS::IAM::Role, Add): in neither template (a transform "
                           "makes it)"),
])
def test_an_iam_change_the_rules_cannot_judge_asks_and_says_so(ask: Any, repo: Path, case: Any,
                                                               why: str) -> None:
    deployed, change = case(repo)
    done = ask(deployed, [change], answer="n")
    assert done.code == 2 and len(done.asked) == 1, (done.out, done.err)
    (line,) = [x for x in done.out.splitlines() if "could not judge" in x]
    assert why in line
    assert done.executed == [] and done.discarded == [CHANGE_SET]


def test_a_first_create_shows_what_it_grants_and_asks(ask: Any) -> None:
    done = ask(None, [plan.ResourceChange("ApiTaskRole", "AWS::IAM::Role", "Add")], answer="y")
    assert done.code == 0 and len(done.asked) == 1, (done.out, done.err)
    assert "tracker-dev: a first create: everything it grants is new" in done.out
    shown = done.out.split("IAM statement changes:")[1]
    assert "secretsmanager:GetSecretValue" in shown and "ecs-tasks.amazonaws.com" in shown
    assert done.executed == [CHANGE_SET]
    # by definition: a stack created with nothing the rules call a widening still asks
    assert broadening.Verdict(created=["tracker-dev"]).broadens
