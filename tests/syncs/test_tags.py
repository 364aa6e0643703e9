"""Tags added across a run: one segment request per tag and 500 waiting members, the rest at
the end, and a member whose tag cannot be set moves to `rejected` (PostgreSQL + emulator)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db.models import Contact, Problem, SyncRun, SyncTagAdd
from app.db.session import unit_of_work
from app.i18n import reasons
from app.resources import Resources
from app.syncs.repository import SyncRepository
from app.syncs.tags import flush_tags
from emulators.mailchimp import MailchimpState
from tests.rows import add_connection, mailchimp_client

ADD_TO_SEGMENT = "POST /3.0/lists/{list_id}/segments/{segment_id}"


async def test_waiting_members_are_sent_500_at_a_time_and_a_refused_one_is_rejected(
    resources: Resources,
) -> None:
    state = MailchimpState()
    list_id = state.create_list("onoffice").id
    emails = [f"m{n}@example.com" for n in range(1200)]
    for email in emails:
        state.seed_member(list_id, email)
    odd = "gone@example.com"  # not in the audience: the segment and the tags endpoint refuse it
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        connection = await add_connection(session, token="tok-tags", list_id=list_id)
        run = SyncRun(connection_id=connection.id, status="running", created=1201)
        session.add(run)
        await session.flush()
        session.add(
            Contact(
                connection_id=connection.id, address_id=9999, email=odd, synced_hash="h", tags=[]
            )
        )
        rows = [
            {"run_id": run.id, "tag": "Kunde", "email": e, "address_id": n, "outcome": "created"}
            for n, e in enumerate([*emails, odd])
        ]
        await SyncRepository.from_session(session).add_tag_adds(rows)
        run_id = run.id

    async with mailchimp_client(state) as provider:
        # During the run: only full segments (2 × 500), 201 members keep waiting.
        assert not await flush_tags(resources, run_id, connection, provider, final=False)
        assert state.request_counts[ADD_TO_SEGMENT] == 2
        async with resources.sessionmaker() as session:
            waiting = await session.scalar(select(func.count()).select_from(SyncTagAdd))
        assert waiting == 201
        # At the end: the rest in one request; nothing left.
        assert not await flush_tags(resources, run_id, connection, provider, final=True)
        assert state.request_counts[ADD_TO_SEGMENT] == 3
    members = state.lists[list_id].members.values()
    assert sum("Kunde" in m.tags for m in members) == 1200
    async with resources.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(SyncTagAdd)) == 0
        stored = await session.get(SyncRun, run_id)
        assert stored is not None and (stored.created, stored.rejected) == (1200, 1)
        problem = (await session.execute(select(Problem))).scalar_one()
        assert (problem.email, problem.kind) == (odd, "rejected")
        # The code says what failed; the detail is only Mailchimp's own words, for its label.
        assert problem.reason_code == reasons.PROVIDER_TAGS
        assert problem.reason_params == {"provider": "Mailchimp"}
        assert problem.reason and "tags could not be set" not in problem.reason
        contact = (await session.execute(select(Contact).where(Contact.email == odd))).scalar_one()
        assert contact.synced_hash is None  # sent again by the next run
