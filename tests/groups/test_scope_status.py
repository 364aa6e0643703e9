"""Issue 19: the status shows how many onOffice addresses a connection's scope covers, counted
live with the connection's own claim and scope (every address, and the active ones with
newsletter Yes), not the newsletter addresses the latest run happened to read."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import e2e_settings, http, world  # noqa: F401  (fixtures)
from tests.e2e.test_webhooks import address
from tests.groups.test_groups_e2e import NORD, SUED, Customer, customer  # noqa: F401  (fixture)


async def _scope(customer: Customer, group: str) -> dict[str, Any]:  # noqa: F811
    response = await customer.api(group, "GET", "/api/v1/status")
    assert response.status_code == 200, response.text
    scope: dict[str, Any] = response.json()["scope"]
    return scope


async def test_the_scope_counts_every_address_it_covers_before_any_run(
    customer: Customer,  # noqa: F811
) -> None:
    onoffice = customer.world.onoffice
    # ben's second address says No, and an archived one of anna's says Yes.
    onoffice.seed([address(6, "b2@x.de", newsletter="0", Benutzer="ben")], replace=False)
    onoffice.seed([address(7, "a3@x.de", Status="0", Benutzer="anna")], replace=False)
    used = dict(onoffice.claims_used.get("claim-ben", {}))
    sued = await _scope(customer, SUED)
    # No run yet: the counts are onOffice's, within Süd's scope (b1, s1, b2).
    assert (sued["addresses"], sued["newsletter_addresses"]) == (3, 2)
    assert onoffice.claims_used["claim-ben"] != used  # counted with Süd's own claim
    nord = await _scope(customer, NORD)  # a1, a2, s1 and the archived a3
    assert (nord["addresses"], nord["newsletter_addresses"]) == (4, 3)
    everyone = await _scope(customer, "")
    assert (everyone["addresses"], everyone["newsletter_addresses"]) == (7, 5)


async def test_a_scope_onoffice_cannot_filter_is_counted_page_by_page(
    customer: Customer,  # noqa: F811
) -> None:
    onoffice = customer.world.onoffice
    onoffice.settings.support_user_filterable = False
    onoffice.seed([address(6, "b2@x.de", newsletter="0", Benutzer="ben")], replace=False)
    sued = await _scope(customer, SUED)
    assert (sued["addresses"], sued["newsletter_addresses"]) == (3, 2)


async def test_a_waiting_group_shows_no_count(customer: Customer) -> None:  # noqa: F811
    await customer.sql("DELETE FROM group_claim WHERE group_id = :g", g=NORD)
    nord = await _scope(customer, NORD)
    assert nord["waiting"] and nord["addresses"] is None and nord["newsletter_addresses"] is None
