"""The deploy workflows' shape (their syntax and security are linted by actionlint and zizmor in
`make lint-workflows`): every environment in vars/ is deployed in order, each planned with the
report in the job summary before the job that needs an approval runs exactly that plan, one
deployment per environment at a time, credentials only through OIDC, actions pinned by SHA."""

from __future__ import annotations

import re
from typing import Any

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
    assert names[-3:] == ["Execute the reviewed change sets", "Publish the site", "Verify the environment"]
    assert deploy["steps"][-2]["if"] == "${{ inputs.site-dist-url != '' }}"
    assert 'make publish ENV="$ENVIRONMENT" DIST=site-dist' in deploy["steps"][-2]["run"]
    assert deploy["steps"][-1]["run"] == 'make verify ENV="$ENVIRONMENT"'


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


def _commands(run: str) -> set[str]:
    """The render.py subcommands a step's script runs, directly or through a make target."""
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"\bmake (\w+)", run):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert recipe, f"make {target} has no recipe in the Makefile"
        run += "\n" + recipe.group(1)
    found = set()
    for line in re.findall(r"render\.py ([^\n]*)", run):
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
