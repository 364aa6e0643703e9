# Two commands on a fresh machine: `make run` (the service, embedded mode) and `make test` (every check).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test venv lint typecheck pytest demo bench worker clean

$(BIN)/connector: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/connector

venv: $(BIN)/connector

## Start the service on SQLite with in-process jobs (no PostgreSQL/Redis needed).
run: venv
	$(BIN)/connector serve --host $(HOST) --port $(PORT)

## Every check: services up, fresh test database, ruff, mypy, pytest.
test: venv
	bash scripts/test.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy app providers onoffice_client

worker: venv
	$(BIN)/connector worker

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache connector.db*
