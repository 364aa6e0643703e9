"""Groups in the emulator and the client's address scope (issue 19): users, groups, per-user
visibility, the support user `Benutzer`, the claim recorded per call, and both readings of
what onOffice leaves undocumented (filtering on `Benutzer`; its value a name or an id)."""

from __future__ import annotations

from typing import Any

import pytest

from app.contacts.scope import ScopeDefinition, address_scope
from emulators.onoffice import DEFAULT_TOKEN, OnOfficeState
from emulators.onoffice.users import EmuGroup, EmuUser
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import AddressCreate
from onoffice_client.scope import read_groups, read_users
from tests.onoffice.conftest import ClientFactory

ADMIN_CLAIM, CLAIM_A, CLAIM_B = "claim-admin", "claim-anna", "claim-ben"
GROUP_USERS = ScopeDefinition(kind="group_users")


def _book(state: OnOfficeState) -> None:
    state.users = {
        1: EmuUser(1, "anna", "Anna", "Alt", visibility="group"),
        2: EmuUser(2, "ben", "Ben", "Bauer", visibility="group"),
        3: EmuUser(3, "cleo", "Cleo", "Chef", visibility="all"),
    }
    state.groups = {7: EmuGroup(7, "Nord", user_ids=[1]), 8: EmuGroup(8, "Süd", user_ids=[2])}
    customer = state.customers[DEFAULT_TOKEN]
    customer.claim = ADMIN_CLAIM
    customer.user_claims = {CLAIM_A: 1, CLAIM_B: 2}
    state.seed(
        [
            {"Email": "a1@x.de", "newsletter_aktiv": "1", "Benutzer": "anna"},
            {"Email": "a2@x.de", "newsletter_aktiv": "1", "Benutzer": "anna"},
            {"Email": "b1@x.de", "newsletter_aktiv": "1", "Benutzer": "ben"},
            {"Email": "nobody@x.de", "newsletter_aktiv": "1"},
        ]
    )


async def _scoped(make_client: ClientFactory, claim: str, group: str, **kw: Any) -> OnOfficeClient:
    reader = make_client(claim=claim)
    (found,) = [g for g in await read_groups(reader) if g.id == group]
    users = await read_users(reader, found.user_ids)
    scope = address_scope(GROUP_USERS, group=found, users=users, **kw)
    return make_client(claim=claim, scope=scope)


async def _emails(client: OnOfficeClient) -> list[str]:
    found: list[str] = []
    async for page in client.iter_newsletter_addresses():
        found += [a.email for a in client.in_scope(page)]
    return sorted(found)


async def test_groups_and_users_are_read(state: OnOfficeState, make_client: ClientFactory) -> None:
    _book(state)
    client = make_client(claim=ADMIN_CLAIM)
    groups = {g.id: g for g in await read_groups(client)}
    assert groups["7"].name == "Nord" and groups["7"].user_ids == ("1",)
    (user,) = await read_users(client, ["2"])
    assert (user.id, user.name, user.first_name, user.last_name) == ("2", "ben", "Ben", "Bauer")


async def test_a_users_claim_sees_what_the_user_may_see(
    state: OnOfficeState, make_client: ClientFactory
) -> None:
    _book(state)
    assert await _emails(make_client(claim=CLAIM_A)) == ["a1@x.de", "a2@x.de"]
    assert await _emails(make_client(claim=ADMIN_CLAIM)) == [
        "a1@x.de", "a2@x.de", "b1@x.de", "nobody@x.de",
    ]  # fmt: skip
    # Every call's claim is recorded, so a test can tell whose claim a job used.
    assert state.claims_used[CLAIM_A]["read:address"] >= 1
    assert CLAIM_B not in state.claims_used


@pytest.mark.parametrize("filterable", [True, False])
@pytest.mark.parametrize("output", ["name", "id"])
async def test_the_scope_holds_under_both_readings(
    state: OnOfficeState, make_client: ClientFactory, filterable: bool, output: str
) -> None:
    """Whether onOffice filters on `Benutzer` and whether it answers names or ids is not
    documented: either way the scope's addresses, and only they, are read."""
    _book(state)
    state.settings.support_user_filterable = filterable
    state.settings.support_user_output = output
    # The administrator's claim sees everything: only the scope keeps group 8's list apart.
    client = await _scoped(make_client, ADMIN_CLAIM, "8")
    assert await _emails(client) == ["b1@x.de"]
    found = await client.find_addresses_by_emails(["a1@x.de", "b1@x.de"])
    assert [a.email for a in found["b1@x.de"]] == ["b1@x.de"] and found["a1@x.de"] == []
    assert [a.email for a in await client.get_addresses([1, 2, 3, 4])] == ["b1@x.de"]
    changed = [
        a.email for p in [p async for p in client.iter_changed_addresses(_past())] for a in p
    ]
    assert changed == ["b1@x.de"]


def _past() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(days=1)


async def test_a_new_address_is_created_in_the_scope(
    state: OnOfficeState, make_client: ClientFactory
) -> None:
    _book(state)
    client = await _scoped(make_client, CLAIM_B, "8", claim_user_id="2")
    new_id = await client.create_address(AddressCreate(email="neu@x.de"))
    assert state.addresses[new_id].benutzer == "ben"
    # onOffice's duplicate check hits an address outside the scope (group 7's): the scope
    # gets its own address instead of writing to the other group's.
    other = await client.create_address(AddressCreate(email="a1@x.de"))
    assert other not in (1, 2) and state.addresses[other].benutzer == "ben"
    assert [a.id for a in await client.get_addresses([other])] == [other]


async def test_a_field_scope(state: OnOfficeState, make_client: ClientFactory) -> None:
    """Another criterion (a field value) for customers organised differently."""
    _book(state)
    state.seed(
        [{"Email": "lang@x.de", "newsletter_aktiv": "1", "SpracheKontakt": "ENG"}], replace=False
    )
    definition = ScopeDefinition(kind="field", field="SpracheKontakt", values=["ENG"])
    client = make_client(claim=ADMIN_CLAIM, scope=address_scope(definition))
    assert await _emails(client) == ["lang@x.de"]
    new_id = await client.create_address(AddressCreate(email="new@x.de"))
    assert state.addresses[new_id].language == "ENG"
