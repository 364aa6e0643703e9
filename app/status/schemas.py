from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.connections.schemas import ConnectionRead
from app.syncs.schemas import SyncRunRead


class SideCounts(BaseModel):
    onoffice_newsletter_total: int | None = Field(
        description="Active onOffice addresses with newsletter Yes (from the latest run)"
    )
    provider_contacts: int | None = Field(description="Contacts in the provider list (live)")
    provider_error: str | None = Field(default=None, description="Why the live count is missing")
    synced_contacts: int = Field(description="Contacts the connector has synced")


class PendingWork(BaseModel):
    sync_batches: int
    inbound_events: int
    failed_inbound_events: int
    held_inbound_events: int = Field(
        default=0,
        description="Archives/deletes held as a burst (Mailchimp 'Archive All'); apply or "
        "dismiss them with POST /api/v1/held-events/apply|dismiss",
    )


class RefusedChange(BaseModel):
    address_id: int
    email: str
    reason: str = Field(description="The provider's reason")


class UnconfirmedEvent(BaseModel):
    event_id: int
    email: str
    event: str = Field(description="The provider's event name, e.g. `unsubscribe`")
    reason: str = Field(description="What the provider's current state showed instead")
    received_at: datetime


class HeldBack(BaseModel):
    reason_code: str = Field(description="`safety_valve`, or a problem reason code")
    reason: str = Field(description="Why, in the caller's language")
    count: int


class Status(BaseModel):
    """Counts on both sides, the latest runs and the work still to do."""

    connected: bool
    connection: ConnectionRead | None
    counts: SideCounts | None
    last_sync: SyncRunRead | None = Field(description="The latest run (live while it runs)")
    last_completed_sync: SyncRunRead | None
    pending: PendingWork
    refused_changes: list[RefusedChange] = Field(
        default_factory=list,
        description="Contacts whose latest change the provider refused (newest first, ≤ 100)",
    )
    refused_total: int = Field(default=0, description="How many contacts have a refused change")
    held_back: list[HeldBack] = Field(
        default_factory=list,
        description="Contacts the latest run held back on purpose (consent rules, the "
        "unsubscribe safety valve), by reason",
    )
    unconfirmed_events: list[UnconfirmedEvent] = Field(
        default_factory=list,
        description="Provider events the provider's current state contradicted (forged, or "
        "overtaken by a later change): recorded, nothing changed (newest first, ≤ 20)",
    )
    unconfirmed_total: int = Field(default=0, description="How many events were not confirmed")
    status_pages: dict[str, str] = Field(
        default_factory=dict, description="Status pages of onOffice and the providers"
    )
