"""Signed URLs (tampered, stale, future, replayed, wrong secret), tenant and group isolation by
id, run and cursor ids beyond BIGINT, and the problems CSV (issue 9)."""

from __future__ import annotations

import csv
import io
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.security.conftest import BREVO_KEYS, World, bearer, signed_query, tenant


class TestSignedUrls:
    @pytest.mark.parametrize("route", ["/onoffice/app", "/onoffice/activate"])
    async def test_tampered_stale_future_and_foreign_signatures_are_refused(
        self, world: World, route: str
    ) -> None:
        t = tenant(1)
        await world.activate(t)
        params = {"customerWebId": t.web_id, "userId": "17", "apiClaim": t.claim, "apiToken": "x"}
        now = int(time.time())
        bad = {
            "tampered": signed_query(route, params).replace("userId=17", "userId=18"),
            "stale": signed_query(route, {**params, "timestamp": str(now - 3600)}),
            "future": signed_query(route, {**params, "timestamp": str(now + 3600)}),
            "wrong secret": signed_query(route, params, secret="not-the-provider-secret"),
            "other host": signed_query(route, params, base="https://evil.test"),
            "unsigned": f"customerWebId={t.web_id}&timestamp={now}",
        }
        for what, query in bad.items():
            response = await world.client.get(f"{route}?{query}")
            assert response.status_code == 401, what

    async def test_a_replayed_iframe_query_is_refused(self, world: World) -> None:
        t = tenant(1)
        await world.activate(t)
        query = world.iframe_query(t)
        assert (await world.client.get(f"/onoffice/app?{query}")).status_code == 200
        assert (await world.client.get(f"/onoffice/app?{query}")).status_code == 401
        first = await world.client.post("/api/v1/sessions", json={"query": query})
        assert first.status_code == 201
        again = await world.client.post("/api/v1/sessions", json={"query": query})
        assert again.status_code == 401


async def add_run(engine: AsyncEngine, connection_id: int, *problems: tuple[str, str]) -> int:
    async with engine.begin() as conn:
        run_id = int(
            (
                await conn.execute(
                    text(
                        "INSERT INTO sync_run (connection_id, kind, force, status, phase, "
                        "read_offset, reading_done, addresses_read, batches_total, batches_done, "
                        "chunks_total, open_batch_size, onoffice_newsletter_total, created, "
                        "updated, unchanged, synced_unspecified, duplicates, invalid_emails, "
                        "missing_emails, rejected, tags_pulled, unsubscribed, tags_offset, "
                        "created_at, updated_at) VALUES (:c, 'full', false, 'completed', 'done', "
                        "0, true, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, now(), now()) "
                        "RETURNING id"
                    ),
                    {"c": connection_id},
                )
            ).scalar_one()
        )
        for i, (email, reason) in enumerate(problems, start=1):
            await conn.execute(
                text(
                    "INSERT INTO problem (run_id, address_id, email, kind, reason, created_at) "
                    "VALUES (:r, :a, :e, 'invalid_email', :why, now())"
                ),
                {"r": run_id, "a": i, "e": email, "why": reason},
            )
    return run_id


async def connection_ids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT id FROM connection ORDER BY id"))).scalars())


class TestIsolation:
    async def test_another_tenants_run_is_404_by_id(
        self, world: World, engine: AsyncEngine
    ) -> None:
        token_a, _, _ = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        token_b, _, _ = await world.tenant_with_brevo(2, BREVO_KEYS[1])
        conn_a, _conn_b = await connection_ids(engine)
        run_a = await add_run(engine, conn_a, ("a@example.de", "x"))
        assert (
            await world.client.get(f"/api/v1/syncs/{run_a}", headers=bearer(token_a))
        ).status_code == 200
        for path in (f"/api/v1/syncs/{run_a}", f"/api/v1/syncs/{run_a}/problems"):
            response = await world.client.get(path, headers=bearer(token_b))
            assert response.status_code == 404, path
        csv_b = await world.client.get(
            f"/api/v1/syncs/{run_a}/problems?format=csv", headers=bearer(token_b)
        )
        assert csv_b.status_code == 404

    async def test_another_groups_run_is_404_by_id(self, world: World, engine: AsyncEngine) -> None:
        t = tenant(1)
        await world.activate(t)
        token_g1 = await world.session(t, groupId="1")
        await world.connect_brevo(token_g1, BREVO_KEYS[0])
        token_g2 = await world.session(t, groupId="2")
        (conn_g1,) = await connection_ids(engine)
        run = await add_run(engine, conn_g1)
        assert (
            await world.client.get(f"/api/v1/syncs/{run}", headers=bearer(token_g1))
        ).status_code == 200
        assert (
            await world.client.get(f"/api/v1/syncs/{run}", headers=bearer(token_g2))
        ).status_code == 404
        assert (
            await world.client.get("/api/v1/connection", headers=bearer(token_g2))
        ).status_code == 404

    async def test_ids_beyond_bigint_are_422_not_500(self, world: World) -> None:
        token, _, _ = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        for path in (
            f"/api/v1/syncs/{2**63}",
            f"/api/v1/syncs/{2**64}/problems",
            f"/api/v1/syncs/1/problems?after={2**63}",
        ):
            response = await world.client.get(path, headers=bearer(token))
            assert response.status_code == 422, (path, response.text)


class TestProblemsCsv:
    async def test_formula_cells_are_neutralised(self, world: World, engine: AsyncEngine) -> None:
        token, _, _ = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        (conn_id,) = await connection_ids(engine)
        dangerous = [
            '=HYPERLINK("http://evil.test","click")',
            "+49 123",
            "-2+3",
            "@SUM(A1)",
            "\tx@example.de",
            "\rx@example.de",
        ]
        run = await add_run(
            engine, conn_id, *[(d, d) for d in dangerous], ("ok@example.de", "fine")
        )
        response = await world.client.get(
            f"/api/v1/syncs/{run}/problems?format=csv", headers=bearer(token)
        )
        rows = list(csv.reader(io.StringIO(response.text)))
        cells = {(r[1], r[3]) for r in rows[1:]}
        assert cells == {("'" + d, "'" + d) for d in dangerous} | {("ok@example.de", "fine")}
