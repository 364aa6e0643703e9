from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SyncCounts(BaseModel):
    onoffice_newsletter_total: int = Field(
        description="Active onOffice addresses with newsletter Yes read by this run"
    )
    synced: int = Field(description="created + updated + unchanged (+ synced where not told)")
    created: int | None = Field(description="null where the provider does not tell")
    updated: int | None = Field(description="null where the provider does not tell")
    unchanged: int
    duplicates: int
    invalid_emails: int = Field(description="missing or syntactically invalid emails")
    missing_emails: int
    rejected: int = Field(description="contacts the provider refused (see problems)")
    tags_pulled: int = Field(
        description="onOffice addresses whose tags were updated from Mailchimp"
    )
    unsubscribed: int = Field(
        description="Contacts synced earlier whose address is no longer newsletter Yes "
        "(unsubscribed at the provider; not part of the reconciliation)"
    )
    opted_out: int = Field(
        default=0,
        description="Opted out at the provider (unsubscribed, blacklisted) "
        "and not sent: the opt-out is written back to onOffice (see problems)",
    )
    pending_optin: int = Field(
        default=0, description="Waiting for the double opt-in confirmation at the provider"
    )
    bounced: int = Field(
        default=0,
        description="Cleaned / hard-bounced at the provider: not sent again until the email "
        "changes in onOffice; onOffice keeps its Newsletter value",
    )
    archived: int = Field(
        default=0,
        description="Archived or deleted at the provider: neither re-added nor written back "
        "to onOffice (restore selected ones with POST /api/v1/connection/archived/restore)",
    )
    held_unsubscribes: int = Field(
        default=0,
        description="Unsubscribes the safety valve held back; approve them with "
        "POST /api/v1/syncs/{id}/approve-unsubscribes",
    )
    reconciled: bool | None = Field(
        description="True only when proven: the run completed, processed + out_of_scope == "
        "onoffice_reported_total (onOffice's cntabsolute), onoffice_newsletter_total == synced + "
        "duplicates + invalid_emails + rejected + opted_out + pending_optin + bounced + "
        "archived, nothing held back, the provider's count known and drift 0. False when one "
        "of them is proven wrong, null when it cannot be told (the run is not finished or "
        "failed, a count is unknown); `reconciled_code` and `reconciled_reason` say why"
    )
    reconciled_code: str | None = Field(
        default=None,
        description="Why `reconciled` is not true: not_finished, not_completed, sum, held, "
        "onoffice_total_unknown, onoffice_total, provider_unknown or drift",
    )
    reconciled_reason: str | None = Field(
        default=None, description="The same in words, in the caller's language"
    )
    onoffice_reported_total: int | None = Field(
        default=None, description="onOffice's own count of the addresses to read (cntabsolute)"
    )
    out_of_scope: int = Field(
        default=0,
        description="Addresses onOffice returned outside the connection's scope (not synced)",
    )
    provider_subscribed: int | None = Field(
        default=None, description="The provider's own count of subscribed list members"
    )
    drift: int | None = Field(
        default=None,
        description="provider_subscribed minus the contacts the connector expects to be "
        "subscribed (0 = the provider agrees; null until the run has finished)",
    )


class SyncProgress(BaseModel):
    phase: str = Field(
        description="queued, provider (reading the provider's list), reading, unsubscribing, "
        "tags, done or failed"
    )
    addresses_read: int
    batches_total: int
    batches_done: int
    reading_done: bool
    percent: float | None = Field(description="batches done / created, once reading is done")
    addresses_total: int | None = Field(
        default=None, description="onOffice's count of the addresses to read, once known"
    )
    overall_percent: float | None = Field(
        default=None, description="Estimated share of the whole run that is done (0-100)"
    )
    eta_s: float | None = Field(default=None, description="Estimated seconds left")


class SyncRunRead(BaseModel):
    id: int
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    error: str | None
    warning: str | None = Field(
        default=None, description="Something the user should check (the run still completed)"
    )
    progress: SyncProgress
    counts: SyncCounts


class SyncStart(BaseModel):
    force: bool = Field(
        default=False,
        description="Resend every contact, including unchanged and previously rejected ones",
    )
    dry_run: bool = Field(
        default=False,
        description="Preview only: read both sides and decide every address as a run would, "
        "write nothing to onOffice or the provider",
    )


class SyncStarted(BaseModel):
    id: int = Field(description="The run's id, or the preview's with `dry_run`")
    status: str
    dry_run: bool = False
    preview: str | None = Field(default=None, description="The preview's path (dry_run)")


class ProblemRead(BaseModel):
    address_id: int
    email: str
    kind: str = Field(
        description="duplicate, invalid_email, missing_email, rejected, opted_out (opted out at "
        "the provider; written back to onOffice), pending_optin (double opt-in not confirmed), "
        "bounced (cleaned / hard bounce), archived (archived/deleted at the provider)"
    )
    reason: str = Field(description="Why, in the caller's language (Accept-Language/session)")
    reason_code: str = Field(description="Stable code of the reason (catalogue `reason.<code>`)")
    detail: str = Field(
        description="The provider's own message, labelled as the original in the caller's "
        'language ("Original message of Mailchimp: …"); English sessions also get the email '
        'validator\'s message; "" otherwise'
    )


class ProblemPage(BaseModel):
    items: list[ProblemRead]
    total: int = Field(description="Problems matching the filter")
    next_cursor: int | None = Field(description="pass as `after` to read the next page")
    kinds: dict[str, int] = Field(
        default_factory=dict, description="All problems of the run by kind (unfiltered)"
    )


class HeldUnsubscribeRead(BaseModel):
    email: str
    address_id: int


class HeldUnsubscribePage(BaseModel):
    """The contacts a run's safety valve held back: exactly those an approval unsubscribes."""

    items: list[HeldUnsubscribeRead]
    total: int
    next_cursor: int | None = None
