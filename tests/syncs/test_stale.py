"""Which contacts a full sync may unsubscribe as "left onOffice" (issue #17, story 4): only
those its re-read confirmed (`stale_run_id`), never one a later run claimed, and never one the
incremental push wrote since the run started (`pushed_at`)."""

from __future__ import annotations

from datetime import timedelta

from app.contacts.repository import ContactRepository
from app.db.base import utcnow
from app.db.models import Contact, SyncRun
from app.resources import Resources
from tests.rows import add_connection


async def test_only_confirmed_contacts_not_pushed_since_the_run_started_are_stale(
    resources: Resources,
) -> None:
    started = utcnow() - timedelta(minutes=5)
    async with resources.transaction() as session:
        connection = await add_connection(session, web_id="S1", list_id="L1")
        run = SyncRun(connection_id=connection.id, status="running", started_at=started)
        session.add(run)
        await session.flush()

        def contact(i: int, **values: object) -> Contact:
            return Contact(
                connection_id=connection.id,
                address_id=i,
                email=f"p{i}@example.de",
                tags=[],
                subscribed=True,
                **values,
            )

        session.add_all(
            [
                contact(1, stale_run_id=run.id),  # confirmed by the re-read
                contact(2),  # not re-read yet: a candidate, not stale
                contact(3, stale_run_id=run.id, pushed_at=started + timedelta(seconds=1)),
                contact(4, stale_run_id=run.id, pushed_at=started - timedelta(seconds=1)),
                contact(5, stale_run_id=run.id, last_run_id=run.id),  # claimed by the run
                contact(6, stale_run_id=run.id, last_run_id=run.id + 1),  # by a later run
                contact(7, pushed_at=started + timedelta(seconds=1)),  # pushed: no candidate
            ]
        )
        connection_id, run_id = connection.id, run.id
    async with resources.sessionmaker() as session:
        repo = ContactRepository.from_session(session)
        stale = await repo.stale(connection_id, run_id, 100)
        count = await repo.count_stale(connection_id, run_id)
        candidates = await repo.unchecked_stale(connection_id, run_id, 0, 100)
    assert sorted(c.address_id for c in stale) == [1, 4]
    assert count == 2
    assert [c.address_id for c in candidates] == [2]
