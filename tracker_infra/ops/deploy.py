"""Deploy one environment's two stacks: render, check, plan, execute (what `make deploy` runs).

  python render.py deploy --env staging          asks before executing in a protected environment,
                                                 and in every environment when the plan broadens
                                                 security
  python render.py deploy --env dev --yes        no question (CI, scripts)

Steps, stopping at the first failure (a failed regional deploy never reaches the edge stack):
  1. render vars/ENV.yaml into rendered/ENV/;
  2. check: rendered/ENV/ must equal what git has committed (what ships is what the pull request
     showed; --allow-uncommitted overrides it, except for production), and cfn-lint must report
     nothing;
  3. plan and execute (as `render.py plan --env ENV --execute` does, with its own question): the
     account/region guard, one change set per stack (sam deploy --no-execute-changeset with
     config-envs ENV and ENV-edge), the report, then the question (below), then the regional
     change set and the edge one once the regional stack is complete. A first create passes
     DeletionProtection=false, every later deploy DeletionProtection=true.

The question, after the model of CDK's `--require-approval broadening`: when the plan broadens
security (broadening.py: each deployed template, GetTemplate Original, compared with the rendered
one by the review's IAM, security-group and widening rules; what the rules cannot judge and a
first create count as broadening), deploy shows the statements and rules and asks, in every
environment; otherwise it asks in a protected environment only. --yes answers yes. No is one
line, exit 2, and the change sets are deleted. Without a terminal a broadening plan is refused
(exit 5) before anything is executed, and its change sets deleted.

A protected environment without --yes needs a terminal, and says so before anything is called.
Why this order and what to do when a step fails: docs/deploying.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ..errors import EXIT_AWS, EXIT_BROADENING, EXIT_OK, EXIT_USER, Refusal, UserError
from ..schema import Config
from . import broadening, plan
from .aws import add_env_arguments, add_rendered_argument, connect, load_config

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "deployed (or nothing to change)",
    EXIT_USER: ("also: rendered/ENV/ differs from the commit, cfn-lint found a problem, or the "
                "change sets were not confirmed; nothing was executed"),
    EXIT_BROADENING: ("the plan broadens security (--yes executes it); nothing was executed, the "
                      "change sets were deleted"),
    EXIT_AWS: "a stack did not complete; nothing after it was run",
}


def cfn_lint_command() -> list[str]:
    """cfn-lint beside this interpreter (the dev install), else on PATH; CFN_LINT overrides."""
    local = Path(sys.executable).parent / "cfn-lint"
    return [os.environ.get("CFN_LINT") or (str(local) if local.exists() else "cfn-lint")]


def _render(args: argparse.Namespace) -> None:
    from ..cli import run_render

    print(f"==> render {args.env}", flush=True)
    render = argparse.Namespace(env=[args.env], all=False, check=False, vars=args.vars, out=args.rendered)
    run_render(render)


def uncommitted(env_dir: Path) -> list[str]:
    """git's short status lines of the files under env_dir that differ from the commit."""
    done = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=env_dir,  # noqa: S607
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UserError(str(env_dir), "", f"is not in a git checkout ({done.stderr.strip()}) (allowed: "
                        "a rendered folder git tracks, or --allow-uncommitted)")
    return done.stdout.splitlines()


def _check(args: argparse.Namespace) -> None:
    env_dir = Path(args.rendered) / args.env
    print(f"==> check {env_dir}", flush=True)
    if not args.allow_uncommitted:
        changed = uncommitted(env_dir)
        if changed:
            raise UserError(str(env_dir), "", f"differs from the commit ({len(changed)} file(s): "
                            f"{', '.join(line[3:] for line in changed)}); nothing was deployed (allowed: "
                            "committed, reviewed output; commit the change first, or --allow-uncommitted "
                            "outside production)")
    templates = sorted(str(p) for p in env_dir.glob("*.yaml"))
    done = subprocess.run([*cfn_lint_command(), *templates], capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        sys.stdout.write(done.stdout)
        raise UserError(str(env_dir), "", f"cfn-lint reported problems (exit {done.returncode}, listed "
                        "above); nothing was deployed (allowed: templates cfn-lint passes)")


def refuse_early(args: argparse.Namespace, cfg: Config) -> None:
    """What can be refused before rendering or calling anything."""
    if cfg.environment == "production" and args.allow_uncommitted:
        raise UserError("--allow-uncommitted", "", "is refused for production: deploy a reviewed "
                        "commit (allowed: without it)")
    plan.need_confirmation_means(args, cfg)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("--yes", action="store_true",
                        help="execute without asking, also in a protected environment and when the "
                             "plan broadens security (IAM, security groups, exposure, encryption...)")
    parser.add_argument("--allow-uncommitted", action="store_true",
                        help="deploy a rendered/ENV/ that differs from the commit (refused for production)")
    add_rendered_argument(parser)


def _confirmed(args: argparse.Namespace, cfg: Config, verdict: broadening.Verdict) -> bool | None:
    """Whether the change sets may run (without --yes): a plan that does not broaden security
    where plan's own rule needs no question, or a person's yes; None: broadening, nobody to ask."""
    if not verdict.broadens:
        return plan._confirmed(args, cfg)
    print(verdict.text(), flush=True)
    if not sys.stdin.isatty():
        return None
    answer = input(f"These change sets broaden security in {cfg.environment} (above). Execute them? [y/N] ")
    return answer.strip().lower() == "y"


def deploy_stacks(args: argparse.Namespace, cfg: Config) -> int:
    """Plan, show, judge whether the plan broadens security, ask where needed, execute; a plan
    not executed leaves nothing behind."""
    aws = connect(cfg)
    plans = plan.make_plan(aws, args.rendered)
    go: bool | None = False
    try:
        plan.show_plan(cfg.environment, plans, markdown=False)
        go = args.yes or _confirmed(args, cfg, broadening.judge(aws, plans, Path(args.rendered)))
    finally:
        if go is not True:
            plan.discard(aws, plans, quiet=True)
    if go is None:
        print(f"error: the plan broadens security (above) and there is no terminal to ask at; "
              f"nothing was executed (the change sets were deleted) (allowed: review it, then "
              f"`render.py deploy --env {cfg.environment} --yes`)", file=sys.stderr)
        return EXIT_BROADENING
    if not go:
        raise Refusal(plan.NOT_CONFIRMED)
    return plan.execute(aws, plans)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    refuse_early(args, cfg)
    _render(args)
    _check(args)
    print(f"==> plan and deploy {args.env} (regional stack, then edge stack)", flush=True)
    code = deploy_stacks(args, cfg)
    if code == EXIT_OK:
        print(f"==> {args.env} deployed")
    return code
