"""Issue 21: rotating the webhook address without disconnecting (`POST
/api/v1/connection/webhook/rotate`), against the Mailchimp and Brevo emulators as real servers:
a new secret address is registered at the provider, the old webhook is removed there, the old
address (and Brevo's old bearer secret) is refused at once (no grace period) and the new one
takes events; the connection, its list and what was synced stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.config import Settings
from emulators.brevo import Fault as BrevoFault
from emulators.mailchimp import DEFAULT_API_KEY
from emulators.mailchimp import Fault as MailchimpFault
from tests.e2e.conftest import World
from tests.e2e.harness import Connector, Tenant, auth, connect_tenant, start_connector

BREVO_KEY = "test-key-de"


@dataclass
class Connected:
    connector: Connector
    token: str
    saved: dict[str, Any]


@pytest.fixture
async def connector(e2e_settings: Settings) -> AsyncIterator[Connector]:
    c = start_connector(e2e_settings)
    yield c
    c.stop()


async def connect(
    http: httpx.AsyncClient, world: World, connector: Connector, provider: str, key: str
) -> Connected:
    tenant = Tenant("R1", "r" * 32, "s" * 64, "claim-r")
    token, saved = await connect_tenant(http, connector, world.onoffice_url, tenant, provider, key)
    return Connected(connector, token, saved)


def hooks(world: World, provider: str, list_id: str) -> list[dict[str, Any]]:
    if provider == "mailchimp":
        return list(world.mailchimp.lists[list_id].webhooks.values())
    return list(world.brevo.accounts[BREVO_KEY].webhooks.values())


async def deliver(
    http: httpx.AsyncClient, provider: str, hook: dict[str, Any], email: str
) -> httpx.Response:
    """What the provider sends to a registered webhook (an unsubscribe)."""
    if provider == "mailchimp":
        form = {"type": "unsubscribe", "fired_at": "2026-12-07 08:00:00", "data[email]": email}
        form["data[list_id]"] = str(hook["list_id"])
        return await http.post(hook["url"], data=form)
    body = {"event": "unsubscribed", "email": email, "ts_event": 1796630400}
    headers = {"Authorization": f"Bearer {hook['auth']['token']}"}
    return await http.post(hook["url"], json=body, headers=headers)


async def rotate(http: httpx.AsyncClient, c: Connected, lang: str = "en") -> httpx.Response:
    return await http.post(
        f"{c.connector.url}/api/v1/connection/webhook/rotate",
        headers={**auth(c.token), "Accept-Language": lang},
    )


@pytest.mark.parametrize(
    ("provider", "key"), [("mailchimp", DEFAULT_API_KEY), ("brevo", BREVO_KEY)]
)
async def test_rotation_registers_a_new_address_and_refuses_the_old_one(
    world: World, connector: Connector, http: httpx.AsyncClient, provider: str, key: str
) -> None:
    c = await connect(http, world, connector, provider, key)
    list_id = c.saved["list_id"]
    (old,) = hooks(world, provider, list_id)
    assert (await deliver(http, provider, old, "before@example.de")).status_code == 200

    rotated = await rotate(http, c)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["list_id"] == list_id and rotated.json()["provider"] == provider
    (new,) = hooks(world, provider, list_id)  # the old webhook is gone at the provider
    assert new["url"] != old["url"] and new["id"] != old["id"]
    assert new["url"].startswith(f"{connector.url}/webhooks/{provider}/")
    if provider == "brevo":
        assert new["auth"]["token"] != old["auth"]["token"]

    # The old address is refused at once; the new one takes events.
    assert (await deliver(http, provider, old, "old@example.de")).status_code == 404
    assert (await deliver(http, provider, new, "new@example.de")).status_code == 200
    if provider == "brevo":
        # Brevo's old bearer secret does not open the new address either.
        stale = {**new, "auth": {"token": old["auth"]["token"]}}
        assert (await deliver(http, provider, stale, "x@example.de")).status_code == 401

    # Still connected to the same list; saving again keeps the rotated address.
    again = await http.put(
        f"{connector.url}/api/v1/connection",
        headers=auth(c.token),
        json={"provider": provider, "activities": {}},
    )
    assert again.status_code == 200, again.text
    (kept,) = hooks(world, provider, list_id)
    assert kept["url"] == new["url"]


@pytest.mark.parametrize(
    ("provider", "key"), [("mailchimp", DEFAULT_API_KEY), ("brevo", BREVO_KEY)]
)
async def test_when_the_old_webhook_cannot_be_removed_nothing_changes(
    world: World, connector: Connector, http: httpx.AsyncClient, provider: str, key: str
) -> None:
    c = await connect(http, world, connector, provider, key)
    list_id = c.saved["list_id"]
    (old,) = hooks(world, provider, list_id)
    if provider == "mailchimp":
        world.mailchimp.faults.append(
            MailchimpFault(400, path_contains=f"/webhooks/{old['id']}", method="DELETE")
        )
    else:
        world.brevo.faults.append(BrevoFault("DELETE", f"/webhooks/{old['id']}", 400, 1))
    refused = await rotate(http, c, "de")
    assert refused.status_code == 502, refused.text
    assert "alte Webhook-Adresse" in refused.json()["message"]
    (still,) = hooks(world, provider, list_id)  # the new webhook was removed again
    assert still["url"] == old["url"]
    assert (await deliver(http, provider, old, "still@example.de")).status_code == 200
