"""The one place a run's numbers are counted and judged (the run card, `GET /api/v1/syncs/{id}`,
the status card and the console all read them from here).

`reconciled` is true only when it is proven (`reconciliation`): the run completed, every address
onOffice reported was processed (processed + out of scope = onOffice's `cntabsolute`), the
outcomes add up to what was processed over every category, nothing is held back, the
provider's own count of subscribed contacts is known and the drift against the ledger is 0.
Otherwise it is false (something is proven wrong) or null (it cannot be told yet), with the
reason as a code (`reconciled_code`) and in words.
"""

from __future__ import annotations

from typing import Any

from app.db.models import SyncRun, SyncRunStatus
from app.i18n import t
from app.status.schemas import SideCounts
from app.syncs.schemas import SyncCounts

# Why `reconciled` is not true; each has `ui.rec_<code>` in the catalogue.
NOT_FINISHED = "not_finished"
NOT_COMPLETED = "not_completed"
SUM = "sum"
HELD = "held"
ONOFFICE_TOTAL_UNKNOWN = "onoffice_total_unknown"
ONOFFICE_TOTAL = "onoffice_total"
PROVIDER_UNKNOWN = "provider_unknown"
DRIFT = "drift"


def synced(run: SyncRun) -> int:
    return run.created + run.updated + run.unchanged + run.synced_unspecified


def outcome_sum(run: SyncRun) -> int:
    """Every address the run processed ends in exactly one of these categories."""
    invalid = run.invalid_emails + run.missing_emails
    return (
        synced(run)
        + run.duplicates
        + invalid
        + run.rejected
        + run.opted_out
        + run.pending_optin
        + run.bounced
        + run.archived
    )


def reconciliation(run: SyncRun) -> tuple[bool | None, str | None, dict[str, Any]]:
    """(reconciled, the reason code when not true, the reason's values)."""
    if run.status in (SyncRunStatus.queued, SyncRunStatus.running):
        return None, NOT_FINISHED, {}
    if run.status != SyncRunStatus.completed:
        return None, NOT_COMPLETED, {"status": f"@ui.st_{run.status}"}
    processed = run.onoffice_newsletter_total
    total = outcome_sum(run)
    if total != processed:
        return False, SUM, {"sum": total, "processed": processed}
    if run.held_unsubscribes:
        return False, HELD, {"held": run.held_unsubscribes}
    if run.addresses_total is None:
        return None, ONOFFICE_TOTAL_UNKNOWN, {}
    if processed + run.out_of_scope != run.addresses_total:
        return False, ONOFFICE_TOTAL, {"processed": processed, "total": run.addresses_total}
    if run.provider_subscribed is None or run.drift is None:
        return None, PROVIDER_UNKNOWN, {}
    if run.drift:
        return False, DRIFT, {"drift": f"{run.drift:+d}", "count": run.provider_subscribed}
    return True, None, {}


def reconciled_text(lang: str, code: str | None, params: dict[str, Any]) -> str | None:
    if code is None:
        return None
    return t(lang, f"ui.rec_{code}", **params)


def sync_counts(run: SyncRun, lang: str = "en") -> SyncCounts:
    """Every category of a run, with the verdict on whether they reconcile."""
    tells_outcome = run.synced_unspecified == 0
    reconciled, code, params = reconciliation(run)
    return SyncCounts(
        onoffice_newsletter_total=run.onoffice_newsletter_total,
        onoffice_reported_total=run.addresses_total,
        out_of_scope=run.out_of_scope,
        synced=synced(run),
        created=run.created if tells_outcome else None,
        updated=run.updated if tells_outcome else None,
        unchanged=run.unchanged,
        duplicates=run.duplicates,
        invalid_emails=run.invalid_emails + run.missing_emails,
        missing_emails=run.missing_emails,
        rejected=run.rejected,
        tags_pulled=run.tags_pulled,
        unsubscribed=run.unsubscribed,
        opted_out=run.opted_out,
        pending_optin=run.pending_optin,
        bounced=run.bounced,
        archived=run.archived,
        held_unsubscribes=run.held_unsubscribes,
        provider_subscribed=run.provider_subscribed,
        drift=run.drift,
        reconciled=reconciled,
        reconciled_code=code,
        reconciled_reason=reconciled_text(lang, code, params),
    )


def side_counts(
    reference: SyncRun | None,
    provider_subscribed: int | None,
    provider_error: str | None,
    kept_subscribed: int,
) -> SideCounts:
    """The status card's counts of both sides: onOffice's newsletter addresses (from the
    reference run), the provider's subscribed contacts now, and the contacts the connector
    currently keeps subscribed (the ledger's `subscribed`; contacts it unsubscribed itself are
    not among them)."""
    return SideCounts(
        onoffice_newsletter_total=reference.onoffice_newsletter_total if reference else None,
        provider_contacts=provider_subscribed,
        provider_error=provider_error,
        synced_contacts=kept_subscribed,
    )
