"""The request's transaction commits before the response is sent."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from sqlalchemy import func, select

from app.config import Settings
from app.db.models import Tenant
from app.deps import SessionDep
from app.main import create_app
from tests.conftest import running_app
from tests.e2e.harness import ServerThread

router = APIRouter()


@router.post("/_test/tenants/{web_id}")
async def add_tenant(web_id: str, session: SessionDep) -> dict[str, str]:
    # Not flushed here: a unique violation only surfaces at commit time.
    session.add(Tenant(customer_web_id=web_id))
    return {"status": "created"}


@router.get("/_test/tenants")
async def count_tenants(session: SessionDep) -> dict[str, int]:
    return {"count": int(await session.scalar(select(func.count()).select_from(Tenant)) or 0)}


class TestRequestTransaction:
    async def test_a_failing_commit_is_not_answered_with_success(self, settings: Settings) -> None:
        """Over a real socket: what the client sees is what was committed."""
        app = create_app(settings)
        app.include_router(router)
        server = ServerThread(app).start()
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.post("/_test/tenants/A")).status_code == 200
                # The duplicate fails at commit: the client must not be told "created".
                response = await client.post("/_test/tenants/A")
                assert response.status_code == 500
                assert response.json()["error"] == "internal_error"
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/_test/tenants")).json() == {"count": 1}
        finally:
            server.stop()

    async def test_a_committed_change_is_visible_to_the_next_request(
        self, settings: Settings
    ) -> None:
        app = create_app(settings)
        app.include_router(router)
        async with running_app(app) as client:
            for i in range(20):
                assert (await client.post(f"/_test/tenants/T{i}")).status_code == 200
                assert (await client.get("/_test/tenants")).json() == {"count": i + 1}
