"""The zero-setup path: SQLite and in-process jobs run the same full sync."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import httpx

from app.config import Settings
from app.db.migrate import migrate
from emulators.mailchimp import DEFAULT_API_KEY
from emulators.onoffice_data import generate_address_book
from tests.e2e.conftest import World
from tests.e2e.harness import (
    ROOT,
    Tenant,
    connect_tenant,
    run_full_sync,
    start_connector,
)
from tests.e2e.test_full_sync import expected_outcome


class TestEmbeddedMode:
    async def test_full_sync_on_sqlite_without_redis(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'embedded.db'}"
        await asyncio.to_thread(migrate, url)
        world.onoffice.seed(generate_address_book(1500, seed=5))
        expected = expected_outcome([a.to_dict() for a in world.onoffice.addresses.values()])
        connector = start_connector(
            e2e_settings.model_copy(update={"DATABASE_URL": url, "REDIS_URL": None})
        )
        try:
            tenant = Tenant("E1", "e" * 32, "f" * 64, "claim-e")
            token, saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
            )
            run = await run_full_sync(http, connector, token)
            assert run["status"] == "completed", run
            assert run["counts"]["synced"] == len(expected["owners"])
            assert run["counts"]["reconciled"] is True
            members = world.mailchimp.lists[saved["list_id"]].members.values()
            assert {m.email for m in members} == set(expected["owners"])
            ready = await http.get(f"{connector.url}/readyz")
            assert ready.status_code == 200
        finally:
            connector.stop()


class TestSyncCommand:
    async def test_connector_sync_runs_a_full_sync_and_prints_the_result(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        await asyncio.to_thread(migrate, url)
        world.onoffice.seed(generate_address_book(400, seed=9))
        expected = expected_outcome([a.to_dict() for a in world.onoffice.addresses.values()])
        connector = start_connector(
            e2e_settings.model_copy(update={"DATABASE_URL": url, "REDIS_URL": None})
        )
        try:
            tenant = Tenant("CLI", "g" * 32, "h" * 64, "claim-g")
            _token, _saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "brevo", "test-key-en"
            )
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.cli",
                "sync",
                "--customer",
                "CLI",
                "--wait",
                cwd=ROOT,
                env=connector.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode == 0, out
            text = out.decode()
            # The progress bars and the summary, as in the iframe.
            assert "Reading addresses" in text and "Sending batches" in text
            assert re.search(r"Synced\s+" + f"{len(expected['owners']):,}", text), text
            assert re.search(r"Totals reconcile\s+yes", text), text
            again = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.cli",
                "sync",
                "--customer",
                "CLI",
                "--json",
                cwd=ROOT,
                env=connector.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await asyncio.wait_for(again.communicate(), 120)
            text = out.decode()
            result = json.loads(text[text.index("{") :])
            assert result["status"] == "completed"
            assert result["counts"]["synced"] == len(expected["owners"])
            status = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.cli",
                "status",
                "--customer",
                "CLI",
                "--language",
                "DEU",
                cwd=ROOT,
                env=connector.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await asyncio.wait_for(status.communicate(), 60)
            text = out.decode()
            assert status.returncode == 0, text
            assert "Vom Connector angemeldet gehalten" in text and "abgeschlossen" in text, text
            assert "https://status.brevo.com" in text
            unknown = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.cli",
                "sync",
                "--customer",
                "nobody",
                cwd=ROOT,
                env=connector.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await unknown.communicate()
            assert unknown.returncode == 2 and b"no activated onOffice customer" in out
        finally:
            connector.stop()
