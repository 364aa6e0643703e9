"""The webhook batch core called directly: the database, the settings, an onOffice client and
a Mailchimp client (the emulators in-process), no drain job, no factory. Each event is
confirmed against the member's state at Mailchimp before it is applied."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db.base import utcnow
from app.db.models import InboundEvent, Tenant
from app.inbox.repository import InboundEventRepository
from app.resources import Resources
from app.webhooks.apply import EventApplier
from app.webhooks.batch import BatchApplier
from app.webhooks.deps import ApplyDeps
from emulators.mailchimp import DEFAULT_API_KEY, MailchimpState
from emulators.mailchimp import create_app as create_mailchimp
from emulators.onoffice import DEFAULT_SECRET, DEFAULT_TOKEN, OnOfficeState, create_app
from onoffice_client.client import OnOfficeClient
from providers.base import ProviderEvent, ProviderEventType
from providers.mailchimp import MailchimpClient
from tests.rows import add_connection


@pytest.fixture
def onoffice_state() -> OnOfficeState:
    return OnOfficeState()


@pytest.fixture
async def onoffice(onoffice_state: OnOfficeState) -> AsyncIterator[OnOfficeClient]:
    transport = httpx.ASGITransport(app=create_app(onoffice_state))
    async with httpx.AsyncClient(transport=transport) as http:
        yield OnOfficeClient(
            api_url="http://onoffice.test/api/stable/api.php",
            token=DEFAULT_TOKEN,
            secret=DEFAULT_SECRET,
            http=http,
        )


@pytest.fixture
def mailchimp_state() -> MailchimpState:
    return MailchimpState()


@pytest.fixture
async def mailchimp(mailchimp_state: MailchimpState) -> AsyncIterator[MailchimpClient]:
    transport = httpx.ASGITransport(app=create_mailchimp(mailchimp_state))
    async with httpx.AsyncClient(transport=transport) as http:
        yield MailchimpClient(
            api_key=DEFAULT_API_KEY, base_url_template="http://mailchimp.test/3.0", http=http
        )
    assert mailchimp_state.spec_violations == []


async def test_a_batch_of_unsubscribes_is_applied_with_its_activities(
    resources: Resources,
    settings: Settings,
    onoffice: OnOfficeClient,
    onoffice_state: OnOfficeState,
    mailchimp: MailchimpClient,
    mailchimp_state: MailchimpState,
) -> None:
    ids = onoffice_state.seed(
        [{"Email": f"p{i}@example.de", "newsletter_aktiv": "1"} for i in range(4)]
    )
    audience = mailchimp_state.create_list("onoffice")
    for i in range(4):
        mailchimp_state.seed_member(audience.id, f"p{i}@example.de")
    for i in range(2):  # p0 and p1 unsubscribe at Mailchimp; p2 and p3 do not
        mailchimp_state.member_action(audience.id, f"p{i}@example.de", "unsubscribe")
    async with resources.transaction() as session:
        connection = await add_connection(session, list_id=audience.id)
        tenant = await session.get(Tenant, connection.tenant_id)
        events = InboundEventRepository.from_session(session)
        for i in range(3):  # p0 and p1 unsubscribed; p2's unsubscribe is forged
            event = ProviderEvent(
                type=ProviderEventType.unsubscribe,
                email=f"p{i}@example.de",
                occurred_at=utcnow(),
                reason="manual",
                raw_type="unsubscribe",
                dedupe_key=f"k{i}",
            )
            await events.create_on_conflict_do_nothing(
                source="mailchimp",
                dedupe_key=event.dedupe_key,
                payload=event.model_dump(mode="json"),
                received_at=utcnow(),
                connection_id=connection.id,
            )
    assert tenant is not None
    async with resources.sessionmaker() as session:
        rows = await InboundEventRepository.from_session(session).pending(
            limit=10, connection_id=connection.id
        )
    deps = ApplyDeps(resources, settings, onoffice, lambda _: mailchimp, kinds={})
    batch = BatchApplier(EventApplier(deps, connection, tenant))

    assert await batch.apply(rows) == set()  # nothing stays pending
    await batch.applier.settling.wait()  # the outcomes commit while a drain's next batch works

    shown = {a: str(onoffice_state.addresses[a].to_dict()["newsletter_aktiv"]) for a in ids}
    assert shown == {ids[0]: "0", ids[1]: "0", ids[2]: "1", ids[3]: "1"}
    logged = sorted(a["address_id"] for a in onoffice_state.activities)
    assert logged == ids[:2]
    assert tenant.id in deps.kinds  # the action kinds were read once and kept
    async with resources.sessionmaker() as session:
        outcomes = dict(
            (await session.execute(select(InboundEvent.dedupe_key, InboundEvent.status)))
            .tuples()
            .all()
        )
        note = await session.scalar(
            select(InboundEvent.last_error).where(InboundEvent.dedupe_key == "k2")
        )
    assert outcomes == {"k0": "applied", "k1": "applied", "k2": "unconfirmed"}
    assert note == "not confirmed: Mailchimp shows subscribed, not an opt-out"
    # Three emails: one member read each (a handful), no listing.
    reads = mailchimp_state.request_counts
    assert sum(n for key, n in reads.items() if "members" in key) == 3, reads
