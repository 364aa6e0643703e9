"""Command-line views: a live progress bar of a sync, its summary, and the status card.

Used by `connector sync --wait`, `connector status` and the demo (`make run`), so the console
shows the same numbers as the iframe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from app.connections.factory import provider_label
from app.i18n import t
from app.status.schemas import Status
from app.syncs.schemas import SyncRunRead

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.tenants.auth import TenantContext

FetchRun = Callable[[], Awaitable[SyncRunRead]]


def num(lang: str, value: int | None) -> str:
    """1,234 in English, 1.234 in German; – when unknown."""
    if value is None:
        return "–"
    text = f"{value:,}"
    return text.replace(",", ".") if lang == "de" else text


def _active(run: SyncRunRead) -> bool:
    return run.status in ("queued", "running")


async def follow_run(
    fetch: FetchRun, *, console: Console, lang: str = "en", interval_s: float = 0.5
) -> SyncRunRead:
    """Poll a run until it ends, drawing addresses read and batches sent as progress bars."""
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        reading = progress.add_task(t(lang, "cli.reading"), total=None)
        sending = progress.add_task(t(lang, "cli.sending"), total=None)
        while True:
            run = await fetch()
            p = run.progress
            total = p.addresses_total or (p.addresses_read if p.reading_done else None)
            progress.update(reading, completed=p.addresses_read, total=total)
            progress.update(
                sending,
                completed=p.batches_done,
                total=p.batches_total if p.reading_done or p.batches_total else None,
            )
            if not _active(run):
                progress.update(reading, total=p.addresses_read, completed=p.addresses_read)
                progress.update(sending, total=p.batches_total, completed=p.batches_done)
                return run
            await asyncio.sleep(interval_s)


def print_summary(console: Console, run: SyncRunRead, *, lang: str = "en") -> None:
    c = run.counts
    status = t(lang, f"ui.st_{run.status}")
    console.print(f"\n[bold]{t(lang, 'cli.summary_title', run=run.id, status=status)}[/bold]")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(justify="left")
    table.add_column(justify="right")
    synced = num(lang, c.synced)
    if c.created is not None and c.updated is not None:
        detail = t(
            lang,
            "ui.c_synced_detail",
            created=num(lang, c.created),
            updated=num(lang, c.updated),
            unchanged=num(lang, c.unchanged),
        )
        synced += f" ({detail})"
    rows = [
        ("ui.c_total", num(lang, c.onoffice_newsletter_total)),
        ("ui.c_synced", synced),
        ("ui.c_duplicates", num(lang, c.duplicates)),
        ("ui.c_invalid", num(lang, c.invalid_emails)),
        ("ui.c_rejected", num(lang, c.rejected)),
        ("ui.c_opted_out", num(lang, c.opted_out)),
        ("ui.c_pending_optin", num(lang, c.pending_optin)),
        ("ui.c_bounced", num(lang, c.bounced)),
        ("ui.c_archived", num(lang, c.archived)),
        ("ui.c_unsubscribed", num(lang, c.unsubscribed)),
        ("ui.c_held_unsubscribes", num(lang, c.held_unsubscribes)),
        ("ui.c_provider_subscribed", num(lang, c.provider_subscribed)),
        ("ui.c_drift", num(lang, c.drift)),
        ("ui.c_reconciled", reconciled_word(lang, c.reconciled, c.reconciled_reason)),
        ("cli.duration", f"{run.duration_s:.1f} s" if run.duration_s is not None else "–"),
    ]
    for key, value in rows:
        table.add_row(t(lang, key), value)
    console.print(table)
    if run.error:
        console.print(f"[red]{t(lang, 'ui.run_error')}: {run.error}[/red]")
    if run.warning:
        console.print(f"[yellow]{run.warning}[/yellow]")


def reconciled_word(lang: str, reconciled: bool | None, reason: str | None) -> str:
    """yes, or no / not yet known with the reason."""
    if reconciled:
        return t(lang, "ui.yes")
    word = t(lang, "ui.no" if reconciled is False else "ui.unknown")
    return f"{word}: {reason}" if reason else word


def print_status(console: Console, status: Status, *, lang: str = "en") -> None:
    """The iframe's status card on the console."""
    console.print(f"[bold]{t(lang, 'ui.status_title')}[/bold]")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column()
    table.add_column()
    if not status.connected or status.connection is None:
        table.add_row(t(lang, "ui.conn_title"), t(lang, "ui.s_not_connected"))
        console.print(table)
        return
    provider = provider_label(status.connection.provider)
    counts = status.counts
    live = "–"
    if counts is not None:
        live = (
            num(lang, counts.provider_contacts)
            if counts.provider_contacts is not None
            else t(lang, "ui.s_provider_error", message=counts.provider_error or "–")
        )
    onoffice_total = counts.onoffice_newsletter_total if counts else None
    table.add_row(t(lang, "ui.provider"), provider)
    table.add_row(
        t(lang, "ui.s_onoffice_now"), num(lang, onoffice_total) if onoffice_total else "–"
    )
    table.add_row(t(lang, "ui.s_provider_subscribed", provider=provider), live)
    table.add_row(t(lang, "ui.s_synced"), num(lang, counts.synced_contacts) if counts else "–")
    last = status.last_sync
    if last is not None:
        when = last.finished_at or last.started_at or last.created_at
        table.add_row(
            t(lang, "ui.s_last_sync"),
            f"#{last.id} {when:%Y-%m-%d %H:%M} · {t(lang, f'ui.st_{last.status}')}",
        )
    table.add_row(t(lang, "ui.s_pending_batches"), str(status.pending.sync_batches))
    table.add_row(t(lang, "ui.s_inbound"), str(status.pending.inbound_events))
    table.add_row(t(lang, "ui.s_failed_events"), str(status.pending.failed_inbound_events))
    held = "; ".join(f"{num(lang, h.count)} · {h.reason}" for h in status.held_back)
    table.add_row(t(lang, "ui.s_held_back"), held or t(lang, "ui.s_held_back_none"))
    table.add_row(t(lang, "ui.s_status_pages"), " ".join(status.status_pages.values()))
    console.print(table)


async def _cli_context(
    session: AsyncSession, customer: str, group: str, console: Console
) -> TenantContext | None:
    """The command line's access to one activated customer's connection (None, said on the
    console, when the customer is not activated)."""
    from app.tenants.auth import TenantContext
    from app.tenants.repository import TenantRepository

    tenant = await TenantRepository.from_session(session).get_by_customer_web_id(customer)
    if tenant is None:
        console.print(f"error: no activated onOffice customer {customer!r}")
        return None
    return TenantContext(tenant.id, customer, group, "cli")


async def run_sync(
    *, customer: str, group: str, force: bool, wait: bool, lang: str = "en", as_json: bool = False
) -> int:
    """Start a full sync for one connection from the command line and report its outcome."""
    from app.config import get_settings
    from app.resources import create_resources
    from app.syncs.repository import SyncRepository
    from app.syncs.service import sync as sync_service
    from app.worker.queue import InProcessQueue
    from app.worker.registry import load_tasks

    console = Console()
    load_tasks()
    resources = await create_resources(get_settings())
    try:
        async with resources.transaction() as session:
            if (context := await _cli_context(session, customer, group, console)) is None:
                return 2
            run = await sync_service.start(session, context, force=force)
        console.print(f"sync {run.id} queued")
        # In embedded mode the jobs run in this process: leaving would stop them.
        if not wait and not isinstance(resources.queue, InProcessQueue):
            return 0

        async def fetch() -> SyncRunRead:
            async with resources.sessionmaker() as session:
                current = await SyncRepository.from_session(session).get_run(run.id)
            assert current is not None
            return sync_service.to_read(current, lang=lang)

        if as_json:
            final = await fetch()
            while _active(final):
                await asyncio.sleep(0.5)
                final = await fetch()
            print(final.model_dump_json(indent=2))
        else:
            final = await follow_run(fetch, console=console, lang=lang)
            print_summary(console, final, lang=lang)
        return 0 if final.status == "completed" else 1
    finally:
        await resources.aclose()


async def run_status(*, customer: str, group: str, lang: str = "en") -> int:
    """Print the status card of one customer's connection."""
    from app.config import get_settings
    from app.resources import create_resources
    from app.status.service import status as status_service

    console = Console()
    resources = await create_resources(get_settings())
    try:
        async with resources.sessionmaker() as session:
            if (context := await _cli_context(session, customer, group, console)) is None:
                return 2
            status = await status_service.get(session, resources, context, lang)
        print_status(console, status, lang=lang)
        return 0
    finally:
        await resources.aclose()


async def run_revocation(command: str, *, customer: str, reason: str = "") -> int:
    """`connector deactivate` / `connector revoke-sessions` for one customer."""
    from app.config import get_settings
    from app.resources import create_resources
    from app.tenants.revocation import deactivate, revoke_sessions

    console = Console()
    resources = await create_resources(get_settings())
    try:
        if command == "deactivate":
            result = await deactivate(resources, customer, reason)
        else:
            result = await revoke_sessions(resources, customer)
    finally:
        await resources.aclose()
    if not result.found:
        console.print(f"error: no activated onOffice customer {customer!r}")
        return 2
    done = "deactivated" if command == "deactivate" else "sessions revoked"
    console.print(f"customer {customer}: {done}")
    return 0


async def run_privacy(
    command: str, *, customer: str, email: str = "", delete_at_provider: bool = False
) -> int:
    """`connector forget` / `connector purge-tenant` for one customer."""
    from app.config import get_settings
    from app.privacy.service import forget, purge_tenant
    from app.resources import create_resources

    console = Console()
    resources = await create_resources(get_settings())
    try:
        if command == "forget":
            result = await forget(resources, customer, email, delete_at_provider=delete_at_provider)
            if not result.found:
                console.print(f"error: no onOffice customer {customer!r}")
                return 2
            rows = ", ".join(f"{table} {n}" for table, n in sorted(result.rows.items()))
            console.print(f"forgotten: {rows}; deleted at {result.deleted_at_provider} list(s)")
            return 0
        if not await purge_tenant(resources, customer, require_inactive=True):
            console.print(
                f"error: no deactivated onOffice customer {customer!r} "
                "(run `connector deactivate --customer …` first)"
            )
            return 2
        console.print(f"customer {customer}: every row deleted")
        return 0
    finally:
        await resources.aclose()
