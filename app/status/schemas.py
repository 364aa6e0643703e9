from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.attention.rules import AttentionItem
from app.connections.schemas import ConnectionRead
from app.syncs.schemas import SyncRunRead


class SideCounts(BaseModel):
    onoffice_newsletter_total: int | None = Field(
        description="Active onOffice addresses with newsletter Yes (from the latest run)"
    )
    provider_contacts: int | None = Field(
        description="Subscribed contacts of the provider list (live; unsubscribed, cleaned and "
        "archived members are not counted)"
    )
    provider_error: str | None = Field(default=None, description="Why the live count is missing")
    synced_contacts: int = Field(
        description="Contacts the connector currently keeps subscribed (not those it "
        "unsubscribed or that opted out)"
    )


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
    reason: str = Field(
        description="Why, in the caller's language, then the provider's own message labelled "
        "as the original"
    )


class UnconfirmedEvent(BaseModel):
    event_id: int
    email: str
    event: str = Field(description="The provider's event name, e.g. `unsubscribe`")
    reason: str = Field(description="What the provider's current state showed instead")
    received_at: datetime
    claimed: str = Field(
        default="",
        description="What the webhook claimed: `subscribe`, `unsubscribe`, `profile`, "
        "`email_changed`, `deleted` or `cleaned`",
    )
    new_email: str | None = Field(default=None, description="The new address of an email change")
    shown: str = Field(
        default="unknown",
        description="What the provider showed: its status (`subscribed`, `unsubscribed`, "
        "`blacklisted`, `archived`, `not_in_list`, …), `none` (no such contact) or `unknown`",
    )


class HeldBack(BaseModel):
    reason_code: str = Field(description="`safety_valve`, or a problem reason code")
    reason: str = Field(description="Why, in the caller's language")
    count: int


class Reconciliation(BaseModel):
    """The periodic reconciliation with the provider (every PROVIDER_RECONCILE_INTERVAL_S)."""

    result: str = Field(
        description="`never` (not yet), `ok`, `failed` (the provider was unreachable or "
        "refused the read) or `key_failed` (the API key was rejected: save a valid key); "
        "after a failure the next try waits twice as long each time (at most 16 intervals)"
    )
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    changed: int = Field(default=0, description="Contacts the provider reported changed")
    events: int = Field(
        default=0, description="Changes onOffice had to learn (stored as events and applied)"
    )
    error: str | None = Field(default=None, description="The provider's answer when it failed")
    interval_s: int = Field(description="PROVIDER_RECONCILE_INTERVAL_S")


class WebhookHealth(BaseModel):
    """The provider webhook as the periodic health check found it (app/webhooks/checkup.py)."""

    state: str = Field(
        description="`ok`, `repaired` (the last check found drift and repaired it), `broken` "
        "(could not be repaired: `error` says why), `check_failed` (the provider did not "
        "answer) or `unchecked` (not checked since the connection was saved)"
    )
    summary: str = Field(description="The state in words, in the caller's language")
    checked_at: datetime | None = Field(description="The last check")
    repaired_at: datetime | None = Field(description="The last repair")
    problems: list[str] = Field(
        default_factory=list,
        description="What the last repair found wrong, as codes (`missing`, `token`, "
        "`event_off:<event>`, `event_on:<event>`, `source_off:<source>`, `source_on:<source>`)",
    )
    problems_text: str = Field(default="", description="The same in words")
    error: str | None = Field(default=None, description="Why it is broken or was not checked")
    last_event_at: datetime | None = Field(
        description="When the last event from the provider was received"
    )


class ScopeStatus(BaseModel):
    kind: str = Field(description="`customer`, `group_users` or `field` (see the connection)")
    text: str = Field(description="Which onOffice addresses the connection covers")
    addresses: int | None = Field(
        default=None,
        description="Every onOffice address the connection covers, counted live with its own "
        "claim and scope (cached for 5 minutes); null while its group waits for a claim or "
        "onOffice does not answer",
    )
    newsletter_addresses: int | None = Field(
        default=None,
        description="Of them, the active addresses with newsletter Yes (counted likewise)",
    )
    waiting: str | None = Field(
        default=None,
        description="Why the connection's onOffice work waits (no user of its group opened "
        "the connector yet), in the caller's language",
    )


class OnOfficeAccessState(BaseModel):
    """Whether onOffice lets the connector in (app/connections/access.py)."""

    state: str = Field(
        description="`ok`, or `refused`: onOffice refuses the customer's API user (provider "
        "locked, subscription cancelled, API user gone); the connection's onOffice jobs are "
        "stopped until a re-check (every ONOFFICE_ACCESS_RECHECK_S) finds the access working"
    )
    text: str = Field(description="The state in words, in the caller's language")
    refused_at: datetime | None = Field(default=None, description="The first refusal")
    checked_at: datetime | None = Field(default=None, description="The last refusal or check")
    errorcode: int | None = Field(default=None, description="onOffice's error code")
    reason: str | None = Field(default=None, description="onOffice's own text")
    recheck_s: int = Field(description="ONOFFICE_ACCESS_RECHECK_S")


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
    reconciliation: Reconciliation | None = Field(
        default=None, description="The last reconciliation with the provider"
    )
    webhook: WebhookHealth | None = Field(
        default=None, description="The provider webhook's health (None when not connected)"
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
    scope: ScopeStatus | None = Field(
        default=None, description="The onOffice addresses this connection covers"
    )
    onoffice_access: OnOfficeAccessState | None = Field(
        default=None, description="Whether onOffice lets the connector in (None when not connected)"
    )
    attention: list[AttentionItem] = Field(
        default_factory=list,
        description="What needs a user: decisions waiting, what is broken, numbers that do not "
        "add up; each with what to do (app/attention/rules.py)",
    )
