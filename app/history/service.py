"""Why is … (not) subscribed? The person's current decision with its rule and the history,
rendered in the reader's language (JSON or CSV: proof of consent, GDPR Art. 7(1))."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.factory import provider_label
from app.connections.service import connection as connection_service
from app.contacts.explain import Verdict, explain
from app.contacts.repository import ContactRepository
from app.contacts.values import normalise_email
from app.db.models import ConsentHistory
from app.history.repository import HistoryRepository
from app.i18n import has_key, t
from app.tenants.auth import TenantContext

HISTORY_LIMIT = 5000


class CurrentDecision(BaseModel):
    subscribed: bool = Field(description="Whether the rule keeps the person subscribed")
    rule: str = Field(description="The rule's code (history.rule.<code>)")
    text: str = Field(description="The rule, in the caller's language")
    onoffice: str | None = None
    onoffice_at: datetime | None = None
    address_id: int | None = Field(None, description="The onOffice address that carries it")
    provider: str | None = None
    provider_at: datetime | None = None


class HistoryItem(BaseModel):
    id: int
    at: datetime = Field(description="The signal's own time, else when it was recorded")
    occurred_at: datetime | None
    recorded_at: datetime
    side: str = Field(description="onoffice, provider or user")
    kind: str = Field(description="signal, action or decision")
    value: str
    address_id: int | None
    source: str = Field(description="webhook, reconciliation, full_sync, incremental, person, user")
    source_ref: str | None = Field(description="event id, run id or user id")
    note: str | None
    text: str = Field(description="The entry, in the caller's language")


class PersonHistory(BaseModel):
    email: str
    known: bool = Field(description="Whether the connector has a ledger row for this email")
    decision: CurrentDecision
    history: list[HistoryItem]


def word(lang: str, value: str | None) -> str:
    if value is None:
        return t(lang, "ui.none")
    key = f"history.value.{value}"
    return t(lang, key) if has_key(key) else value


def decision_of(verdict: Verdict, lang: str, label: str) -> CurrentDecision:
    address = verdict.address_id if verdict.address_id is not None else "?"
    text = t(
        lang,
        f"history.rule.{verdict.rule}",
        provider=label,
        onoffice=word(lang, verdict.onoffice),
        state=word(lang, verdict.provider),
        address=address,
    )
    return CurrentDecision(
        subscribed=verdict.subscribed,
        rule=verdict.rule,
        text=text,
        onoffice=verdict.onoffice,
        onoffice_at=verdict.onoffice_at,
        address_id=verdict.address_id,
        provider=verdict.provider,
        provider_at=verdict.provider_at,
    )


def item_of(row: ConsentHistory, lang: str, label: str) -> HistoryItem:
    address = "" if row.address_id is None else t(lang, "history.at_address", id=row.address_id)
    source_key = f"history.source.{row.source}"
    source = t(lang, source_key, ref=row.source_ref or "?") if has_key(source_key) else row.source
    text = t(
        lang,
        f"history.entry.{row.kind}.{row.side}",
        value=word(lang, row.value),
        address=address,
        provider=label,
        user=row.source_ref or "?",
    )
    if row.note:
        text = f"{text} ({word(lang, row.note)})"
    return HistoryItem(
        id=row.id,
        at=row.occurred_at or row.recorded_at,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        side=row.side,
        kind=row.kind,
        value=row.value,
        address_id=row.address_id,
        source=row.source,
        source_ref=row.source_ref,
        note=row.note,
        text=f"{text} · {source}",
    )


async def person_history(
    session: AsyncSession, tenant: TenantContext, email: str, *, lang: str
) -> PersonHistory:
    """The person's decision and history in the session's connection (and only there)."""
    connection = await connection_service.get(session, tenant)
    wanted = normalise_email(email)
    label = provider_label(connection.provider)
    contact = await ContactRepository.from_session(session).by_email(connection.id, wanted)
    rows = await HistoryRepository.from_session(session).of_email(
        connection.id, wanted, limit=HISTORY_LIMIT
    )
    return PersonHistory(
        email=wanted,
        known=contact is not None,
        decision=decision_of(explain(contact), lang, label),
        history=[item_of(r, lang, label) for r in rows],
    )


CSV_HEADER = [
    "recorded_at",
    "occurred_at",
    "side",
    "kind",
    "value",
    "address_id",
    "source",
    "source_ref",
    "note",
    "text",
]


def history_csv(person: PersonHistory) -> Iterator[str]:
    """The history as CSV, the current decision as a first line of kind `current`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    now = person.decision
    writer.writerow(["", "", "", "current", now.rule, now.address_id or "", "", "", "", now.text])
    for item in person.history:
        writer.writerow(
            [
                item.recorded_at.isoformat(),
                item.occurred_at.isoformat() if item.occurred_at else "",
                item.side,
                item.kind,
                item.value,
                item.address_id if item.address_id is not None else "",
                item.source,
                item.source_ref or "",
                item.note or "",
                item.text,
            ]
        )
    yield buffer.getvalue()
