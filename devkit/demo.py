"""`connector demo` (and `make run`): the whole product on one machine, with emulated services.

Starts the onOffice, Mailchimp and Brevo emulators (seeded with a realistic address book) and the
connector in embedded mode (SQLite, in-process jobs), then does what a new customer would do,
through the real HTTP API: activates a demo customer through the signed marketplace flow, signs
in as onOffice's iframe would, saves the Mailchimp connection and runs the first full sync with a
progress bar. It prints the summary and a signed iframe link, and keeps serving (Enter prints a
fresh link; the landing page at `/` has a button for one).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from rich.console import Console

from app.config import Environment, Settings
from app.ui.landing import DemoCustomer, demo_iframe_url
from devkit.kit import free_port, signed_params

DEMO_SECRET = "demo-provider-secret"
DEMO = DemoCustomer(customer_web_id="demo", customer_name="Demo Immobilien GmbH")
DEMO_TOKEN = "demotoken" + "0" * 23
DEMO_API_SECRET = "demosecret" + "0" * 54


def _server(app: Any, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )


def signed_app_url(base_url: str, secret: str = DEMO_SECRET, *, language: str = "de") -> str:
    return demo_iframe_url(base_url, secret, DEMO, language)


async def _activate(client: httpx.AsyncClient, base: str) -> str:
    params = {
        "apiToken": DEMO_TOKEN,
        "apiClaim": "demo-activation-claim",
        "customerName": DEMO.customer_name,
        "customerWebId": DEMO.customer_web_id,
        "userId": DEMO.user_id,
        "parameterCacheId": "demo-cache",
    }
    params = signed_params(f"{base}/onoffice/activate", params, DEMO_SECRET)
    answer = await client.post(
        f"{base}/onoffice/activate", data={**params, "secret": DEMO_API_SECRET}
    )
    return answer.text


async def _first_sync(
    client: httpx.AsyncClient, base: str, api_key: str, *, console: Console, lang: str
) -> Any:
    from app.console import follow_run, print_summary
    from app.syncs.schemas import SyncRunRead

    query = urlsplit(signed_app_url(base, language=lang)).query
    session = await client.post(f"{base}/api/v1/sessions", json={"query": query})
    session.raise_for_status()
    headers = {"Authorization": f"Bearer {session.json()['token']}"}
    saved = await client.put(
        f"{base}/api/v1/connection",
        json={"provider": "mailchimp", "api_key": api_key},
        headers=headers,
    )
    saved.raise_for_status()
    console.print(f"Mailchimp connection saved: list {saved.json().get('list_name')!r}")
    started = await client.post(f"{base}/api/v1/syncs", json={}, headers=headers)
    started.raise_for_status()
    run_id = started.json()["id"]

    async def fetch() -> SyncRunRead:
        answer = await client.get(f"{base}/api/v1/syncs/{run_id}", headers=headers)
        answer.raise_for_status()
        return SyncRunRead.model_validate(answer.json())

    run = await follow_run(fetch, console=console, lang=lang, interval_s=0.25)
    print_summary(console, run, lang=lang)
    return run


async def run_demo(
    *, port: int, addresses: int, database: Path, language: str, sync: bool = True
) -> None:
    from app.db.migrate import migrate
    from app.main import create_app
    from emulators.brevo import BrevoState
    from emulators.brevo import create_app as brevo_app
    from emulators.mailchimp import DEFAULT_API_KEY, MailchimpState
    from emulators.mailchimp import create_app as mailchimp_app
    from emulators.onoffice import Customer, OnOfficeState
    from emulators.onoffice import create_app as onoffice_app
    from emulators.onoffice_data import generate_address_book

    console = Console(highlight=False, width=max(100, shutil.get_terminal_size().columns))
    lang = "en" if language.upper().startswith("EN") else "de"
    onoffice, mailchimp, brevo = OnOfficeState(), MailchimpState(), BrevoState()
    onoffice.seed(generate_address_book(addresses, seed=1))
    onoffice.customers[DEMO_TOKEN] = Customer(DEMO_TOKEN, DEMO_API_SECRET, claim=DEMO.api_claim)
    onoffice.parameter_caches["demo-cache"] = "demo-activation-claim"
    brevo.add_account("demo-brevo-de", "de")
    brevo.add_account("demo-brevo-en", "en")
    ports = {name: free_port() for name in ("onoffice", "mailchimp", "brevo")}
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
        LOG_LEVEL="WARNING",
    )
    servers = [
        _server(onoffice_app(onoffice), ports["onoffice"]),
        _server(mailchimp_app(mailchimp), ports["mailchimp"]),
        _server(brevo_app(brevo), ports["brevo"]),
        _server(create_app(settings, demo=DEMO), port),
    ]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    try:
        while not all(s.started for s in servers):
            if any(task.done() for task in tasks):
                raise SystemExit(f"a server did not start (is port {port} free?)")
            await asyncio.sleep(0.05)
        console.print(f"[bold]onOffice Newsletter Connector demo[/bold] on {base}")
        console.print(
            f"onOffice emulator:  http://127.0.0.1:{ports['onoffice']} ({addresses:,} addresses)"
        )
        console.print(
            f"Mailchimp emulator: http://127.0.0.1:{ports['mailchimp']}  key {DEFAULT_API_KEY}"
        )
        console.print(
            f"Brevo emulator:     http://127.0.0.1:{ports['brevo']}  "
            "keys demo-brevo-de, demo-brevo-en"
        )
        async with httpx.AsyncClient(timeout=60) as client:
            console.print(f"Demo customer activated: {await _activate(client, base)}")
            if sync:
                await _first_sync(client, base, DEFAULT_API_KEY, console=console, lang=lang)
        console.print(f"\nLanding page:  {base}/   (a button there makes a fresh iframe link)")
        console.print(f"API docs:      {base}/docs")
        console.print("Open the connector as onOffice would (each link works once, for 5 minutes;")
        console.print("press Enter here for a fresh one, Ctrl-C to stop):\n")
        loop = asyncio.get_running_loop()
        while True:
            # Plain print: rich would wrap the long link.
            print(f"{signed_app_url(base, language=lang)}\n", flush=True)
            try:
                line = await loop.run_in_executor(None, input)
            except EOFError:  # no terminal: keep serving until stopped
                await asyncio.Event().wait()
            del line
    finally:
        for server in servers:
            server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks)
