"""A redis-server and a PostgreSQL cluster of one's own (the fault tests and `bench/chaos.py`
kill and restart them; never the shared services): on a given port, data under a temporary
directory, PostgreSQL run as the `postgres` user when this runs as root (initdb refuses root)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time


class MissingBinary(RuntimeError):
    """redis-server or PostgreSQL's server binaries are not installed."""


def wait_for_port(port: int, *, up: bool, wait_s: float = 10.0) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            listening = s.connect_ex(("127.0.0.1", port)) == 0
        if listening == up:
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} is still {'down' if up else 'up'}")


class LocalRedis:
    """A redis-server without persistence (the production layout the fault reports describe):
    killed, it loses every key, as a restarted Redis does."""

    def __init__(self, port: int, prefix: str = "reliab-redis-") -> None:
        if shutil.which("redis-server") is None:
            raise MissingBinary("no redis-server on this machine")
        self.port = port
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, up=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        wait_for_port(self.port, up=False)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise MissingBinary(f"no PostgreSQL server binaries ({name}) on this machine")
    return found[-1]


class LocalPostgres:
    """A PostgreSQL cluster (initdb, trust, fsync off) on `port`."""

    def __init__(self, port: int, prefix: str = "reliab-pg-") -> None:
        self.port = port
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.data = os.path.join(self.dir, "data")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = os.path.join(self.dir, "log")
        self._run(pg_bin("pg_ctl"), "-D", self.data, "-o", options, "-l", log, "-w", "start")
        wait_for_port(self.port, up=True)

    def stop(self) -> None:
        """An immediate stop: every connection is cut, as when the server crashes."""
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run(pg_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
        wait_for_port(self.port, up=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
