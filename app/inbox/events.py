"""Storing an event and stamping it handled (the shape of Polar's `external_event` service).

`store` keeps an event once per (source, dedupe key) and returns it, new or found: only a new one
enqueues work (the caller's, after the commit). `handling` wraps the work on a group of events
and stamps them when it ends: applied; refused (counted as a try, parked as failed after
`max_attempts`); or, when the work raised, left pending with one more try counted (the error
goes on to the job's retry).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import InboundEvent, InboundEventStatus
from app.db.session import Database
from app.inbox.repository import DEDUPE_KEY_MAX, InboundEventRepository

NOTE_MAX = 2000


@dataclass(frozen=True)
class Stored:
    """The event as stored: its id (None only when a duplicate went meanwhile) and whether
    this call stored it."""

    id: int | None
    new: bool


async def store(
    session: AsyncSession,
    *,
    source: str,
    dedupe_key: str,
    payload: dict[str, Any],
    connection_id: int | None = None,
    received_at: datetime | None = None,
) -> Stored:
    """Store the event, or find the one stored before under (source, dedupe_key)."""
    repo = InboundEventRepository.from_session(session)
    new_id = await repo.create_on_conflict_do_nothing(
        source=source,
        dedupe_key=dedupe_key,
        payload=payload,
        received_at=received_at or utcnow(),
        connection_id=connection_id,
    )
    if new_id is not None:
        return Stored(new_id, True)
    return Stored(await repo.id_of(source, dedupe_key[:DEDUPE_KEY_MAX]), False)


class Handling:
    """What the work on a group of events tells its stamp."""

    def __init__(self) -> None:
        self.note: str | None = None

    def refused(self, note: str) -> None:
        """The work was refused for good this time (not a transient failure)."""
        self.note = note[:NOTE_MAX]


@asynccontextmanager
async def handling(
    db: Database, events: Sequence[InboundEvent], *, max_attempts: int
) -> AsyncIterator[Handling]:
    """Stamp `events` when the block ends (one transaction): applied, or refused (a try
    counted; failed from `max_attempts` on); an exception leaves them pending, a try counted,
    and is raised on."""
    handled = Handling()
    try:
        yield handled
    except Exception as exc:
        await _stamp(db, events, InboundEventStatus.pending, str(exc)[:NOTE_MAX])
        raise
    if handled.note is None:
        await _stamp(db, events, InboundEventStatus.applied, None)
        return
    attempts = max(e.attempts for e in events) + 1
    parked = attempts >= max_attempts
    status = InboundEventStatus.failed if parked else InboundEventStatus.pending
    await _stamp(db, events, status, handled.note)


async def _stamp(
    db: Database, events: Sequence[InboundEvent], status: str, note: str | None
) -> None:
    async with db.transaction() as session:
        await InboundEventRepository.from_session(session).update_events(
            [e.id for e in events],
            tried=True,
            status=status,
            last_error=note,
            applied_at=utcnow() if status == InboundEventStatus.applied else None,
        )
