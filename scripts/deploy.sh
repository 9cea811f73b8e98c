#!/usr/bin/env bash
# Deploy one environment's two stacks: scripts/deploy.sh ENV   (or: make deploy ENV=staging)
#
#   1. render vars/ENV.yaml into rendered/ENV/
#   2. check: rendered/ENV/ must equal what is committed (what ships is what the pull request
#      showed), and cfn-lint must report nothing
#   3. render.py plan --env ENV --execute: the account/region guard (the credentials must be
#      ENV's account, the session ENV's region), then one change set per stack (sam deploy
#      --no-execute-changeset with config-envs ENV and ENV-edge), the report, and their execution,
#      regional stack first (a protected environment asks before executing). On a first create
#      it passes DeletionProtection=false, on every later deploy DeletionProtection=true.
#
# Stops at the first failure: a failed regional deploy never reaches the edge stack. Why this
# order, and what to do when a step fails: docs/deploying.md.
#
# Option: --allow-uncommitted   deploy a rendered/ENV/ that differs from the commit (refused for
# production).
# Tools: PYTHON, CFN_LINT override the venv's (tests use stubs); SAM is read by render.py plan.
set -euo pipefail

usage() { echo "usage: $0 [--allow-uncommitted] ENV" >&2; exit 2; }

allow_uncommitted=false
if [[ "${1:-}" == "--allow-uncommitted" ]]; then allow_uncommitted=true; shift; fi
[[ $# -eq 1 ]] || usage
env_name=$1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"  # sam reads ./samconfig.toml: run from the repository root, never with --template-file
py=${PYTHON:-.venv/bin/python}
cfn_lint=${CFN_LINT:-.venv/bin/cfn-lint}

if [[ ! "$env_name" =~ ^[a-z][a-z0-9]*$ || "$env_name" == defaults || ! -f "vars/$env_name.yaml" ]]; then
  known=()
  for file in vars/*.yaml; do
    name=$(basename "$file" .yaml)
    [[ "$name" == defaults ]] || known+=("$name")
  done
  echo "deploy: no environment '$env_name' (allowed: ${known[*]})" >&2
  exit 2
fi
if [[ "$env_name" == production && "$allow_uncommitted" == true ]]; then
  echo "deploy: --allow-uncommitted is refused for production: deploy a reviewed commit" >&2
  exit 2
fi

echo "==> render $env_name"
"$py" render.py --env "$env_name"

echo "==> check rendered/$env_name"
if [[ -n "$(git status --porcelain -- "rendered/$env_name")" ]]; then
  git status --short -- "rendered/$env_name" >&2
  if [[ "$allow_uncommitted" == true ]]; then
    echo "deploy: rendered/$env_name differs from the commit; deploying it anyway (--allow-uncommitted)" >&2
  else
    echo "deploy: rendered/$env_name differs from the commit: commit the change (and get it reviewed) first" >&2
    exit 1
  fi
fi
"$cfn_lint" "rendered/$env_name"/*.yaml

echo "==> plan and deploy $env_name (regional stack, then edge stack)"
"$py" render.py plan --env "$env_name" --execute

echo "==> $env_name deployed"
