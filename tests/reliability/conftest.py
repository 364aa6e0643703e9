"""Fault tests: the connector's processes against throwaway Redis (and PostgreSQL) instances of
their own, which the tests kill and restart. The shared test services are never touched."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.kit import free_port
from devkit.servers import LocalPostgres, LocalRedis, MissingBinary
from tests.e2e.conftest import e2e_settings, http, world  # noqa: F401  (fixtures used here)
from tests.e2e.harness import ROOT


class ThrowawayRedis(LocalRedis):
    """A redis-server of this test on a free port, without persistence."""

    def __init__(self) -> None:
        try:
            super().__init__(free_port())
        except MissingBinary as exc:
            pytest.skip(str(exc))


class ThrowawayPostgres(LocalPostgres):
    """A PostgreSQL cluster of this test on a free port."""

    def __init__(self) -> None:
        try:
            super().__init__(free_port())
        except MissingBinary as exc:
            pytest.skip(str(exc))


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


def start_worker_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`connector worker` (both queues) as its own process, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=env | {"LOG_LEVEL": "INFO"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
