"""What the full sync's steps share: loading a run, the batch size and language, failing a run,
and the hand-over to `sync.finalize` once reading and every batch are done."""

from __future__ import annotations

import logging

from app.connections.errors import PROVIDER_LABELS, STATUS_PAGES
from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import GroupClaimMissing
from app.connections.repository import ConnectionRepository
from app.contacts.values import (
    Language,
)
from app.contacts.writer import LedgerWriter
from app.db.base import utcnow
from app.db.models import (
    Connection,
    SyncRun,
    SyncRunStatus,
    Tenant,
)
from app.history.writer import FULL_SYNC
from app.i18n import encode
from app.lifecycle.repository import LifecycleRepository
from app.metrics import SYNC_RUNS
from app.resources import Resources
from app.syncs.jobs import enqueue_finalize
from app.syncs.repository import ACTIVE_STATUSES, SyncRepository
from app.worker.context import retry_or_fail
from onoffice_client.models import OnOfficeAccessLost, OnOfficeError
from providers.base import (
    ProviderError,
)

log = logging.getLogger(__name__)


# One read job's share of the pages (at most a third of the job timeout): short jobs keep crash
# recovery fast, because arq re-runs a dead worker's job only after its timeout.
READ_SLICE_S = 20.0


def batch_limit(resources: Resources, connection: Connection) -> int:
    """Contacts per provider job: what the connection's client takes in one call
    (`NewsletterProvider.max_batch_size`, configured by SYNC_BATCH_SIZE for Mailchimp and
    BREVO_IMPORT_BATCH_SIZE for Brevo)."""
    return provider_for_connection(resources, connection).max_batch_size


def default_language(connection: Connection) -> Language:
    return (
        Language.en if (connection.account_language or "").lower().startswith("en") else Language.de
    )


async def load_run(resources: Resources, run_id: int) -> tuple[SyncRun, Connection, Tenant] | None:
    async with resources.sessionmaker() as session:
        run = await SyncRepository.from_session(session).get_run(run_id)
        if run is None:
            return None
        connection, tenant = await ConnectionRepository.from_session(session).with_tenant(
            run.connection_id
        )
        if connection is None or tenant is None:
            return None
        return run, connection, tenant


def provider_failure(connection: Connection, exc: ProviderError) -> str:
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    return (
        f"{label}: the list could not be read ({exc.message}); "
        f"see {STATUS_PAGES.get(connection.provider, '')} and start the sync again."
    )


def onoffice_failure(exc: OnOfficeError) -> str:
    if isinstance(exc, GroupClaimMissing):
        return encode("ui.scope_waiting", group=exc.message)
    if isinstance(exc, OnOfficeAccessLost):  # app/connections/access.py
        return encode("run.onoffice_access_refused", detail=exc.message)
    return encode("run.onoffice_failed", detail=exc.message, status_page=STATUS_PAGES["onoffice"])


async def load_active_run(
    resources: Resources, run_id: int
) -> tuple[SyncRun, Connection, Tenant] | None:
    """The run with its connection and tenant, or None when it is gone or no longer active."""
    loaded = await load_run(resources, run_id)
    if loaded is None or loaded[0].status not in ACTIVE_STATUSES:
        return None
    return loaded


async def retry_or_fail_run(
    resources: Resources,
    run_id: int,
    exc: BaseException,
    message: str,
    *,
    transient: bool = True,
    job_try: int,
    max_tries: int,
) -> None:
    """Retry the job while tries are left (at least the server's Retry-After later); else
    fail the run with `message`."""
    retry_or_fail(
        exc,
        transient=transient,
        job_try=job_try,
        max_tries=max_tries,
        retry_after=getattr(exc, "retry_after", None),
    )
    await fail_run(resources, run_id, message)


async def maybe_finalize(resources: Resources, run_id: int) -> None:
    async with resources.transaction() as session:
        run = await SyncRepository.from_session(session).get_run(run_id)
        if (
            run is not None
            and run.status in ACTIVE_STATUSES
            and run.reading_done
            and run.batches_done >= run.batches_total
        ):
            enqueue_finalize(run_id)


async def fail_run(resources: Resources, run_id: int, message: str) -> None:
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        unsent = await repo.unsent_tag_emails(run_id)
        run = await repo.get_run(run_id) if unsent else None
        if run is not None:
            # Sent without the tags they still lack: the next run sends them again.
            ledger = LedgerWriter(run.connection_id, FULL_SYNC, run_id)
            ledger.unsent(unsent)
            await ledger.save(session)
        # A cancelled run stays cancelled.
        ended = await LifecycleRepository.from_session(session).end_run(
            run_id,
            status=SyncRunStatus.failed,
            phase="failed",
            finished_at=utcnow(),
            error=message,
        )
    if not ended:
        return
    SYNC_RUNS.labels("failed").inc()
    log.warning("sync.failed", extra={"run_id": run_id, "error": message})
