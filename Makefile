# Two commands for a fresh machine: `make up` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: setup up test test-sqlite test-postgres services clients browser lint bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt scripts/setup.sh scripts/engine-wheels.sh
	@PY=$(PY) bash scripts/setup.sh
	@touch $(STAMP)

up: setup
	@$(PYTHON) manage.py up $(ARGS)

services:
	@bash scripts/services.sh

# Debian's Chromium for the dashboard's browser tests.
browser:
	@bash scripts/browser.sh

# Real clients (aider, Claude Code, Continue's cn, the npm SDKs), cached per machine.
clients:
	@bash scripts/clients.sh $(PY)

test: setup clients browser services test-sqlite test-postgres

test-sqlite: setup clients browser
	@echo "==> test suite on SQLite, in-process cache and eager Celery"
	@$(VENV)/bin/pytest -q

test-postgres: setup services clients browser
	@echo "==> test suite on PostgreSQL and Redis (tests marked once ran in the SQLite pass)"
	@DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(VENV)/bin/pytest -q -m "not once"

lint: setup
	@$(VENV)/bin/ruff check .

bench: setup
	@$(PYTHON) -m bench.run

clean:
	rm -rf $(VENV)
