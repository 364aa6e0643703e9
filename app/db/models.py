"""All ORM models (one module: the schema is small and read together)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, TimestampMixin, utcnow

# BIGINT ids on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).


class Tenant(TimestampMixin, Base):
    """One onOffice customer that activated the connector in the marketplace."""

    __tablename__ = "tenant"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_web_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_name: Mapped[str] = mapped_column(String(255), default="")
    api_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    api_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The latest apiClaim seen in a signed onOffice URL; sent as `extendedclaim`.
    api_claim: Mapped[str | None] = mapped_column(Text)
    api_claim_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Revocation: bearer sessions issued before this time are refused (a user who lost access,
    # `connector revoke-sessions`); a deactivated tenant (`connector deactivate`, or onOffice
    # no longer accepting the customer's credentials) keeps when and why.
    sessions_valid_after: Mapped[datetime | None]
    deactivated_at: Mapped[datetime | None]
    deactivated_reason: Mapped[str | None] = mapped_column(String(255))
    # The UI language of the latest iframe visit (onOffice's UserLanguage): "de" or "en". Texts
    # written to onOffice without a user present (activity notes) use it.
    language: Mapped[str | None] = mapped_column(String(8))


class GroupClaim(TimestampMixin, Base):
    """The latest apiClaim of a user of one onOffice group (a signed URL with that `groupId`):
    the claim a group's connection runs its jobs with. The customer-wide connection (no group)
    uses `Tenant.api_claim`, which only URLs without a `groupId` update."""

    __tablename__ = "group_claim"
    __table_args__ = (UniqueConstraint("tenant_id", "group_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    group_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    claim: Mapped[str] = mapped_column(Text)
    claim_at: Mapped[datetime]


class Connection(TimestampMixin, Base):
    """A tenant's link to one newsletter provider list (one per onOffice group)."""

    __tablename__ = "connection"
    __table_args__ = (UniqueConstraint("tenant_id", "group_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    # "" when the iframe passed no groupId (customer-wide connection).
    group_id: Mapped[str] = mapped_column(String(64), default="")
    provider: Mapped[str] = mapped_column(String(16))
    api_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    api_key_hint: Mapped[str] = mapped_column(String(32), default="")
    account_name: Mapped[str] = mapped_column(String(255), default="")
    account_language: Mapped[str | None] = mapped_column(String(8))
    list_id: Mapped[str | None] = mapped_column(String(64))
    list_name: Mapped[str | None] = mapped_column(String(255))
    webhook_id: Mapped[str | None] = mapped_column(String(128))
    # SHA-256 (hex) of the unguessable token in the provider webhook URL (looked up by hash;
    # the token itself is only ever in the provider's webhook settings).
    webhook_token: Mapped[str] = mapped_column(String(64), unique=True)
    # SHA-256 of the Brevo webhook's bearer secret (separate from the URL token; required).
    webhook_secret_hash: Mapped[str | None] = mapped_column(String(64))
    # The URL token and the bearer secret themselves, encrypted ("token secret"): a save that
    # keeps provider, account and list keeps the webhook address, so events the provider is
    # still delivering (or retrying) to it are not refused.
    webhook_credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    activities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The webhook's health (app/webhooks/health.py), checked every PROVIDER_RECONCILE_INTERVAL_S:
    # "ok", "repaired", "broken" (why in webhook_error) or "check_failed" (the provider could
    # not be asked); None = not checked since it was saved. What the last repair found wrong
    # (problem codes) stays with its time.
    webhook_health: Mapped[str | None] = mapped_column(String(16))
    webhook_checked_at: Mapped[datetime | None]
    webhook_repaired_at: Mapped[datetime | None]
    webhook_problems: Mapped[list[str] | None] = mapped_column(JSON)
    webhook_error: Mapped[str | None] = mapped_column(Text)
    field_mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Incremental sync watermark (onOffice `Aenderung`).
    onoffice_watermark: Mapped[datetime | None]
    # "provider:account:list" the contact ledger belongs to; when it changes the ledger is
    # rebuilt (what was synced to another list says nothing about this one).
    ledger_key: Mapped[str | None] = mapped_column(String(255))
    # The onOffice addresses this connection covers (app/contacts/scope.py); None = the
    # default: every address the claim may read without a group, the group's users' with one.
    scope: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SyncRunStatus(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"  # stopped by a user (POST /api/v1/syncs/{id}/cancel)


class SyncRun(TimestampMixin, Base):
    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_connection_status", "connection_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="full")
    # Resend every contact, ignoring what was synced or rejected before.
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=SyncRunStatus.queued)
    phase: Mapped[str] = mapped_column(String(32), default="queued")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # Progress: reading onOffice (next offset to read), batches fanned out and finished.
    read_offset: Mapped[int] = mapped_column(Integer, default=0)
    reading_done: Mapped[bool] = mapped_column(Boolean, default=False)
    addresses_read: Mapped[int] = mapped_column(Integer, default=0)
    # onOffice's total for the read (cntabsolute), for the progress bar; None until known.
    addresses_total: Mapped[int | None] = mapped_column(Integer)
    # Closed batches (their jobs are enqueued) and finished ones; the open batch is number
    # `batches_total` and holds `open_batch_size` contacts in `chunks_total`-numbered chunks.
    batches_total: Mapped[int] = mapped_column(Integer, default=0)
    batches_done: Mapped[int] = mapped_column(Integer, default=0)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    open_batch_size: Mapped[int] = mapped_column(Integer, default=0)
    # Counts (see the service contract; they always reconcile when the run completes).
    onoffice_newsletter_total: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    synced_unspecified: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    invalid_emails: Mapped[int] = mapped_column(Integer, default=0)
    missing_emails: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    tags_pulled: Mapped[int] = mapped_column(Integer, default=0)
    # Contacts synced by earlier runs whose address is no longer newsletter Yes (or lost the
    # email): unsubscribed at the provider at the end of this run.
    unsubscribed: Mapped[int] = mapped_column(Integer, default=0)
    warning: Mapped[str | None] = mapped_column(Text)
    # Provider members read so far by the tag pull-back (resumable offset).
    tags_offset: Mapped[int] = mapped_column(Integer, default=0)
    # Consent outcomes (see app/contacts/rules.py): opted out at the provider (written back to
    # onOffice), waiting for a double opt-in confirmation, cleaned/hard-bounced (onOffice
    # keeps its value), archived/deleted at the provider (neither re-added nor written back).
    opted_out: Mapped[int] = mapped_column(Integer, default=0)
    pending_optin: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
    archived: Mapped[int] = mapped_column(Integer, default=0)
    # Reading the provider's list state before deciding (resumable offset).
    provider_offset: Mapped[int] = mapped_column(Integer, default=0)
    provider_read_done: Mapped[bool] = mapped_column(Boolean, default=False)
    # After the run: the provider's own count of subscribed contacts of this run, and the
    # difference to what the ledger expects (0 = reconciled).
    provider_subscribed: Mapped[int | None] = mapped_column(Integer)
    drift: Mapped[int | None] = mapped_column(Integer)
    # Unsubscribes the safety valve held back (approve them with POST .../approve).
    held_unsubscribes: Mapped[int] = mapped_column(Integer, default=0)
    # Addresses onOffice returned that lie outside the connection's scope (counted in
    # onOffice's total, not synced): processed + out_of_scope = onOffice's cntabsolute.
    out_of_scope: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SyncBatch(TimestampMixin, Base):
    """Contacts of one onOffice page that must be sent (a chunk, ≤ 500). One provider job sends
    all chunks with the same `batch_no` (one for Mailchimp's 500, many for a Brevo import)."""

    __tablename__ = "sync_batch"
    __table_args__ = (
        UniqueConstraint("run_id", "chunk_no"),
        Index("ix_sync_batch_run_batch", "run_id", "batch_no"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    chunk_no: Mapped[int] = mapped_column(Integer)
    batch_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)


class SyncTagAdd(Base):
    """A tag one synced member of a run still lacks at Mailchimp. The batch that sent the
    member records it in the transaction that marks the batch done; the rows of a tag are
    flushed 500 at a time as one static-segment request (and the rest at the end of the run),
    so a run costs one segment call per tag per 500 members that need it, whatever the batches.
    `outcome` is the member's counter, moved to `rejected` if the tag cannot be set."""

    __tablename__ = "sync_tag_add"
    __table_args__ = (Index("ix_sync_tag_add_run_tag", "run_id", "tag"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))
    address_id: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(16))


class Contact(TimestampMixin, Base):
    """What the connector last synced for one email of one connection."""

    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("connection_id", "email"),
        Index("ix_contact_connection_address", "connection_id", "address_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    address_id: Mapped[int] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(320))  # normalised: trimmed, lower-case
    provider_id: Mapped[str | None] = mapped_column(String(128))
    # Hash of the values last written to the provider; equal hash = nothing to send.
    synced_hash: Mapped[str | None] = mapped_column(String(64))
    # The run that last claimed this email (duplicate detection across a whole run).
    last_run_id: Mapped[int | None] = mapped_column(BigInteger)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    subscribed: Mapped[bool | None] = mapped_column(Boolean)
    # Fingerprint (fields and tags) of values the provider rejected, and why: unchanged values
    # are not sent again (a forced run retries them).
    rejected_hash: Mapped[str | None] = mapped_column(String(64))
    rejected_reason: Mapped[str | None] = mapped_column(Text)
    # The consent ledger: the latest signal from each side, with its time (app/contacts/rules).
    # onOffice: yes|no|cancelled|not_specified|absent; the time the connector saw it change.
    onoffice_status: Mapped[str | None] = mapped_column(String(16))
    onoffice_changed_at: Mapped[datetime | None]
    # Provider: subscribed|pending|unsubscribed|blacklisted|cleaned|archived|deleted|...;
    # the provider's last_changed or the event time.
    provider_status: Mapped[str | None] = mapped_column(String(16))
    provider_changed_at: Mapped[datetime | None]
    # Other onOffice addresses the incremental sync saw with this email (duplicates created
    # since the last full sync, e.g. with a stray space an email lookup would miss): a
    # provider opt-out is written to them too.
    other_address_ids: Mapped[list[int] | None] = mapped_column(JSON)
    # The run whose re-read by id confirmed that none of this email's addresses is an active
    # newsletter Yes any more (only then does that run unsubscribe it as "left onOffice").
    stale_run_id: Mapped[int | None] = mapped_column(BigInteger)
    # When the incremental push last wrote this contact: a run that started before never
    # unsubscribes it.
    pushed_at: Mapped[datetime | None]
    # A user dismissed this member's removal (a held Archive-All burst): while the provider
    # still shows it removed, no archive/delete event of it is applied (app/contacts/rules).
    removal_dismissed_at: Mapped[datetime | None]
    # Per onOffice address of this email (the person): the Newsletter value last seen, when it
    # was seen to change, when the address was first seen, and a value the connector wrote and
    # expects to see (app/contacts/person.py).
    onoffice_addresses: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ProblemKind(StrEnum):
    duplicate = "duplicate"
    invalid_email = "invalid_email"
    missing_email = "missing_email"
    rejected = "rejected"
    opted_out = "opted_out"  # opted out at the provider: written back to onOffice, not sent
    pending_optin = "pending_optin"  # double opt-in not confirmed yet
    bounced = "bounced"  # cleaned / hard bounce at the provider: onOffice keeps its value
    archived = "archived"  # archived/deleted at the provider: not re-added, not written back


class Problem(Base):
    """An address of a run that was not synced, and why."""

    __tablename__ = "problem"
    __table_args__ = (
        UniqueConstraint("run_id", "address_id"),
        Index("ix_problem_run_id_kind", "run_id", "kind", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    address_id: Mapped[int] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(320), default="")
    kind: Mapped[str] = mapped_column(String(16))
    # Stable code of the reason, rendered per language at display time (catalogue key
    # "reason.<code>"), with its placeholders; "" on rows written before codes existed.
    reason_code: Mapped[str] = mapped_column(String(64), default="", server_default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The raw text: the validator's or the provider's own message (kept as the detail).
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundEventStatus(StrEnum):
    pending = "pending"
    held = "held"  # part of a burst of archives/deletes ("Archive All"): waits for a user
    applied = "applied"
    ignored = "ignored"
    # The provider's current state contradicts the event (forged, or overtaken by a later
    # change): recorded with the reason, nothing changed (app/contacts/confirm.py).
    unconfirmed = "unconfirmed"
    failed = "failed"


class InboundEvent(Base):
    """A received webhook/event, stored before it is acknowledged and applied asynchronously."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        UniqueConstraint("source", "dedupe_key"),
        Index("ix_inbound_event_status", "status"),
        # The last provider event a connection received (the status page).
        Index("ix_inbound_event_connection_received", "connection_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # mailchimp | brevo | onoffice
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connection.id", ondelete="SET NULL")
    )
    # The customer the event belongs to: it outlives a disconnect (the connection is then
    # NULL) and a reconnect adopts the events still pending or held (app/connections/lifecycle).
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    dedupe_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=InboundEventStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]


class HeldUnsubscribe(Base):
    """One contact whose unsubscribe the safety valve held back in a run: the exact set an
    approval of that run carries out (nothing recomputed at approval time)."""

    __tablename__ = "held_unsubscribe"
    __table_args__ = (UniqueConstraint("run_id", "email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    address_id: Mapped[int] = mapped_column(BigInteger)
    # When it was held; pending until an approval carried it out ("done").
    held_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="held")


class ProviderMember(Base):
    """The provider's list state as read at the start of a full sync (one row per email)."""

    __tablename__ = "provider_member"
    __table_args__ = (UniqueConstraint("connection_id", "email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime | None]
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    # The run whose read saw this member (older rows are from earlier reads).
    run_id: Mapped[int] = mapped_column(BigInteger)


class UsedSignature(Base):
    """Replay protection: a signed onOffice URL is accepted once per purpose."""

    __tablename__ = "used_signature"

    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    signature: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ProviderReconcile(Base):
    """The periodic reconciliation of one connection (app/reconcile/): what changed at the
    provider since `watermark` is read every PROVIDER_RECONCILE_INTERVAL_S."""

    __tablename__ = "provider_reconcile"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    # The connection's ledger key the watermark belongs to (another list starts afresh).
    ledger_key: Mapped[str | None] = mapped_column(String(255))
    # The next read asks for changes since this (minus an overlap): the start of the last
    # successful read.
    watermark: Mapped[datetime | None]
    attempted_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]  # the last successful read
    result: Mapped[str] = mapped_column(String(16), default="never")  # ok, failed, key_failed
    error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row (backs off)
    changed: Mapped[int] = mapped_column(Integer, default=0)  # contacts the last read returned
    events: Mapped[int] = mapped_column(Integer, default=0)  # events it stored for onOffice


# The preview's, the consent history's, the parked ledgers' and the onOffice access's tables
# live in their own modules (registered with the metadata here).
from app.db.access_models import OnOfficeAccess  # noqa: E402
from app.db.history_models import ConsentHistory  # noqa: E402
from app.db.lifecycle_models import ParkedContact  # noqa: E402
from app.db.preview_models import PreviewItem, SyncPreview  # noqa: E402

__all__ = ["ConsentHistory", "OnOfficeAccess", "ParkedContact", "PreviewItem", "SyncPreview"]
