"""The onOffice emulator hosting several customers: per-customer address ranges, and the log of
reads by modification time (used by bench/tenants.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from emulators.onoffice import DEFAULT_TOKEN, OnOfficeState
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import ActivityCreate
from tests.onoffice.conftest import ClientFactory


def book(ids: range) -> list[dict[str, object]]:
    return [
        {"id": i, "KdNr": i, "Name": f"N{i}", "Email": f"p{i}@example.de", "newsletter_aktiv": "1"}
        for i in ids
    ]


async def test_a_customer_with_an_address_range_reads_only_its_own_addresses(
    state: OnOfficeState, http: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    state.seed(book(range(1, 11)))
    await http.post(
        "/_control/customers",
        json={"token": "tok-a", "secret": "sec-a", "address_range": [3, 5]},
    )
    scoped: OnOfficeClient = make_client(token="tok-a", secret="sec-a")
    ids = [a.id async for page in scoped.iter_newsletter_addresses() for a in page]
    assert ids == [3, 4, 5]
    assert [a.id for a in await scoped.find_addresses_by_email("p7@example.de")] == []
    everyone = [a.id async for page in make_client().iter_newsletter_addresses() for a in page]
    assert everyone == list(range(1, 11))


async def test_reads_by_modification_time_are_logged_per_token(
    state: OnOfficeState, http: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    state.seed(book(range(1, 3)))
    client = make_client()
    [a async for a in client.iter_newsletter_addresses()]
    assert (await http.get("/_control/change-reads")).json() == {}
    [a async for a in client.iter_changed_addresses(datetime.now(UTC))]
    log = (await http.get("/_control/change-reads")).json()
    assert list(log) == [DEFAULT_TOKEN] and len(log[DEFAULT_TOKEN]) == 1
    later = log[DEFAULT_TOKEN][0] + 1
    assert (await http.get("/_control/change-reads", params={"since": later})).json() == {
        DEFAULT_TOKEN: []
    }


async def test_the_activity_log_lists_each_new_activity_once_with_its_creation_time(
    state: OnOfficeState, http: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    state.seed(book(range(1, 4)))
    client = make_client()
    kind = state.action_kinds[0]["key"]
    before = time.time()
    await client.create_activities([ActivityCreate(address_ids=[1, 2], kind=kind, note="a")])
    first = (await http.get("/_control/activity-log")).json()
    assert [e[0] for e in first["entries"]] == [1, 2] and first["next"] == 2
    assert all(before <= e[1] <= time.time() for e in first["entries"])
    await client.create_activities([ActivityCreate(address_ids=[3], kind=kind, note="b")])
    second = (await http.get("/_control/activity-log", params={"after": first["next"]})).json()
    assert [e[0] for e in second["entries"]] == [3] and second["next"] == 3
