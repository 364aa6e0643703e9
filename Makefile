# Two commands on a fresh machine: `make run` (the service, embedded mode) and `make test` (every check).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

ADDRESSES ?= 10000
DEMO_DB ?= demo.db

.PHONY: run serve test venv lint typecheck pytest demo bench worker clean lock consent-soak chaos

$(BIN)/connector: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/connector

venv: $(BIN)/connector

## The embedded default: without ONOFFICE_PROVIDER_SECRET the demo (emulated onOffice, Mailchimp
## and Brevo, SQLite, in-process jobs, a first full sync of $(ADDRESSES) addresses, a signed
## iframe link; keeps serving). With the secret set, the real service (like `make serve`).
run: venv
	$(BIN)/connector run --host $(HOST) --port $(PORT) --addresses $(ADDRESSES) --database $(DEMO_DB)

## The real service for a registered marketplace provider (configure it through the environment).
serve: venv
	$(BIN)/connector serve --host $(HOST) --port $(PORT)

## Every check: services up, fresh test database, ruff, mypy, pytest.
test: venv
	bash scripts/test.sh

## The consent model over the real product (tests/consent/test_model_product.py), 2,000
## examples instead of CI's 100 (PostgreSQL and Redis up, as for `make test`). Every action
## family: CONSENT_MODEL_ACTIONS=all (default: the families CI runs).
consent-soak: venv
	bash scripts/services.sh
	bash scripts/consent_soak.sh

## Issue 22's fault scenarios at 20,000 addresses and 2,000 events, on a PostgreSQL and Redis of
## its own (needs redis-server and PostgreSQL's server binaries); CHAOS_ARGS="--port-base 18600".
chaos: venv
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy app providers onoffice_client

## Re-pin the runtime dependencies (with hashes) that the Dockerfile installs.
lock: venv
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header --custom-compile-command "make lock" \
		-o requirements.lock

worker: venv
	$(BIN)/connector worker

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache connector.db* demo.db*
