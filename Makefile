# pgha: PostgreSQL 17 HA deployed and healed by Salt.
#   make lab       host packages, .venv, node image, nodes, master and minions, then the rollout
#   make unit      the fast tier: lint and tests/unit, no lab and no root (under a minute)
#   make test      unit first; then the lab set-up and every test (they run their own master)
#   make lab-down  tear the lab down, leaving nothing behind
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KEEP_LAB ?= 0

.PHONY: lab test unit lint lab-down host venv status bench

host:
	@lab/host-setup.sh

$(STAMP): requirements.txt lab/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e lab
	@touch $@

venv: $(STAMP)

# promtool and amtool from the monitor node's Debian packages, for the fast tier.
$(BIN)/promtool $(BIN)/amtool: lab/prometheus-tools.sh | $(STAMP)
	@lab/prometheus-tools.sh $(BIN)

lab: host venv
	$(BIN)/pgha-lab up
	$(BIN)/salt-run state.orchestrate orch.deploy
	@echo
	@$(BIN)/salt-run pgha.status
	@echo
	@$(BIN)/pgha-lab info
	@echo
	@echo "From this directory: source $(BIN)/activate; salt '*' test.ping"
	@echo "Tear down: make lab-down"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/salt-lint $$(find salt orch reactor -name '*.sls' | sort)

unit: lint $(BIN)/promtool $(BIN)/amtool
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

test: unit host
	$(BIN)/pgha-lab up --no-master
	@rc=0; $(BIN)/pytest --durations=40 $(PYTEST_ARGS) --ignore=tests/unit tests || rc=$$?; \
	if [ $$rc != 0 ]; then echo "== the master log's last warnings and errors"; $(BIN)/pgha-lab master-log; fi; \
	if [ "$(KEEP_LAB)" = 0 ]; then $(BIN)/pgha-lab down || rc=$$?; fi; exit $$rc

lab-down: venv
	$(BIN)/pgha-lab down

status: venv
	@$(BIN)/pgha-lab status

# The benchmark boots a fresh lab (the rollout is timed from bare nodes); ~20 minutes.
bench: host venv
	$(BIN)/python bench/run.py $(BENCH_ARGS)
