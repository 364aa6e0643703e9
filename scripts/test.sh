#!/usr/bin/env bash
# The one test command (`make test`, called by .ci/run): services, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin

bash scripts/services.sh

echo "== ruff"
"$BIN/ruff" check .
"$BIN/ruff" format --check .
echo "== mypy"
"$BIN/mypy" app providers onoffice_client
echo "== pytest"
# The fixtures drop and create the test database ($TEST_DB_NAME) at the start of the session.
export TEST_DB_NAME=${TEST_DB_NAME:-connector_test}
# PYTEST_WORKERS processes (pytest-xdist; each its own database and Redis db): most tests wait
# on emulated I/O, so two workers on this 2-core machine cut the wall time. 0 = one process.
"$BIN/pytest" -q -p no:cacheprovider -n "${PYTEST_WORKERS:-2}" "$@"
