"""The agent's language over HTTP, and the problem list of a large address book."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from app.config import Settings
from app.db.base import utcnow
from app.db.engine import create_engine
from app.db.migrate import migrate
from app.db.models import Problem
from emulators.mailchimp import DEFAULT_API_KEY
from emulators.onoffice_data import generate_address_book
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    open_session,
    run_full_sync,
    start_connector,
)


async def session_in(
    http: httpx.AsyncClient, connector: Connector, tenant: Tenant, lang: str
) -> str:
    return await open_session(http, connector, tenant, UserLanguage=lang)


class TestLanguagesAndLargeProblemLists:
    async def test_german_and_english_and_20000_problems(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'lang.db'}"
        await asyncio.to_thread(migrate, url)
        world.onoffice.seed(generate_address_book(1200, seed=3))
        connector = start_connector(
            e2e_settings.model_copy(update={"DATABASE_URL": url, "REDIS_URL": None})
        )
        try:
            tenant = Tenant("L1", "l" * 32, "m" * 64, "claim-l")
            token, _saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
            )
            run = await run_full_sync(http, connector, token)
            assert run["status"] == "completed", run
            run_id = run["id"]
            de = await session_in(http, connector, tenant, "DEU")
            en = await session_in(http, connector, tenant, "ENG")
            base = f"{connector.url}/api/v1/syncs/{run_id}/problems"

            # Reasons by code, rendered per session language; the raw text stays the detail.
            german = (await http.get(f"{base}?kind=duplicate&limit=5", headers=auth(de))).json()
            english = (await http.get(f"{base}?kind=duplicate&limit=5", headers=auth(en))).json()
            assert german["items"] and german["total"] == run["counts"]["duplicates"]
            assert german["items"][0]["reason"].startswith("Gleiche E-Mail-Adresse wie Adresse")
            assert english["items"][0]["reason"].startswith("Same email as address")
            # A duplicate whose Newsletter values contradict the other addresses' says so.
            assert german["items"][0]["reason_code"] in ("duplicate", "duplicate_conflict")
            invalid = (await http.get(f"{base}?kind=invalid_email", headers=auth(de))).json()
            assert invalid["items"], invalid
            for item in invalid["items"]:
                # German only: the validator's English message is not shown as the detail.
                assert item["reason"].startswith(("Die", "Der")) and item["detail"] == ""
            invalid_en = (await http.get(f"{base}?kind=invalid_email", headers=auth(en))).json()
            for item in invalid_en["items"]:
                assert item["reason"] != item["detail"] and item["detail"]
            # The session's language wins over the browser's; API clients default to English.
            header = auth(de) | {"Accept-Language": "en"}
            missing = await http.get(f"{connector.url}/api/v1/syncs/999999", headers=header)
            assert missing.status_code == 404
            assert missing.json()["message"] == "Synchronisation 999999 wurde nicht gefunden."
            plain = await http.get(f"{connector.url}/api/v1/syncs/999999", headers=auth(token))
            assert plain.json()["message"] == "synchronisation 999999 not found"
            invalid_body = await http.post(
                f"{connector.url}/api/v1/syncs", headers=auth(de), json={"force": "maybe"}
            )
            assert invalid_body.status_code == 422
            assert invalid_body.json()["message"] == "Die Anfrage ist ungültig (Feld force)."
            csv_de = await http.get(f"{base}?format=csv&kind=duplicate", headers=auth(de))
            assert "Gleiche E-Mail-Adresse wie Adresse" in csv_de.text

            # 20,000 more problems: paging, filtering and searching stay fast.
            engine = create_engine(url)
            rows = [
                {
                    "run_id": run_id,
                    "address_id": 10_000_000 + i,
                    "email": f"bulk{i}@example.org",
                    "kind": "rejected" if i % 2 else "invalid_email",
                    "reason": "Mailchimp says no",
                    "reason_code": "provider_rejected" if i % 2 else "invalid_email.domain",
                    "created_at": utcnow(),
                }
                for i in range(20_000)
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(Problem), rows)
            await engine.dispose()
            for query, expect in [
                ("limit=50&offset=19950", None),
                ("limit=50&offset=5000&kind=rejected", None),
                ("limit=50&q=bulk12345%40", 1),
                ("limit=50&q=10012345", 1),
            ]:
                started = time.monotonic()
                page = await http.get(f"{base}?{query}", headers=auth(de))
                elapsed = time.monotonic() - started
                assert page.status_code == 200, page.text
                body = page.json()
                assert elapsed < 10.0, (query, elapsed)  # a hang guard, not a speed check
                if expect is not None:
                    assert body["total"] == expect, (query, body)
                    assert body["items"][0]["address_id"] == 10_012_345
                else:
                    assert len(body["items"]) == 50
            assert body["kinds"]["rejected"] >= 10_000
            page = (
                await http.get(f"{base}?kind=rejected&limit=1&offset=3", headers=auth(de))
            ).json()
            assert page["items"][0]["reason"] == "Vom Newsletter-Dienst abgelehnt."
            # A row stored without the provider's name: the original, labelled all the same.
            assert page["items"][0]["detail"] == (
                "Originalmeldung des Newsletter-Dienstes: Mailchimp says no"
            )
        finally:
            connector.stop()


class TestMetrics:
    async def test_labels_that_help(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}"
        await asyncio.to_thread(migrate, url)
        world.onoffice.seed(generate_address_book(300, seed=4))
        connector = start_connector(
            e2e_settings.model_copy(update={"DATABASE_URL": url, "REDIS_URL": None})
        )
        try:
            tenant = Tenant("M1", "n" * 32, "o" * 64, "claim-n")
            token, _saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
            )
            run = await run_full_sync(http, connector, token)
            assert run["status"] == "completed"
            text = (await http.get(f"{connector.url}/metrics")).text
        finally:
            connector.stop()
        assert 'connector_sync_runs_total{outcome="completed"}' in text
        assert 'connector_contacts_total{outcome="created",provider="mailchimp"}' in text
        # Provider and onOffice requests by service and a bounded endpoint template.
        assert (
            'connector_upstream_requests_total{endpoint="/lists/{id}",service="mailchimp"' in text
        )
        assert 'service="onoffice"' in text
        assert "connector_upstream_request_seconds_bucket" in text
        assert 'connector_queue_depth{queue="in_process"}' in text
        assert 'connector_pending_work{kind="inbound_failed"} 0.0' in text
        assert "connector_poll_lag_max_seconds" in text
        assert "@" not in "".join(line for line in text.splitlines() if "endpoint=" in line)
