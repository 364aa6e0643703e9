"""The benchmarks are run from the README, not by the suite: make sure each one still starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module",
    [
        "bench.full_sync",
        "bench.webhooks",
        "bench.tenants",
        "bench.ingest_cpu",
        "bench.reconcile",
        "bench.chaos",
        "bench.fairness",
    ],
)
def test_benchmark_cli_starts(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
