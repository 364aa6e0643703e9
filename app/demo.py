"""`connector demo`: the whole product on one machine, with emulated onOffice and providers.

Starts the onOffice, Mailchimp and Brevo emulators (seeded with a realistic address book), the
connector in embedded mode (SQLite, in-process jobs), activates a demo customer through the real
signed marketplace flow and prints the iframe URL to open in a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn

from app.config import Environment, Settings

DEMO_SECRET = "demo-provider-secret"
DEMO_CUSTOMER = "demo"
DEMO_TOKEN = "demotoken" + "0" * 23
DEMO_API_SECRET = "demosecret" + "0" * 54
DEMO_CLAIM = "demo-claim"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(app: Any, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )


def signed_app_url(base_url: str, secret: str, **extra: str) -> str:
    from onoffice_client.signature import sign_url_params

    params = {
        "customerWebId": DEMO_CUSTOMER,
        "customerName": "Demo Immobilien GmbH",
        "userId": "1",
        "apiClaim": DEMO_CLAIM,
        "timestamp": str(int(time.time())),
        **extra,
    }
    params["signature"] = sign_url_params(f"{base_url}/onoffice/app", params, secret)
    return f"{base_url}/onoffice/app?{urlencode(params)}"


async def run_demo(*, port: int, addresses: int, database: Path, language: str) -> None:
    from app.cli import migrate
    from app.main import create_app
    from emulators.brevo import BrevoState
    from emulators.brevo import create_app as brevo_app
    from emulators.mailchimp import DEFAULT_API_KEY, MailchimpState
    from emulators.mailchimp import create_app as mailchimp_app
    from emulators.onoffice import Customer, OnOfficeState
    from emulators.onoffice import create_app as onoffice_app
    from emulators.onoffice_data import generate_address_book
    from onoffice_client.signature import sign_url_params

    onoffice, mailchimp, brevo = OnOfficeState(), MailchimpState(), BrevoState()
    onoffice.seed(generate_address_book(addresses, seed=1))
    onoffice.customers[DEMO_TOKEN] = Customer(DEMO_TOKEN, DEMO_API_SECRET, claim=DEMO_CLAIM)
    onoffice.parameter_caches["demo-cache"] = "demo-activation-claim"
    brevo.add_account("demo-brevo-de", "de")
    brevo.add_account("demo-brevo-en", "en")
    ports = {name: _free_port() for name in ("onoffice", "mailchimp", "brevo")}
    base = f"http://127.0.0.1:{port}"
    await asyncio.to_thread(database.unlink, missing_ok=True)
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(migrate, url)
    settings = Settings(
        ENV=Environment.development,
        DATABASE_URL=url,
        REDIS_URL=None,
        PUBLIC_BASE_URL=base,
        ONOFFICE_PROVIDER_SECRET=DEMO_SECRET,
        ONOFFICE_API_URL=f"http://127.0.0.1:{ports['onoffice']}/api/stable/api.php",
        MAILCHIMP_API_URL=f"http://127.0.0.1:{ports['mailchimp']}/3.0",
        BREVO_API_URL=f"http://127.0.0.1:{ports['brevo']}/v3",
        BREVO_PROCESS_POLL_S=0.5,
    )
    servers = [
        _server(onoffice_app(onoffice), ports["onoffice"]),
        _server(mailchimp_app(mailchimp), ports["mailchimp"]),
        _server(brevo_app(brevo), ports["brevo"]),
        _server(create_app(settings), port),
    ]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    try:
        while not all(s.started for s in servers):  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.05)
        params = {
            "apiToken": DEMO_TOKEN,
            "apiClaim": "demo-activation-claim",
            "customerName": "Demo Immobilien GmbH",
            "customerWebId": DEMO_CUSTOMER,
            "userId": "1",
            "parameterCacheId": "demo-cache",
            "timestamp": str(int(time.time())),
        }
        params["signature"] = sign_url_params(f"{base}/onoffice/activate", params, DEMO_SECRET)
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{base}/onoffice/activate", data={**params, "secret": DEMO_API_SECRET}
            )
        print(f"\nDemo customer activated: {answer.text}")
        print(f"onOffice emulator:  http://127.0.0.1:{ports['onoffice']} ({addresses} addresses)")
        print(f"Mailchimp emulator: http://127.0.0.1:{ports['mailchimp']}  key {DEFAULT_API_KEY}")
        keys = "demo-brevo-de, demo-brevo-en"
        print(f"Brevo emulator:     http://127.0.0.1:{ports['brevo']}  keys {keys}")
        print(f"API docs:           {base}/docs\n")
        print("Open the connector as onOffice would (each link works once, for 5 minutes;")
        print("press Enter here for a fresh one, Ctrl-C to stop):\n")
        loop = asyncio.get_running_loop()
        while True:
            print(signed_app_url(base, DEMO_SECRET, UserLanguage=language) + "\n", flush=True)
            try:
                await loop.run_in_executor(None, input)
            except EOFError:  # no terminal: keep serving until stopped
                await asyncio.Event().wait()
    finally:
        for server in servers:
            server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks)


async def run_sync(*, customer: str, group: str, force: bool, wait: bool) -> int:
    """Start a full sync for one connection from the command line and report its outcome."""
    from app.config import get_settings
    from app.resources import create_resources
    from app.syncs.repository import SyncRepository
    from app.syncs.service import sync as sync_service
    from app.tenants.auth import TenantContext
    from app.tenants.repository import TenantRepository
    from app.worker.queue import InProcessQueue
    from app.worker.registry import load_tasks

    load_tasks()
    resources = await create_resources(get_settings())
    try:
        async with resources.transaction() as session:
            tenant = await TenantRepository.from_session(session).get_by_customer_web_id(customer)
            if tenant is None:
                print(f"error: no activated onOffice customer {customer!r}")
                return 2
            context = TenantContext(tenant.id, customer, group, "cli")
            run = await sync_service.start(session, context, force=force)
        print(f"sync {run.id} queued")
        if not wait and not isinstance(resources.queue, InProcessQueue):
            return 0
        while True:
            if isinstance(resources.queue, InProcessQueue):
                await resources.queue.join()
            async with resources.sessionmaker() as session:
                current = await SyncRepository.from_session(session).get_run(run.id)
            assert current is not None
            if current.status in ("completed", "failed"):
                view = sync_service.to_read(current)
                print(view.model_dump_json(indent=2))
                return 0 if current.status == "completed" else 1
            await asyncio.sleep(1)
    finally:
        await resources.aclose()
