from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class PreviewCounts(BaseModel):
    """What a full sync started now would count (see SyncCounts), before the provider answers
    its batches (a contact the provider would refuse is counted as created or updated)."""

    onoffice_reported_total: int | None = Field(
        default=None, description="onOffice's own count of the addresses to read"
    )
    onoffice_newsletter_total: int = 0
    out_of_scope: int = 0
    synced: int = Field(default=0, description="created + updated + unchanged")
    created: int = Field(default=0, description="not in the list now: would be added")
    updated: int = Field(default=0, description="in the list now: would be sent again")
    unchanged: int = Field(default=0, description="nothing would be sent")
    duplicates: int = 0
    invalid_emails: int = Field(default=0, description="missing or invalid emails")
    missing_emails: int = 0
    rejected: int = Field(default=0, description="refused before with the same values")
    opted_out: int = 0
    pending_optin: int = 0
    bounced: int = 0
    archived: int = 0
    written_back: int = Field(
        default=0,
        description="onOffice addresses that would be written: Newsletter No (an opt-out) or a "
        "bounce activity (`onoffice_write` of each item)",
    )
    unsubscribed: int = Field(
        default=0,
        description="contacts the connector keeps subscribed that were not found among the "
        "newsletter-Yes addresses: a run unsubscribes them once a re-read confirms it",
    )
    held_unsubscribes: int = Field(
        default=0, description="those unsubscribes, when the safety valve would hold them back"
    )


class PreviewRead(BaseModel):
    id: int
    dry_run: bool = True
    status: Literal["queued", "running", "completed", "failed"]
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    counts: PreviewCounts | None = Field(description="null until the preview has completed")


class PreviewItemRead(BaseModel):
    address_id: int
    email: str
    outcome: str = Field(
        description="created, updated, unchanged, or why it would not be synced: duplicate, "
        "invalid_email, missing_email, rejected, opted_out, pending_optin, bounced, archived"
    )
    outcome_text: str = Field(description="The outcome in the caller's language")
    reason: str = Field(default="", description="Why, in the caller's language")
    reason_code: str = ""
    onoffice_write: str | None = Field(
        default=None,
        description="What would be written to this onOffice address: `no` (Newsletter No), "
        "`activity` (a bounce activity; the value stays) or null",
    )
    onoffice_write_text: str = ""


class PreviewItemPage(BaseModel):
    items: list[PreviewItemRead]
    total: int = Field(description="Items matching the filter")
    next_cursor: int | None
