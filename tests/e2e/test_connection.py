"""PUT/GET/DELETE /api/v1/connection against the emulators, embedded mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db.engine import create_engine
from app.db.models import Connection
from emulators.mailchimp import DEFAULT_API_KEY, Fault
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Connector,
    Tenant,
    activate_tenant,
    auth,
    open_session,
    start_connector,
)


@dataclass
class Session:
    connector: Connector
    token: str
    tenant: Tenant


@pytest.fixture
async def session(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Session]:
    connector = start_connector(e2e_settings)
    try:
        tenant = Tenant("C1", "c" * 32, "d" * 64, "claim-c")
        await activate_tenant(http, connector, world.onoffice_url, tenant)
        yield Session(connector, await open_session(http, connector, tenant), tenant)
    finally:
        connector.stop()


async def put(http: httpx.AsyncClient, s: Session, **body: object) -> httpx.Response:
    return await http.put(f"{s.connector.url}/api/v1/connection", headers=auth(s.token), json=body)


class TestSaveConnection:
    async def test_mailchimp_key_is_checked_prepared_and_stored_encrypted(
        self, world: World, session: Session, http: httpx.AsyncClient, database_url: str
    ) -> None:
        saved = await put(
            http,
            session,
            provider="mailchimp",
            api_key=DEFAULT_API_KEY,
            activities={"delivered": True},
        )
        assert saved.status_code == 200, saved.text
        body = saved.json()
        assert body["api_key"] == "****-us1"
        assert body["list_name"] == "onoffice" and body["webhook_registered"] is True
        assert body["activities"]["delivered"] is True
        lst = world.mailchimp.lists[body["list_id"]]
        assert lst.name == "onoffice"
        assert {"FNAME", "LNAME"} <= {f["tag"] for f in lst.merge_fields}
        (hook,) = lst.webhooks.values()
        assert hook["url"].startswith(f"{session.connector.url}/webhooks/mailchimp/")
        assert hook["sources"] == {"user": True, "admin": True, "api": False}

        fetched = await http.get(
            f"{session.connector.url}/api/v1/connection", headers=auth(session.token)
        )
        assert fetched.json()["api_key"] == "****-us1"
        assert DEFAULT_API_KEY not in fetched.text
        engine = create_engine(database_url)
        async with engine.connect() as conn:
            stored = (await conn.execute(select(Connection.api_key_encrypted))).scalar_one()
        await engine.dispose()
        assert DEFAULT_API_KEY.encode() not in stored

        # Saving again reuses the audience and the webhook.
        again = await put(http, session, provider="mailchimp", api_key=DEFAULT_API_KEY)
        assert again.json()["list_id"] == body["list_id"]
        assert len(lst.webhooks) == 1

    async def test_wrong_key_gets_an_actionable_message(
        self, session: Session, http: httpx.AsyncClient
    ) -> None:
        wrong = "ffffffffffffffffffffffffffffffff-us1"
        response = await put(http, session, provider="mailchimp", api_key=wrong)
        assert response.status_code == 400
        assert "Mailchimp rejected the API key" in response.json()["message"]
        assert wrong not in response.text

    async def test_key_with_a_forged_data_centre_is_refused(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        response = await put(http, session, provider="mailchimp", api_key="abc-us1.evil.com")
        assert response.status_code == 400
        assert sum(world.mailchimp.request_counts.values()) == 0

    async def test_free_plan_audience_limit_says_rename(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        world.mailchimp.max_lists = 1
        world.mailchimp.create_list("Newsletter")
        response = await put(http, session, provider="mailchimp", api_key=DEFAULT_API_KEY)
        assert response.status_code == 409
        assert "rename" in response.json()["message"].lower()

    async def test_provider_outage_links_the_status_page(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        world.mailchimp.faults.append(Fault(status=503, count=100))
        response = await put(http, session, provider="mailchimp", api_key=DEFAULT_API_KEY)
        assert response.status_code == 503
        assert response.json()["details"]["status_page"] == "https://status.mailchimp.com"
        assert "status.mailchimp.com" in response.json()["message"]

    async def test_brevo_registers_a_bearer_webhook(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        response = await put(http, session, provider="brevo", api_key="test-key-de")
        assert response.status_code == 200, response.text
        (hook,) = world.brevo.accounts["test-key-de"].webhooks.values()
        assert hook["url"].startswith(f"{session.connector.url}/webhooks/brevo/")
        token = hook["url"].rsplit("/", 1)[1]
        assert hook["auth"]["type"] == "bearer"
        # The bearer secret is separate from the URL token (issue 9).
        assert len(hook["auth"]["token"]) >= 32 and hook["auth"]["token"] != token

    async def test_unknown_provider_is_a_validation_error(
        self, session: Session, http: httpx.AsyncClient
    ) -> None:
        response = await put(http, session, provider="sendgrid", api_key="x")
        assert response.status_code == 422


class TestDeleteConnection:
    async def test_delete_removes_the_webhook_at_the_provider(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        saved = await put(http, session, provider="mailchimp", api_key=DEFAULT_API_KEY)
        lst = world.mailchimp.lists[saved.json()["list_id"]]
        assert len(lst.webhooks) == 1
        url = f"{session.connector.url}/api/v1/connection"
        deleted = await http.delete(url, headers=auth(session.token))
        assert deleted.status_code == 204
        assert lst.webhooks == {}
        assert (await http.get(url, headers=auth(session.token))).status_code == 404

    async def test_switching_provider_removes_the_old_webhook(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        saved = await put(http, session, provider="mailchimp", api_key=DEFAULT_API_KEY)
        lst = world.mailchimp.lists[saved.json()["list_id"]]
        switched = await put(http, session, provider="brevo", api_key="test-key-en")
        assert switched.status_code == 200
        assert lst.webhooks == {}

    async def test_unreachable_provider_blocks_delete_unless_forced(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        await put(http, session, provider="mailchimp", api_key=DEFAULT_API_KEY)
        world.mailchimp.faults.append(Fault(status=503, count=1000))
        url = f"{session.connector.url}/api/v1/connection"
        blocked = await http.delete(url, headers=auth(session.token))
        assert blocked.status_code == 503
        forced = await http.delete(url, headers=auth(session.token), params={"force": "true"})
        assert forced.status_code == 204


class TestGroups:
    async def test_each_group_has_its_own_connection(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        await put(http, session, provider="mailchimp", api_key=DEFAULT_API_KEY)
        grouped = Tenant(
            session.tenant.web_id,
            session.tenant.token,
            session.tenant.secret,
            session.tenant.claim,
            group_id="G7",
        )
        group_token = await open_session(http, session.connector, grouped)
        url = f"{session.connector.url}/api/v1/connection"
        assert (await http.get(url, headers=auth(group_token))).status_code == 404
        saved = await http.put(
            url, headers=auth(group_token), json={"provider": "brevo", "api_key": "test-key-de"}
        )
        assert saved.status_code == 200
        assert saved.json()["group_id"] == "G7"
        assert (await http.get(url, headers=auth(session.token))).json()["provider"] == "mailchimp"
        assert (await http.get(url, headers=auth(group_token))).json()["provider"] == "brevo"


class TestAuth:
    async def test_every_api_route_needs_a_session(
        self, session: Session, http: httpx.AsyncClient
    ) -> None:
        base = session.connector.url
        for method, path in (
            ("GET", "/api/v1/connection"),
            ("PUT", "/api/v1/connection"),
            ("POST", "/api/v1/syncs"),
            ("GET", "/api/v1/syncs/1"),
            ("GET", "/api/v1/status"),
        ):
            response = await http.request(method, base + path)
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"


class TestKeepKey:
    async def test_activities_change_without_the_key(
        self, world: World, session: Session, http: httpx.AsyncClient
    ) -> None:
        assert (await put(http, session, provider="mailchimp")).status_code == 422
        await put(http, session, provider="mailchimp", api_key=DEFAULT_API_KEY)
        changed = await put(http, session, provider="mailchimp", activities={"delivered": True})
        assert changed.status_code == 200, changed.text
        assert changed.json()["activities"]["delivered"] is True
        assert changed.json()["api_key"] == "****-us1"
        # Another provider needs its own key.
        assert (await put(http, session, provider="brevo")).status_code == 422
