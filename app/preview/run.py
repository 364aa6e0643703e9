"""The preview job (`sync.preview`): read both sides as a full sync does and decide every
address through the run's own decision (`app.syncs.decide.decide_page`), writing nothing to
onOffice or the provider. The outcome of each address is stored as a `preview_item`; the
counts are the ones a run started now would report (before the provider answers its batches).

Differences to a run, on purpose: the ledger is read, never written (the rows a run would
claim are kept in memory across pages, so the duplicate rule holds over the whole read); the
provider's list state is held in memory instead of `provider_member`; no batch, write-back or
push is queued, they are only listed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.connections.errors import PROVIDER_LABELS
from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.connections.repository import ConnectionRepository
from app.contacts.repository import ContactRepository
from app.contacts.rows import LedgerRow
from app.db.base import utcnow
from app.db.models import Connection, ProblemKind, Tenant
from app.i18n import encode, reasons
from app.inbox.repository import InboundEventRepository
from app.preview.repository import PreviewRepository
from app.resources import Resources
from app.syncs.common import default_language, onoffice_failure, provider_failure
from app.syncs.decide import PageDecision, decide_page
from app.syncs.finish import implausible_unsubscribes
from app.syncs.persons import PagePersons
from app.syncs.read import member_row
from app.syncs.repository import SyncRepository
from onoffice_client.models import OnOfficeError
from providers._paging import ordered_pages
from providers.base import ProviderError, normalise_email

log = logging.getLogger(__name__)

# What a preview writes to onOffice per address (nothing is written: this is what a run would).
WRITE_NO = "no"  # Newsletter No (an opt-out written back)
WRITE_ACTIVITY = "activity"  # a bounce: only an activity, the value stays
JOB_TIMEOUT_MARGIN_S = 2  # a preview ends this long before WORKER_JOB_TIMEOUT_S


@dataclass
class Member:
    """The provider's state of one list member, as the run's `provider_member` row has it."""

    status: str
    changed_at: datetime | None


async def run_preview(resources: Resources, preview_id: int) -> None:
    async with resources.transaction() as session:
        repo = PreviewRepository.from_session(session)
        preview = await repo.get(preview_id)
        if preview is None or preview.status != "queued":
            return  # gone, or already run (a redelivered job)
        connection, tenant = await ConnectionRepository.from_session(session).with_tenant(
            preview.connection_id
        )
        if connection is None or tenant is None:
            return
        await repo.update_preview(preview_id, status="running", started_at=utcnow())
        force = preview.force
    # Ended before the worker's job timeout cancels it (it would stay `running` for good).
    limit_s = max(1, resources.settings.WORKER_JOB_TIMEOUT_S - JOB_TIMEOUT_MARGIN_S)
    try:
        async with asyncio.timeout(limit_s):
            counts = await decide_all(resources, preview_id, connection, tenant, force=force)
    except TimeoutError:
        log.warning("preview.timeout", extra={"preview_id": preview_id, "limit_s": limit_s})
        error = encode("ui.pv_timeout", seconds=limit_s)
        await finish(resources, preview_id, "failed", error=error)
        return
    except ProviderError as exc:
        await finish(resources, preview_id, "failed", error=provider_failure(connection, exc))
        return
    except OnOfficeError as exc:
        await finish(resources, preview_id, "failed", error=onoffice_failure(exc))
        return
    except Exception:
        log.exception("preview.failed", extra={"preview_id": preview_id})
        await finish(resources, preview_id, "failed", error=encode("ui.pv_failed"))
        return
    await finish(resources, preview_id, "completed", counts=counts)


async def finish(resources: Resources, preview_id: int, status: str, **values: Any) -> None:
    async with resources.transaction() as session:
        await PreviewRepository.from_session(session).update_preview(
            preview_id, status=status, finished_at=utcnow(), **values
        )
    log.info("preview.%s", status, extra={"preview_id": preview_id})


async def read_members(resources: Resources, connection: Connection) -> dict[str, Member]:
    """The provider's list state, as a run reads it (archived members after the others)."""
    assert connection.list_id is not None
    provider = provider_for_connection(resources, connection)
    members: dict[str, Member] = {}

    def keep(contact: Any) -> None:
        row = member_row(contact)
        members[row["email"]] = Member(row["status"], row["changed_at"])

    pages = provider.iter_list_state(
        connection.list_id, concurrency=resources.settings.PROVIDER_READ_CONCURRENCY
    )
    async for chunk in pages:
        for contact in chunk:
            keep(contact)
    async for contact in provider.iter_contacts(connection.list_id, archived=True):
        keep(contact)
    return members


async def decide_all(
    resources: Resources, preview_id: int, connection: Connection, tenant: Tenant, *, force: bool
) -> dict[str, Any]:
    members = await read_members(resources, connection)
    onoffice = onoffice_for_connection(resources, tenant, connection)
    async with resources.sessionmaker() as session:
        held_back = await InboundEventRepository.from_session(session).pending_opt_outs(
            connection.id
        )
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    language = default_language(connection)
    run_id = -preview_id  # never a run's id: every ledger row this preview claims is its own
    # The emails this preview claimed, with the claiming address: all the duplicate rule needs of
    # an earlier page (a claimed row decides nothing more), so a book of any size holds one small
    # entry per person, not its ledger row.
    claimed: dict[str, int] = {}
    seen: set[int] = set()
    counts: Counter[str] = Counter()
    total: int | None = None
    persons = PagePersons(onoffice)
    pages = ordered_pages(
        persons.fetch,
        page_size=onoffice.page_size,
        concurrency=resources.settings.ONOFFICE_READ_CONCURRENCY,
    )
    try:
        async for at, read_page, page_total in pages:
            total = page_total if page_total is not None else total
            page = onoffice.in_scope(read_page)
            counts["out_of_scope"] += len(read_page) - len(page)
            fresh = [a for a in page if a.id not in seen]
            seen.update(a.id for a in fresh)
            emails = {normalise_email(a.email or "") for a in fresh}
            async with resources.sessionmaker() as session:
                ledger = await ContactRepository.from_session(session).ledger_rows(
                    connection.id, [e for e in emails if e not in claimed]
                )
            ledger |= {e: claimed_row(e, claimed[e], run_id) for e in emails if e in claimed}
            decision = decide_page(
                run_id,
                label,
                fresh,
                ledger,
                members,
                await persons.take(at, page),
                language,
                force=force,
                held_back=held_back,
                list_state_known=True,
            )
            claimed |= {e: r.address_id for e, r in ledger.items() if r.last_run_id == run_id}
            counts["onoffice_newsletter_total"] += len(fresh) - decision.already_synced
            counts.update(decision.counts)
            rows = item_rows(preview_id, decision)
            counts.update(r["outcome"] for r in rows if r["outcome"] in ("created", "updated"))
            counts["written_back"] += sum(1 for r in rows if r["onoffice_write"])
            async with resources.transaction() as session:
                await PreviewRepository.from_session(session).add_items(rows)
            if len(read_page) < onoffice.page_size:
                break
    finally:
        await pages.aclose()
        await persons.close()
    return await summary(resources, connection, counts, set(claimed), total)


async def summary(
    resources: Resources,
    connection: Connection,
    counts: Counter[str],
    claimed: set[str],
    total: int | None,
) -> dict[str, Any]:
    """The counts a run would report, and the unsubscribes it would make or hold back (the
    subscribed contacts whose email this preview did not claim)."""
    async with resources.sessionmaker() as session:
        subscribed = await PreviewRepository.from_session(session).subscribed_emails(connection.id)
        previous = await SyncRepository.from_session(session).latest_completed_run(connection.id)
    stale = len(subscribed - claimed)
    synced = counts["created"] + counts["updated"] + counts["unchanged"]
    held = implausible_unsubscribes(
        stale,
        synced,
        counts["onoffice_newsletter_total"],
        previous.onoffice_newsletter_total if previous else None,
    )
    return dict(counts) | {
        # As a run reports it: missing emails are invalid ones too.
        "invalid_emails": counts["invalid_emails"] + counts["missing_emails"],
        "onoffice_reported_total": total,
        "synced": synced,
        "unsubscribed": 0 if held else stale,
        "held_unsubscribes": stale if held else 0,
    }


def claimed_row(email: str, address_id: int, run_id: int) -> LedgerRow:
    """An email an earlier page claimed, as the duplicate rule reads it."""
    return LedgerRow(id=None, address_id=address_id, email=email, last_run_id=run_id)


def item_rows(preview_id: int, decision: PageDecision) -> list[dict[str, Any]]:
    """One row per decided address: its outcome and what would be written to onOffice."""
    opted_out_onoffice = {p.email for p in decision.person_write_backs + decision.push_later}
    written_back = {email for email, _signal in decision.write_backs}
    rows: list[dict[str, Any]] = []
    for problem in decision.problems:
        kind, code, email = problem["kind"], problem["reason_code"], problem["email"]
        write = None
        if kind == ProblemKind.opted_out and (
            (code == reasons.OPTED_OUT_ONOFFICE and email in opted_out_onoffice)
            or (code == reasons.OPTED_OUT_PROVIDER and email in written_back)
        ):
            write = WRITE_NO
        elif kind == ProblemKind.bounced and email in written_back:
            write = WRITE_ACTIVITY
        rows.append(
            item(preview_id, problem["address_id"], email, kind, write=write)
            | {k: problem[k] for k in ("reason_code", "reason_params", "reason")}
        )
    for contact in decision.to_send:
        outcome = "updated" if contact["listed"] else "created"
        rows.append(item(preview_id, contact["address_id"], contact["email"], outcome))
    return rows + [item(preview_id, a, e, "unchanged") for a, e in decision.unchanged]


def item(
    preview_id: int, address_id: int, email: str, outcome: str, *, write: str | None = None
) -> dict[str, Any]:
    return {
        "preview_id": preview_id,
        "address_id": address_id,
        "email": email,
        "outcome": str(outcome),
        "reason_code": "",
        "reason_params": None,
        "reason": "",
        "onoffice_write": write,
    }
