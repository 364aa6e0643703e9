"""`python -m emulators.onoffice` serves the API over real TCP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from emulators.onoffice import DEFAULT_SECRET, DEFAULT_TOKEN
from onoffice_client.client import OnOfficeClient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.onoffice", "--port", str(port), "--seed-addresses", "40"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/_control/state?addresses=false", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    pytest.fail(
                        f"emulator exited: {process.stderr.read() if process.stderr else ''!r}"
                    )
                time.sleep(0.1)
        else:
            pytest.fail("emulator did not start within 30 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_client_over_tcp(server: str) -> None:
    async with OnOfficeClient(
        api_url=f"{server}/api/stable/api.php", token=DEFAULT_TOKEN, secret=DEFAULT_SECRET
    ) as client:
        addresses = await client.get_addresses(list(range(1, 41)))
        kinds = await client.get_action_kinds()
    assert len(addresses) == 40
    assert kinds
