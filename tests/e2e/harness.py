"""End-to-end harness: the emulators and the connector as real HTTP servers on free ports.

Only the outside world is fake (onOffice, Mailchimp and Brevo emulators); the connector runs
with its real database, queue and worker.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.config import Settings
from app.main import create_app
from devkit import kit
from devkit.kit import free_port

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_SECRET = "e2e-provider-secret"


class ServerThread:
    """An ASGI app served by uvicorn in a background thread (its own event loop)."""

    def __init__(self, app: Any, *, lifespan: str = "auto") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=lifespan
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def signed_query(base_url: str, path: str, params: Mapping[str, str]) -> dict[str, str]:
    return kit.signed_params(base_url + path, params, PROVIDER_SECRET)


@dataclass
class Tenant:
    web_id: str
    token: str
    secret: str
    claim: str
    group_id: str | None = None
    address_range: tuple[int, int] | None = None  # the ids its onOffice reads see (None: all)


@dataclass
class Connector:
    """The connector's API server (+ optional arq worker processes)."""

    settings: Settings
    env: dict[str, str]
    server: ServerThread
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.server.stop()


def connector_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    for name, value in settings.model_dump().items():
        if value is None:
            env.pop(name, None)
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name] = str(value.value if hasattr(value, "value") else value)
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_connector(settings: Settings, *, workers: int = 0) -> Connector:
    port = free_port()
    settings = settings.model_copy(update={"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"})
    server = ServerThread(create_app(settings))
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    server.server.config.port = port
    server.start()
    connector = Connector(settings=settings, env=connector_env(settings), server=server)
    for _ in range(workers):
        connector.start_worker()
    return connector


async def activate_tenant(
    client: httpx.AsyncClient, connector: Connector, onoffice_url: str, tenant: Tenant
) -> None:
    """The marketplace activation over HTTP: onOffice's signed page, then the form submit."""
    response = await kit.activate(
        client,
        api=connector.url,
        onoffice=onoffice_url,
        web_id=tenant.web_id,
        token=tenant.token,
        secret=tenant.secret,
        claim=tenant.claim,
        provider_secret=PROVIDER_SECRET,
        address_range=tenant.address_range,
    )
    assert response.text == "active", response.text


async def open_session(
    client: httpx.AsyncClient, connector: Connector, tenant: Tenant, **extra: str
) -> str:
    if tenant.group_id:
        extra["groupId"] = tenant.group_id
    response = await kit.open_session(
        client,
        api=connector.url,
        web_id=tenant.web_id,
        claim=tenant.claim,
        provider_secret=PROVIDER_SECRET,
        **extra,
    )
    assert response.is_success, response.text
    return str(response.json()["token"])


async def wait_for_run(
    client: httpx.AsyncClient, url: str, token: str, run_id: int, *, wait_s: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        response = await client.get(
            f"{url}/api/v1/syncs/{run_id}", headers={"Authorization": f"Bearer {token}"}
        )
        body: dict[str, Any] = response.json()
        if body.get("status") in ("completed", "failed", "cancelled"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} did not finish: {body}")
        await asyncio.sleep(0.2)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def connect_tenant(
    client: httpx.AsyncClient,
    connector: Connector,
    onoffice_url: str,
    tenant: Tenant,
    provider: str,
    api_key: str,
    activities: dict[str, bool] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Activation, session and `PUT /api/v1/connection`: what a customer does first."""
    await activate_tenant(client, connector, onoffice_url, tenant)
    token = await open_session(client, connector, tenant)
    saved = await client.put(
        f"{connector.url}/api/v1/connection",
        headers=auth(token),
        json={"provider": provider, "api_key": api_key, "activities": activities or {}},
    )
    assert saved.status_code == 200, saved.text
    body: dict[str, Any] = saved.json()
    return token, body


async def run_full_sync(
    client: httpx.AsyncClient, connector: Connector, token: str
) -> dict[str, Any]:
    """Start a full sync and wait for its end."""
    started = await client.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
    assert started.status_code == 202, started.text
    return await wait_for_run(client, connector.url, token, int(started.json()["id"]))
