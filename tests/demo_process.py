"""Start the demo (`make run` / `connector demo`) as a real process and read what it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"^(http://127\.0\.0\.1:\d+/onoffice/app\?\S+)$")


class DemoProcess:
    """The demo in its own process group; `lines` collects its console output."""

    def __init__(self, argv: list[str], port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self._link = threading.Event()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.pop("ONOFFICE_PROVIDER_SECRET", None)
        env["COLUMNS"] = "120"
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group: make and the connector stop together
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if LINK.match(line.strip()):
                self._link.set()

    def wait_for_link(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while not self._link.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the demo printed no iframe link:\n" + self.output)
        return next(m.group(1) for line in self.lines if (m := LINK.match(line.strip())))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def demo_without_sync(database: Path, port: int, addresses: int) -> Iterator[DemoProcess]:
    """A `connector demo --no-sync` process for a module's browser tests (a fixture's body):
    started, its link awaited, stopped afterwards."""
    argv = [sys.executable, "-m", "app.cli", "demo", "--port", str(port)]
    argv += ["--addresses", str(addresses), "--database", str(database), "--no-sync"]
    process = DemoProcess(argv, port)
    try:
        process.wait_for_link(120)
        yield process
    finally:
        process.stop()
