"""What needs a user's attention, from the status (pure: no I/O).

Each item names what is wrong and what to do (`ui.att_<code>` and `ui.att_<code>_do` in the
catalogue), most urgent first: decisions waiting (held unsubscribes, a held Archive-All burst,
the first sync into a list that already has members), then what is broken (a failed run, the
webhook, the provider key, events that could not be written to onOffice, a group without
claim), then what does not add up (drift, totals)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.connections.errors import PROVIDER_LABELS
from app.i18n import t

DECIDE = "decide"  # waits for a user's decision
BROKEN = "broken"  # something does not work until someone acts
CHECK = "check"  # the numbers do not add up


class AttentionItem(BaseModel):
    code: str = Field(
        description="Stable code (held_unsubscribes, held_events, first_sync, "
        "failed_run, webhook, provider_key, reconcile_failed, failed_events, "
        "scope_waiting, drift, not_reconciled)"
    )
    kind: str = Field(description="`decide`, `broken` or `check`")
    text: str = Field(description="What is wrong, in the caller's language")
    action: str = Field(description="What to do, in the caller's language")
    count: int | None = None


def attention(status: Any, lang: str) -> list[AttentionItem]:
    """The items for a status (`app.status.schemas.Status`)."""
    if not status.connected or status.connection is None:
        return []
    provider = PROVIDER_LABELS.get(status.connection.provider, status.connection.provider)
    items: list[AttentionItem] = []

    def add(code: str, kind: str, count: int | None = None, **params: Any) -> None:
        values = {"provider": provider, "count": count, **params}
        items.append(
            AttentionItem(
                code=code,
                kind=kind,
                text=t(lang, f"ui.att_{code}", **values),
                action=t(lang, f"ui.att_{code}_do", **values),
                count=count,
            )
        )

    last, done = status.last_sync, status.last_completed_sync
    active = last is not None and last.status in ("queued", "running")
    if last is not None and last.counts.held_unsubscribes:
        add("held_unsubscribes", DECIDE, last.counts.held_unsubscribes, run=last.id)
    if status.pending.held_inbound_events:
        add("held_events", DECIDE, status.pending.held_inbound_events)
    live = status.counts.provider_contacts if status.counts else None
    if done is None and not active and live:
        add("first_sync", DECIDE, live)
    if last is not None and last.status == "failed":
        add("failed_run", BROKEN, None, run=last.id, error=last.error or "–")
    webhook = status.webhook
    if webhook is not None and webhook.state in ("broken", "check_failed"):
        add("webhook", BROKEN, None, error=webhook.error or webhook.summary)
    reconciliation = status.reconciliation
    if reconciliation is not None and reconciliation.result == "key_failed":
        add("provider_key", BROKEN)
    elif reconciliation is not None and reconciliation.result == "failed":
        add("reconcile_failed", BROKEN, None, error=reconciliation.error or "–")
    if status.pending.failed_inbound_events:
        add("failed_events", BROKEN, status.pending.failed_inbound_events)
    if status.scope is not None and status.scope.waiting:
        add("scope_waiting", BROKEN, None, waiting=status.scope.waiting)
    if done is not None and done.counts.drift:
        add("drift", CHECK, done.counts.provider_subscribed, drift=f"{done.counts.drift:+d}")
    elif (
        done is not None
        and done.counts.reconciled is False
        and done.counts.reconciled_code not in ("held", "drift")
    ):
        add("not_reconciled", CHECK, None, run=done.id, reason=done.counts.reconciled_reason)
    return items
