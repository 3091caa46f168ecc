# The commands people, docs and CI run. `make run` and `make test` do all set-up themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test unit integration e2e chaos bench lint format typecheck install tools clean

$(STAMP): pyproject.toml
	@echo "› creating the virtualenv in $(VENV) and installing closeloop (first run takes a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@$(BIN)/closeloop dictionaries
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: kubectl renders the Kustomize manifests (offline), Chromium runs
# the browser tests of the survey pages. Installed once, only when missing.
APT_PACKAGES := $(if $(shell command -v kubectl),,kubectl) $(if $(shell command -v chromium),,chromium chromium-driver)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
tools:
	@if [ -n "$(strip $(APT_PACKAGES))" ]; then \
	  echo "› installing Debian packages for the tests: $(strip $(APT_PACKAGES))"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; fi

## Start the whole stack locally: PostgreSQL, Kafka, a mail catcher, the five services and the console.
run: install
	@$(BIN)/closeloop dev

## Lint and type-check, then every test: unit, integration (real PostgreSQL + Kafka) and end-to-end (service processes).
test: install tools lint typecheck
	@$(BIN)/pytest

unit: install
	@$(BIN)/pytest tests/unit

integration: install
	@$(BIN)/pytest tests/integration

e2e: install
	@$(BIN)/pytest tests/e2e

## The chaos test for five minutes per run instead of forty seconds (one and two processes per
## service; well over 100 SIGKILLs each while webhooks and answers stream in); it prints the kills,
## events and counts. CLOSELOOP_CHAOS_SEED reruns a run.
chaos: install
	@CLOSELOOP_CHAOS_SECONDS=$${CLOSELOOP_CHAOS_SECONDS:-300} CLOSELOOP_CHAOS_WEBHOOKS=$${CLOSELOOP_CHAOS_WEBHOOKS:-150} \
	  $(BIN)/pytest tests/e2e/test_chaos.py -s

## Benchmarks, each printed as a table: the whole loop (webhook → email), then trigger ingest,
## the survey page and answers, dispatch hand-off (emails/s, SMS/s), followup's case work at 50,000 open
## cases, scoring's reports over 10 M answers, exports of 1 M responses (rows/s, peak RSS), and the
## console's pages over both.
bench: install
	@$(BIN)/python -m bench
	@$(BIN)/python -m bench.trigger
	@$(BIN)/python -m bench.webhook_cpu
	@$(BIN)/python -m bench.responses
	@$(BIN)/python -m bench.page_cpu
	@$(BIN)/python -m bench.dispatch
	@$(BIN)/python -m bench.access
	@$(BIN)/python -m bench.followup
	@$(BIN)/python -m bench.scoring
	@$(BIN)/python -m bench.exports
	@$(BIN)/python -m bench.outbound
	@$(BIN)/python -m bench.console

lint: install
	@$(BIN)/ruff format --check --quiet . || { echo "run: make format"; exit 1; }
	@$(BIN)/ruff check .

format: install
	@$(BIN)/ruff format .

typecheck: install
	@$(BIN)/mypy shared services closeloop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
