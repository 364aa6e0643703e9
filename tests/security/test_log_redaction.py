"""Logs carry no secrets (issue 9): a real uvicorn server with its access log on, a full
activation, iframe, session, connection and webhook flow, then every captured line is checked."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from app.config import Settings
from app.logging import configure_logging, redact, webhook_token_ref
from app.main import create_app
from devkit.kit import free_port
from emulators.brevo import BrevoState
from emulators.brevo import create_app as create_brevo
from emulators.onoffice import Customer, OnOfficeState
from emulators.onoffice import create_app as create_onoffice
from tests.security.conftest import BREVO_URL, ONOFFICE_URL, signed_query, tenant, world_settings


class Server:
    def __init__(self, app: object, port: int) -> None:
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=port,
            log_config=None,  # as `connector serve`: uvicorn logs through our JSON handler
            log_level="info",
            access_log=True,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @classmethod
    def running(cls, app: object, port: int) -> Iterator[Server]:
        server = cls(app, port)
        server.thread.start()
        deadline = time.monotonic() + 20
        while not server.server.started:
            assert time.monotonic() < deadline and server.thread.is_alive()
            time.sleep(0.02)
        try:
            yield server
        finally:
            server.server.should_exit = True
            server.thread.join(timeout=20)


def test_redact_keeps_paths_and_names_but_no_values() -> None:
    line = 'GET /onoffice/activate?apiToken=abc&apiClaim=x%2B&signature=ff HTTP/1.1" 200'
    assert (
        redact(line)
        == 'GET /onoffice/activate?apiToken=***&apiClaim=***&signature=*** HTTP/1.1" 200'
    )
    assert redact("POST /webhooks/brevo/s3cr3t HTTP/1.1") == (
        f"POST /webhooks/brevo/{webhook_token_ref('s3cr3t')} HTTP/1.1"
    )
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert redact("wrong or rotated key?)") == "wrong or rotated key?)"


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    yield buffer
    configure_logging("WARNING")


async def test_a_full_flow_leaves_no_secret_in_the_logs(
    settings: Settings, log_buffer: io.StringIO
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    onoffice, brevo = OnOfficeState(), BrevoState()
    brevo.add_account("brevo-provider-key-0001", "de")
    outbound = httpx.AsyncClient(
        mounts={
            ONOFFICE_URL: httpx.ASGITransport(app=create_onoffice(onoffice)),
            BREVO_URL: httpx.ASGITransport(app=create_brevo(brevo)),
        }
    )
    app_settings = world_settings(settings, PUBLIC_BASE_URL=base, LOG_LEVEL="INFO")
    t = tenant(1)
    onoffice.customers[t.api_token] = Customer(
        token=t.api_token, secret=t.api_secret, claim=t.claim
    )
    onoffice.parameter_caches["cache-1"] = "activation-claim-secret"
    secrets: list[str] = [t.api_token, t.api_secret, t.claim, "activation-claim-secret"]

    for _server in Server.running(create_app(app_settings, http=outbound), port):
        configure_logging("INFO", stream=log_buffer)  # after the lifespan set up stderr
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            activation = signed_query(
                "/onoffice/activate",
                {
                    "apiToken": t.api_token,
                    "apiClaim": "activation-claim-secret",
                    "customerName": "Makler",
                    "customerWebId": t.web_id,
                    "userId": "17",
                    "parameterCacheId": "cache-1",
                },
                base=base,
            )
            page = await client.get(f"/onoffice/activate?{activation}")
            assert page.status_code == 200
            form = {**dict(httpx.QueryParams(activation)), "secret": t.api_secret}
            assert (await client.post("/onoffice/activate", data=form)).text == "active"
            iframe = signed_query(
                "/onoffice/app",
                {"customerWebId": t.web_id, "userId": "17", "apiClaim": t.claim},
                base=base,
            )
            assert (await client.get(f"/onoffice/app?{iframe}")).status_code == 200
            session_query = signed_query(
                "/onoffice/app",
                {"customerWebId": t.web_id, "userId": "17", "apiClaim": t.claim, "n": "2"},
                base=base,
            )
            created = await client.post("/api/v1/sessions", json={"query": session_query})
            token = created.json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            saved = await client.put(
                "/api/v1/connection",
                headers=headers,
                json={"provider": "brevo", "api_key": "brevo-provider-key-0001"},
            )
            assert saved.status_code == 200, saved.text
            (hook,) = brevo.accounts["brevo-provider-key-0001"].webhooks.values()
            hook_path = httpx.URL(hook["url"]).path
            bearer_secret = hook["auth"]["token"]
            event = {"event": "unsubscribed", "email": "anna@example.de", "ts_event": 1795770000}
            stored = await client.post(
                hook_path, json=event, headers={"Authorization": f"Bearer {bearer_secret}"}
            )
            assert stored.status_code == 200
            wrong = await client.post(
                hook_path + "x", json=event, headers={"Authorization": f"Bearer {bearer_secret}"}
            )
            assert wrong.status_code == 404
            hook_query = signed_query(
                "/onoffice/webhook",
                {"customerWebId": t.web_id, "userId": "17", "apiClaim": t.claim, "recordId": "5"},
                base=base,
            )
            assert (await client.get(f"/onoffice/webhook?{hook_query}")).status_code == 200
            assert (await client.get("/api/v1/session", headers=headers)).status_code == 200
        await asyncio.sleep(0.2)

    url_token = hook_path.rsplit("/", 1)[1]
    signatures = [
        dict(httpx.QueryParams(q))["signature"]
        for q in (activation, iframe, session_query, hook_query)
    ]
    secrets += [token, url_token, bearer_secret, "brevo-provider-key-0001", "test-provider-secret"]
    secrets += signatures
    output = log_buffer.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    access = [line["event"] for line in lines if line["logger"] == "uvicorn.access"]
    assert any("/onoffice/activate?" in a and "apiToken=***" in a for a in access), access
    assert any(webhook_token_ref(url_token) in line for line in access), access
    for secret in secrets:
        for variant in {secret, urlencode({"x": secret})[2:]}:
            assert variant not in output, f"{secret!r} found in the logs"
