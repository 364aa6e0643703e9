"""The decision lists and the decisions (see the package doc). Every decision is recorded in
the consent history with the deciding user's id (`app.history.writer.decision_entry`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.factory import provider_label
from app.connections.service import connection as connection_service
from app.contacts.archive import list_archived, restore
from app.contacts.values import normalise_email
from app.db.base import aware, utcnow
from app.db.models import Connection, InboundEvent, InboundEventStatus
from app.decisions.repository import DecisionRepository
from app.errors import Conflict
from app.history.writer import decision_entry
from app.history.writer import record as record_history
from app.i18n import t
from app.lifecycle.held import APPROVED, DISMISSED
from app.lifecycle.repository import LifecycleRepository
from app.resources import Resources
from app.syncs.jobs import enqueue_approve
from app.syncs.repository import SyncRepository
from app.tenants.auth import TenantContext
from app.webhooks.jobs import enqueue_release
from app.webhooks.outcomes import decide_held

Kind = Literal["held_unsubscribes", "held_bursts", "archived", "failed_events"]
Verb = Literal["apply", "dismiss", "restore", "retry"]
ACTIONS: dict[str, tuple[str, ...]] = {
    "held_unsubscribes": ("apply", "dismiss"),
    "held_bursts": ("apply", "dismiss"),
    "archived": ("restore",),
    "failed_events": ("retry", "dismiss"),
}
SELECTION_LIMIT = 5000


class DecisionItem(BaseModel):
    email: str
    address_id: int | None = None
    since: datetime | None = Field(None, description="When it started waiting")
    reason: str = Field(description="Why it waits, in the caller's language")
    reason_code: str
    original: str | None = Field(
        None, description="The provider's or onOffice's own message, untranslated (labelled)"
    )


class DecisionPage(BaseModel):
    kind: Kind
    actions: list[str]
    items: list[DecisionItem]
    total: int
    offset: int
    limit: int


class DecisionRequest(BaseModel):
    action: Verb
    emails: list[str] | None = Field(
        None, max_length=SELECTION_LIMIT, description="The selection; omitted = all of them"
    )


class DecisionResult(BaseModel):
    kind: Kind
    action: Verb
    decided: list[str] = Field(description="The emails the decision was applied to")
    refused: list[str] = Field(default_factory=list)
    events: int = Field(0, description="Rows the decision covered (held or failed events)")


@dataclass
class Listed:
    items: list[DecisionItem]
    total: int


async def listing(
    session: AsyncSession,
    tenant: TenantContext,
    kind: Kind,
    *,
    lang: str,
    search: str | None = None,
    offset: int = 0,
    limit: int | None = 50,
) -> DecisionPage:
    connection = await connection_service.get(session, tenant)
    listed = await _list(session, tenant, connection, kind, lang, search, offset, limit)
    return DecisionPage(
        kind=kind,
        actions=list(ACTIONS[kind]),
        items=listed.items,
        total=listed.total,
        offset=offset,
        limit=limit or listed.total,
    )


async def _list(
    session: AsyncSession,
    tenant: TenantContext,
    connection: Connection,
    kind: Kind,
    lang: str,
    search: str | None,
    offset: int,
    limit: int | None,
) -> Listed:
    repo = DecisionRepository.from_session(session)
    label = provider_label(connection.provider)
    if kind == "held_unsubscribes":
        run = await SyncRepository.from_session(session).latest_run(connection.id)
        if run is None:
            return Listed([], 0)
        rows, total = await repo.held_unsubscribes(
            run.id, search=search, offset=offset, limit=limit
        )
        text = t(lang, "decision.reason.held_unsubscribe")
        items = [
            DecisionItem(
                email=r.email,
                address_id=r.address_id,
                since=aware(r.held_at),
                reason=text,
                reason_code="held_unsubscribe",
            )
            for r in rows
        ]
        return Listed(items, total)
    if kind in ("held_bursts", "failed_events"):
        status = InboundEventStatus.held if kind == "held_bursts" else InboundEventStatus.failed
        events, total = await repo.events(
            connection.id,
            status,
            search=search,
            removals_only=kind == "held_bursts",
            offset=offset,
            limit=limit,
        )
        return Listed([_event_item(e, kind, lang, label) for e in events], total)
    archived = (await list_archived(session, tenant)).items
    if search:
        term = search.strip().lower()
        archived = [a for a in archived if term in a.email or term == str(a.address_id)]
    page = archived[offset : None if limit is None else offset + limit]
    items = [
        DecisionItem(
            email=a.email,
            address_id=a.address_id,
            since=datetime.fromisoformat(a.since) if a.since else None,
            reason=t(
                lang,
                "decision.reason.archived",
                provider=label,
                state=f"@history.value.{a.provider_status}",
            ),
            reason_code="archived",
        )
        for a in page
    ]
    return Listed(items, len(archived))


def _event_item(event: InboundEvent, kind: str, lang: str, label: str) -> DecisionItem:
    payload = event.payload
    email = normalise_email(str(payload.get("email", "")))
    if kind == "held_bursts":
        return DecisionItem(
            email=email,
            since=aware(event.received_at),
            reason=t(lang, "decision.reason.held_burst", provider=label),
            reason_code="held_burst",
        )
    return DecisionItem(
        email=email,
        since=aware(event.received_at),
        reason=t(
            lang,
            "decision.reason.failed_event",
            provider=label,
            event=f"@history.value.{payload.get('type', 'unknown')}",
            attempts=event.attempts,
        ),
        reason_code="failed_event",
        original=event.last_error,
    )


async def decide(
    session: AsyncSession,
    resources: Resources,
    tenant: TenantContext,
    kind: Kind,
    request: DecisionRequest,
) -> DecisionResult:
    """Apply the decision to the selection (all when `emails` is omitted); each decided
    person gets a history entry with the user's id."""
    if request.action not in ACTIONS[kind]:
        raise Conflict("err.decision_not_allowed", params={"kind": kind, "action": request.action})
    connection = await connection_service.get(session, tenant)
    emails = None
    if request.emails is not None:
        emails = sorted({normalise_email(e) for e in request.emails if normalise_email(e)})
    result = DecisionResult(kind=kind, action=request.action, decided=[])
    if kind == "held_unsubscribes":
        result.decided = await _held_unsubscribes(session, connection, request.action, emails)
    elif kind == "held_bursts":
        held = await decide_held(
            session, connection, apply=request.action == "apply", emails=emails
        )
        result.decided = sorted({normalise_email(str(e.payload.get("email", ""))) for e in held})
        result.events = len(held)
    elif kind == "failed_events":
        result.decided = await _failed(session, connection, request.action, emails)
    else:
        if emails is None:
            emails = [a.email for a in (await list_archived(session, tenant)).items]
        restored = await restore(session, resources, tenant, emails) if emails else None
        result.decided = list(restored.restored) if restored else []
        result.refused = [r.email for r in restored.refused] if restored else []
    await recorded(session, connection.id, tenant, kind, request.action, result.decided)
    return result


async def recorded(
    session: AsyncSession,
    connection_id: int,
    tenant: TenantContext,
    kind: str,
    action: str,
    emails: Sequence[str],
) -> None:
    """Each decided person's history learns the decision and the user who made it."""
    entries = [decision_entry(email, action, tenant.user_id, note=kind) for email in emails]
    await record_history(session, connection_id, entries)


async def _held_unsubscribes(
    session: AsyncSession, connection: Connection, action: str, emails: Sequence[str] | None
) -> list[str]:
    runs = SyncRepository.from_session(session)
    run = await runs.latest_run(connection.id)
    if run is None:
        return []
    rows, _ = await DecisionRepository.from_session(session).held_unsubscribes(
        run.id, search=None, emails=emails
    )
    lifecycle = LifecycleRepository.from_session(session)
    await lifecycle.mark_held([r.id for r in rows], APPROVED if action == "apply" else DISMISSED)
    if action == "apply" and rows:
        enqueue_approve(run.id)
    elif rows:
        left = await lifecycle.count_held(run.id) + await lifecycle.count_held(run.id, APPROVED)
        await runs.set_run(run.id, held_unsubscribes=left, **({} if left else {"warning": None}))
    return sorted({r.email for r in rows})


async def _failed(
    session: AsyncSession, connection: Connection, action: str, emails: Sequence[str] | None
) -> list[str]:
    repo = DecisionRepository.from_session(session)
    events, _ = await repo.events(
        connection.id, InboundEventStatus.failed, search=None, emails=emails
    )
    ids = [e.id for e in events]
    if action == "retry":
        await repo.retry_events(ids)
        if ids:
            enqueue_release(connection.id)
    else:
        await repo.set_events_ignored(ids, utcnow())
    return sorted({normalise_email(str(e.payload.get("email", ""))) for e in events})


async def approve_all(session: AsyncSession, tenant: TenantContext, run_id: int) -> None:
    """`POST /api/v1/syncs/{id}/approve-unsubscribes`: every held contact of the run."""
    connection = await connection_service.get(session, tenant)
    emails = await _held_unsubscribes(session, connection, "apply", None)
    await recorded(session, connection.id, tenant, "held_unsubscribes", "apply", emails)
    del run_id
