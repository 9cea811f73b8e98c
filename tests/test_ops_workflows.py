"""The deploy workflows' shape (their syntax and security are linted by actionlint and zizmor in
`make lint-workflows`): every environment in vars/ is deployed in order, each planned with the
report in the job summary before the job that needs an approval runs exactly that plan, one
deployment per environment at a time, credentials only through OIDC, actions pinned by SHA; and
a push to main walked job by job, dev's commands run against the rehearsal's moto stand-in."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ENVS
from tracker_infra.cfn_yaml import load_template
from tracker_infra.rendering import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
# The deploy roles' MaxSessionDuration, as the bootstrap stacks set it (the same for every role).
MAX_SESSION = next(iter({
    r["Properties"]["MaxSessionDuration"] for path in (ROOT / "bootstrap").glob("*.yaml")
    for r in load_template(path.read_text())["Resources"].values()
    if r["Type"] == "AWS::IAM::Role"}))


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_main_deploys_every_environment_in_order_one_at_a_time() -> None:
    workflow = load("deploy.yml")
    on = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert on["push"] == {"branches": ["main"]}
    assert set(on["workflow_dispatch"]["inputs"]) == {"site-dist-url"}  # a site release by hand
    jobs = workflow["jobs"]
    assert list(jobs) == list(ENVS)  # dev, staging, production
    for previous, (env, job) in zip([None, *ENVS], jobs.items(), strict=False):
        assert job["uses"] == "./.github/workflows/deploy-environment.yml"
        assert job["with"] == {"environment": env, "site-dist-url": "${{ inputs.site-dist-url || '' }}"}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert job["concurrency"] == {"group": f"deploy-{env}", "cancel-in-progress": False}
        assert job.get("needs") == previous


def test_the_approved_job_runs_the_plan_its_reviewer_saw() -> None:
    jobs = load("deploy-environment.yml")["jobs"]
    plan, deploy = jobs["plan"], jobs["deploy"]
    assert plan["environment"] == "${{ inputs.environment }}-plan"  # no reviewers: runs at once
    assert deploy["environment"] == "${{ inputs.environment }}"  # required reviewers
    assert deploy["needs"] == "plan"
    planned = "\n".join(step.get("run", "") for step in plan["steps"])
    assert "render.py plan --env \"$ENVIRONMENT\" --format markdown --save plan.json" in planned
    assert 'cat plan.md >> "$GITHUB_STEP_SUMMARY"' in planned
    executed = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert 'render.py plan --env "$ENVIRONMENT" --execute plan.json' in executed
    assert deploy["env"]["PLAN"] == "${{ needs.plan.outputs.plan }}"
    # ...then the site (when a build is given) and the post-deployment checklist, in that order
    names = [step.get("name") for step in deploy["steps"]]
    assert names[-3:] == ["Plan again and execute if the changes are the reviewed ones", "Publish the site",
                          "Verify the environment"]
    assert deploy["steps"][-2]["if"] == "${{ inputs.site-dist-url != '' }}"
    assert 'make publish ENV="$ENVIRONMENT" DIST=site-dist' in deploy["steps"][-2]["run"]
    assert deploy["steps"][-1]["run"] == 'make verify ENV="$ENVIRONMENT"'


def test_the_plan_job_assumes_the_plan_role_and_only_the_approved_job_the_deploy_role() -> None:
    jobs = load("deploy-environment.yml")["jobs"]
    plan, deploy = jobs["plan"], jobs["deploy"]
    (vars_step,) = [s for s in plan["steps"] if s.get("id") == "vars"]
    assert 'print(f"plan-role={cfg.plan_role_arn}")' in vars_step["run"]
    assert 'print(f"deploy-role={cfg.deploy_role_arn}")' in vars_step["run"]

    def assumed(job: dict[str, Any]) -> str:
        (credentials,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/")]
        return str(credentials["with"]["role-to-assume"])

    assert assumed(plan) == "${{ steps.vars.outputs.plan-role }}"
    assert assumed(deploy) == "${{ needs.plan.outputs.deploy-role }}"
    assert plan["outputs"]["deploy-role"] == "${{ steps.vars.outputs.deploy-role }}"
    assert "plan-role" not in plan["outputs"]


def test_both_jobs_hold_the_role_s_whole_session() -> None:
    for job in load("deploy-environment.yml")["jobs"].values():
        (credentials,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/")]
        assert set(credentials["with"]) == {"role-to-assume", "aws-region", "role-session-name",
                                            "role-duration-seconds"}
        # the role's whole session (configure-aws-credentials asks for 1 h unless told), at least
        # as long as the job may run: the stack waits never outlive their credentials
        assert credentials["with"]["role-duration-seconds"] == MAX_SESSION
        assert job["timeout-minutes"] * 60 <= MAX_SESSION


# Each command a deploy job runs with the role's credentials -> the test that runs it against moto
# as the environment's bootstrap deploy role and judges every call it makes (tests/iam_policy.py).
JUDGED_AS_THE_ROLE = {
    "plan": "tests/test_ops_moto.py::test_plan_and_execute_ask_nothing_the_deploy_role_is_refused",
    "execute": "tests/test_ops_moto.py::test_plan_and_execute_ask_nothing_the_deploy_role_is_refused",
    "publish-site": "tests/test_release.py::test_publish_site_uploads_the_vite_build",
    "verify": "tests/test_verify.py::test_verify_passes_on_a_healthy_environment",
}


def _with_recipes(run: str) -> str:
    """A step's script, followed by the recipe of each make target it runs."""
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"\bmake (\w+)", run):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert recipe, f"make {target} has no recipe in the Makefile"
        run += "\n" + recipe.group(1)
    return run


def _commands(run: str) -> set[str]:
    """The render.py subcommands a step's script runs, directly or through a make target."""
    found = set()
    for line in re.findall(r"render\.py ([^\n]*)", _with_recipes(run)):
        command = line.split()[0]
        if not command.startswith("-"):
            found.add("execute" if command == "plan" and "--execute" in line else command)
    return found


def test_every_command_the_deploy_jobs_run_as_the_role_is_judged_as_the_role() -> None:
    jobs = load("deploy-environment.yml")["jobs"]
    ran = set()
    for job in jobs.values():
        steps = job["steps"]
        first = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("aws-actions/"))
        for step in steps[first + 1:]:
            ran |= _commands(step.get("run", ""))
    assert ran == {"plan", "execute", "publish-site", "verify"}
    assert ran <= set(JUDGED_AS_THE_ROLE), ran - set(JUDGED_AS_THE_ROLE)
    for where in JUDGED_AS_THE_ROLE.values():
        path, name = where.split("::")
        text = (ROOT / path).read_text()
        assert f"def {name}(" in text, where
        body = text[text.index(f"def {name}("):].split("\ndef ", 1)[0]
        assert "denied" in body, f"{where} does not judge the calls as the role"


def test_every_action_is_pinned_by_a_full_commit_sha() -> None:
    uses = re.findall(r"uses:\s*(\S+)", "".join(p.read_text() for p in sorted(WORKFLOWS.glob("*.yml"))))
    external = [u for u in uses if not u.startswith("./")]
    assert external
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in external), external


# --- a push to main, walked job by job -------------------------------------------------------
SHELL_ENDS = {">", ">>", "||", "&&", "|", ";"}


def _in_needs_order(jobs: dict[str, Any]) -> list[str]:
    """The jobs' names, each after those it needs (GitHub runs a job once its needs are done)."""
    def needs(job: dict[str, Any]) -> set[str]:
        given = job.get("needs") or []
        return {given} if isinstance(given, str) else set(given)

    done: list[str] = []
    while len(done) < len(jobs):
        ready = [n for n, job in jobs.items() if n not in done and needs(job) <= set(done)]
        assert ready, f"a cycle among {set(jobs) - set(done)}"
        done.append(ready[0])
    return done


def _expression(value: str, inputs: dict[str, str]) -> str | bool:
    """The two expression forms the deploy workflows use, for the given inputs (a push has none)."""
    default = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \|\| '([^']*)' \}\}", value)
    compare = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) (==|!=) '([^']*)' \}\}", value)
    if default:
        return inputs.get(default[1]) or default[2]
    if compare:
        return (inputs.get(compare[1], "") == compare[3]) == (compare[2] == "==")
    raise AssertionError(f"an expression this walk cannot evaluate: {value}")


def pushed_jobs() -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(environment, job, the steps it runs) of a push to main, in the order GitHub runs them:
    deploy.yml's jobs by their needs, each calling deploy-environment.yml with the push's inputs
    (none), whose jobs run by their needs; a step whose `if:` is false is left out."""
    caller = load("deploy.yml")["jobs"]
    called = load("deploy-environment.yml")
    for name in _in_needs_order(caller):
        assert caller[name]["uses"] == "./.github/workflows/deploy-environment.yml"
        inputs = {k: _expression(v, {}) if "${{" in str(v) else v for k, v in caller[name]["with"].items()}
        for key, given in called[True]["workflow_call"]["inputs"].items():
            inputs.setdefault(key, given.get("default", ""))
        for job in _in_needs_order(called["jobs"]):
            steps = [s for s in called["jobs"][job]["steps"] if "if" not in s or _expression(s["if"], inputs)]
            yield inputs["environment"], job, steps


def render_commands(step: dict[str, Any], env: str, files: dict[str, str]) -> list[list[str]]:
    """The render.py command lines a step runs (through make too), as argv for the environment;
    the workflow's files (plan.json) at the given paths."""
    script = _with_recipes(step.get("run", "")).replace("\\\n", " ")
    found = []
    for line in re.findall(r"render\.py ([^\n]*)", script):
        line = line.replace('"$ENVIRONMENT"', env).replace("$(ENV)", env)
        argv = shlex.split(line)
        argv = argv[:next((i for i, a in enumerate(argv) if a in SHELL_ENDS), len(argv))]
        found.append([files.get(a, a) for a in argv])
    return found


def command_name(argv: list[str]) -> str:
    """plan, execute (plan --execute), verify ...; `all` for render.py --all --check."""
    return "execute" if "--execute" in argv else argv[0].lstrip("-")


def test_a_push_skips_the_site_and_runs_plan_execute_verify_per_environment() -> None:
    """What the walk below runs, read from the workflows: no site is published on a push."""
    walked = [(env, job, [command_name(c) for s in steps for c in render_commands(s, env, {})])
              for env, job, steps in pushed_jobs()]
    assert [(env, job) for env, job, _ in walked][:3] == [(ENVS[0], "plan"), (ENVS[0], "deploy"),
                                                          (ENVS[1], "plan")]
    assert [env for env, _, _ in walked] == [e for e in ENVS for _ in range(2)]
    assert all("publish-site" not in commands for _, _, commands in walked)
    assert {c for _, _, commands in walked for c in commands} == {"all", "plan", "execute", "verify"}


@pytest.mark.slow
@pytest.mark.rehearsal
def test_a_push_to_main_passes_every_dev_job_and_reaches_staging_s_plan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A push to main on a new account, walked: each render.py command of dev's jobs, in the
    workflow's order, against the rehearsal's moto stand-in (tracker_infra/ops/rehearse.py: the
    account's bootstrap stack and certificates made, the plan made from copies moto can deploy,
    no DNS record for the environment's names, no site published). Each must pass, or run as far
    as moto can show (the rehearsal's LIMITED verdict: verify told what moto cannot hold, as the
    rehearsal tells it, leaves the rows reading it not judged); then the walk reaches staging's
    plan job."""
    from tests.helpers import config
    from tracker_infra.ops import rehearse

    monkeypatch.chdir(ROOT)
    cfg = config(ENVS[0])
    files = {"plan.json": str(tmp_path / "plan.json")}
    verdicts = []
    with rehearse.stand_in(cfg, tmp_path) as moto:
        copies = rehearse.moto_rendered(moto, Path("vars"))
        jobs = pushed_jobs()
        for env, job, steps in jobs:
            if env != cfg.environment:
                break
            for argv in (a for s in steps for a in render_commands(s, env, files)):
                name = command_name(argv)
                if name in ("plan", "execute"):  # execute plans again from the checkout's templates
                    argv += ["--rendered", str(copies)]
                if name == "verify":  # what moto cannot hold, as the rehearsal tells it
                    argv += rehearse.verify_lacks()
                with rehearse.without_dns_records({cfg.api.domain, cfg.frontend.domain}):
                    step = rehearse.judge(name, *rehearse._command(*argv), cfg)
                verdicts.append((job, name, step.state))
    assert (env, job) == (ENVS[1], "plan"), verdicts  # staging's plan is reached
    ran = [name for _, name, _ in verdicts]
    assert [n for n in ran if n in ("plan", "execute", "verify")] == ["plan", "execute", "verify"], ran
    assert all(state in ("PASS", "LIMITED") for _, _, state in verdicts), verdicts
