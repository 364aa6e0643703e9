"""Issue 21, data protection: `connector forget` erases a person from every table (and, on
request, at the provider); the retention purge deletes settled events and old runs' details;
a deactivated customer's data is purged after the grace period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, text, update

from app.config import Settings
from app.db.base import Base, utcnow
from app.db.engine import create_engine
from app.db.models import InboundEvent, SyncRun
from app.privacy.service import forget, purge_expired
from app.resources import create_resources
from app.tenants.revocation import deactivate
from tests.e2e.conftest import World
from tests.e2e.harness import run_full_sync
from tests.e2e.test_incremental import (  # noqa: F401  (the fixture)
    Synced,
    address_saved,
    member,
    synced,
    unsubscribe_at_mailchimp,
)
from tests.e2e.test_webhooks import eventually, newsletter


async def rows_mentioning(database_url: str, needle: str) -> dict[str, int]:
    """Per table, how many rows hold `needle` in any column (as text)."""
    engine = create_engine(database_url)
    found: dict[str, int] = {}
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = (await conn.execute(select(table))).all()
                hits = sum(1 for row in rows if needle in str(tuple(row)).lower())
                if hits:
                    found[table.name] = hits
    finally:
        await engine.dispose()
    return found


async def count(database_url: str, sql: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(sql)) or 0)
    finally:
        await engine.dispose()


async def test_forget_erases_the_person_everywhere_and_at_the_provider(
    world: World,
    synced: Synced,  # noqa: F811
    http: httpx.AsyncClient,
    e2e_settings: Settings,
    database_url: str,
) -> None:
    anna = "anna@example.de"
    assert (await unsubscribe_at_mailchimp(http, world, synced, anna)).status_code == 200
    await eventually(lambda: newsletter(world, 1) == "0", "the opt-out reached onOffice")
    assert (await address_saved(http, synced, 1)).status_code == 200
    before = await rows_mentioning(database_url, anna)
    assert {"contact", "inbound_event"} <= set(before), before

    resources = await create_resources(e2e_settings)
    try:
        result = await forget(
            resources, synced.tenant.web_id, " Anna@Example.de ", delete_at_provider=True
        )
    finally:
        await resources.aclose()
    assert result.found and result.deleted_at_provider == 1
    assert await rows_mentioning(database_url, anna) == {}
    # onOffice events are found by the person's address ids (they carry no email).
    assert (
        await count(database_url, "SELECT count(*) FROM inbound_event WHERE source = 'onoffice'")
        == 0
    )
    assert member(world, synced.list_id, anna) is None
    assert anna in world.mailchimp.lists[synced.list_id].forgotten
    # Bob is untouched.
    assert "contact" in await rows_mentioning(database_url, "bob@example.de")
    assert member(world, synced.list_id, "bob@example.de") is not None


async def test_retention_purges_settled_events_and_old_runs_details_then_cancelled_customers(
    world: World,
    synced: Synced,  # noqa: F811
    http: httpx.AsyncClient,
    e2e_settings: Settings,
    database_url: str,
) -> None:
    assert (
        await unsubscribe_at_mailchimp(http, world, synced, "bob@example.de")
    ).status_code == 200
    await eventually(lambda: newsletter(world, 2) == "0", "the opt-out reached onOffice")
    second = await run_full_sync(http, synced.connector, synced.token)
    assert second["status"] == "completed", second
    engine = create_engine(database_url)
    long_ago = utcnow() - timedelta(days=400)
    async with engine.begin() as conn:
        first = await conn.scalar(select(SyncRun.id).order_by(SyncRun.id))
        await conn.execute(
            text(
                "INSERT INTO problem (run_id, address_id, email, kind, reason, reason_code, "
                "created_at) VALUES (:r, 9, 'old@example.de', 'invalid_email', 'x', '', :t)"
            ),
            {"r": first, "t": long_ago},
        )
        await conn.execute(update(SyncRun).where(SyncRun.id == first).values(finished_at=long_ago))
        # A settled event and a pending one, both old; a finished run that is not the latest.
        await conn.execute(update(InboundEvent).values(received_at=long_ago))
        await conn.execute(
            text(
                "INSERT INTO inbound_event (source, dedupe_key, payload, status, attempts, "
                "received_at) VALUES ('mailchimp', 'pending-old', '{}', 'pending', 0, :t)"
            ),
            {"t": long_ago},
        )
        latest = await conn.scalar(select(SyncRun.id).order_by(SyncRun.id.desc()))
    await engine.dispose()
    problems_before = await count(
        database_url, f"SELECT count(*) FROM problem WHERE run_id = {latest}"
    )

    resources = await create_resources(e2e_settings)
    try:
        purged = await purge_expired(resources)
        # The old run's details are gone; the latest finished run keeps its own.
        assert purged.runs == 1
        assert "old@example.de" not in str(await rows_mentioning(database_url, "old@example.de"))
        assert await rows_mentioning(database_url, "old@example.de") == {}
        assert (
            await count(database_url, f"SELECT count(*) FROM problem WHERE run_id = {latest}")
            == problems_before
        )
        assert (
            await count(database_url, "SELECT count(*) FROM inbound_event WHERE status = 'applied'")
            == 0
        )
        assert (
            await count(database_url, "SELECT count(*) FROM inbound_event WHERE status = 'pending'")
            == 1
        )

        # A cancelled customer: kept during the grace period, then every row is gone.
        await deactivate(resources, synced.tenant.web_id, "cancelled")
        assert (await purge_expired(resources)).tenants == []
        later = utcnow() + timedelta(days=e2e_settings.TENANT_PURGE_GRACE_DAYS + 1)
        assert (await purge_expired(resources, now=later)).tenants == [synced.tenant.web_id]
    finally:
        await resources.aclose()
    leftovers: dict[str, Any] = {}
    for table in ("tenant", "connection", "sync_run", "contact", "provider_member", "problem"):
        leftovers[table] = await count(database_url, f"SELECT count(*) FROM {table}")
    assert set(leftovers.values()) == {0}, leftovers
