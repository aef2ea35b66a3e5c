# Every target has a `## help` line; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
TOOLS_VENV := .venv-tools
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TOOLS := $(TOOLS_VENV)/bin
# Keep CPU runs polite on small machines and make torch deterministic-ish in tests.
export OMP_NUM_THREADS ?= 1
export PYTHONDONTWRITEBYTECODE := 1
# The local runtime keeps its state (local S3, jobs, endpoints, executions) here.
export LOCAL_RUNTIME_HOME ?= $(CURDIR)/.local
ENV ?= dev

.PHONY: help setup tools test test-unit test-integration test-e2e lint format typecheck validate build \
        demo bench data clean up run predict status logs down

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(VENV)/.stamp: requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	@touch $@

$(TOOLS_VENV)/.stamp: requirements-tools.txt
	@test -x $(TOOLS)/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS)/pip install -q -r requirements-tools.txt
	@touch $@

setup: $(VENV)/.stamp $(TOOLS_VENV)/.stamp ## Create/refresh the venvs (.venv app+tests, .venv-tools sam+checkov); idempotent, pip only

tools: $(TOOLS_VENV)/.stamp ## Install only the IaC tools venv (aws-sam-cli, checkov)

test: setup lint ## Lint, then every test: unit, integration, local end-to-end, template lint/build/scan (CI runs this)
	$(PY) -m pytest

test-unit: $(VENV)/.stamp ## Unit tests only (sockets disabled)
	$(PY) -m pytest -m "unit"

test-integration: setup ## Integration tests (moto, local servers, subprocesses)
	$(PY) -m pytest -m "integration"

test-e2e: setup ## Local end-to-end pipeline tests
	$(PY) -m pytest -m "e2e"

lint: $(VENV)/.stamp ## ruff lint + format check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy functions/inference training local_runtime tools

format: $(VENV)/.stamp ## Apply ruff format and autofixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: tools ## sam validate --lint, cfn-lint -c I, checkov on template.yaml
	$(TOOLS)/sam validate --template template.yaml
	$(TOOLS)/sam validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint -c I -- template.yaml
	$(TOOLS)/checkov -f template.yaml --framework cloudformation --skip-download --quiet --compact

build: tools ## sam build (python3.13 Lambda via BuildMethod: makefile)
	$(TOOLS)/sam build --template template.yaml

data: $(VENV)/.stamp ## Render the embedded dataset into data/embedded (dogImages layout)
	$(PY) -m tools.dataset render --out data/embedded

demo: $(VENV)/.stamp ## The main job: whole pipeline locally (ASL + local SageMaker, 2 instances) then HTTP predictions
	$(PY) -m local_runtime up --instance-count 2 $(DEMO_ARGS)

bench: $(VENV)/.stamp ## Benchmarks: prints name=value lines (ratios measured side by side)
	$(PY) -m tools.bench

up: $(VENV)/.stamp ## Local runtime: prepare data, start services, run an execution, keep serving
	$(PY) -m local_runtime up --serve $(ARGS)

run: $(VENV)/.stamp ## Local runtime: start an execution, INPUT=path/to/input.json
	$(PY) -m local_runtime run $(if $(INPUT),--input $(INPUT),)

predict: $(VENV)/.stamp ## Local runtime: predict IMAGE=path/to/image.jpg through the local HTTP API
	$(PY) -m local_runtime predict $(IMAGE)

status: $(VENV)/.stamp ## Local runtime: show jobs, endpoints and executions
	$(PY) -m local_runtime status

logs: $(VENV)/.stamp ## Local runtime: show stored logs
	$(PY) -m local_runtime logs

down: $(VENV)/.stamp ## Local runtime: stop everything
	$(PY) -m local_runtime down

clean: ## Remove build outputs, caches and local runtime state (keeps the venvs)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache build dist out .local data
	find . -name __pycache__ -type d -prune -not -path './.venv*' -exec rm -rf {} +
