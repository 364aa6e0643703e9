"""An emulator as its own process on a free port, for tests that need several client processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devkit.kit import free_port


@contextmanager
def emulator_process(module: str, args: list[str], ready_path: str, log: Path) -> Iterator[str]:
    """Run `python -m <module> --port P <args>`; yields its base URL once `ready_path` answers."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *args],
            cwd=os.getcwd(),
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}{ready_path}", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        out.flush()
                        raise RuntimeError(f"{module} did not start: {log.read_text()}") from None
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)
