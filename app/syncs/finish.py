"""Step 3 (`sync.finalize`): once reading is done and every batch finished, the tags still to add
are flushed, contacts onOffice no longer lists are unsubscribed (behind the safety valve), the
drift against the provider is checked and the tag pull-back starts; plus the resume sweep.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC
from typing import Any

from app.connections.factory import (
    provider_for_connection,
    supports_tags,
)
from app.contacts.repository import ContactRepository, onoffice_signal, provider_signal
from app.contacts.rules import Signal, unseen_opt_out
from app.contacts.writer import LedgerWriter
from app.db.base import utcnow
from app.db.models import (
    Connection,
    Contact,
    SyncRun,
    SyncRunStatus,
)
from app.i18n import encode
from app.lifecycle.cancel import stopped
from app.lifecycle.held import (
    carry_out_held,
    hold_stale,
    record_left_onoffice,
    start_unsubscribing,
)
from app.lifecycle.repository import LifecycleRepository
from app.metrics import SYNC_RUNS
from app.resources import Resources
from app.syncs.common import (
    READ_SLICE_S,
    fail_run,
    load_run,
    onoffice_failure,
    retry_or_fail_run,
)
from app.syncs.jobs import (
    enqueue_batch,
    enqueue_finalize,
    enqueue_pull_tags,
    enqueue_read,
    enqueue_unsubscribe_slice,
)
from app.syncs.liveness import IdleRuns
from app.syncs.recheck import confirm_gone, recheck_stale
from app.syncs.repository import ACTIVE_STATUSES, SyncRepository
from app.syncs.tags import flush_tags
from app.worker.context import retry_later, retry_or_fail
from onoffice_client.models import OnOfficeError, OnOfficeTransientError
from providers.base import (
    ProviderError,
    ProviderRequestError,
    ProviderTransientError,
)

log = logging.getLogger(__name__)


STALE_CHUNK = 100


STALE_MIN = 5  # the safety valve never blocks fewer than this many unsubscribes


STALE_SHARE = 0.2  # it holds them back above this share of the synced contacts


SHRINK_SHARE = 0.5  # or when onOffice answers with fewer newsletter addresses than this share


async def finalize(
    resources: Resources, run_id: int, *, job_try: int = 1, max_tries: int = 10
) -> None:
    """All batches are done: unsubscribe contacts that left onOffice's newsletter (safety
    valve), pull Mailchimp tags back (in slices), check the provider's count, complete."""
    loaded = await load_run(resources, run_id)
    if loaded is None:
        return
    run, connection, _tenant = loaded
    if run.status not in ACTIVE_STATUSES or not run.reading_done:
        return
    if run.batches_done < run.batches_total:
        return
    if run.phase != "tags":
        try:
            provider = provider_for_connection(resources, connection)
            if await flush_tags(resources, run_id, connection, provider, final=True):
                # An earlier batch job is still adding some: wait for it (its rows are locked).
                retry_later(0.5)
            finished = await unsubscribe_stale(resources, run, connection)
        except OnOfficeTransientError as exc:  # the re-read by id: try again, the run goes on
            retry_or_fail(exc, transient=True, job_try=job_try, max_tries=max_tries)
            raise
        except ProviderTransientError as exc:
            message = encode("run.unsubscribe_failed", detail=str(exc))
            await retry_or_fail_run(
                resources, run_id, exc, message, job_try=job_try, max_tries=max_tries
            )
            return
        if not finished:
            return  # a continuation job goes on
    if not supports_tags(connection.provider):  # no tags to pull back
        await complete_run(resources, run_id, connection)
        return
    async with resources.transaction() as session:
        await SyncRepository.from_session(session).set_run(run_id, phase="tags")
        enqueue_pull_tags(run_id, run.tags_offset)


async def safety_valve(
    resources: Resources, run: SyncRun, connection: Connection
) -> tuple[str, dict[str, Any]] | None:
    """Why the stale unsubscribes of `run` look implausible, as a catalogue key and its
    parameters (None: they are not).

    Held back when more than STALE_SHARE of the synced contacts (and at least STALE_MIN)
    would go at once, or when onOffice answered with fewer than SHRINK_SHARE of the newsletter
    addresses of the last completed run: both look like a broken onOffice answer, and a list
    must never be emptied by one."""
    async with resources.sessionmaker() as session:
        stale = await ContactRepository.from_session(session).count_stale(connection.id, run.id)
        current = await SyncRepository.from_session(session).get_run(run.id)
        previous = await SyncRepository.from_session(session).latest_completed_run(connection.id)
    if not stale or current is None:
        return None
    synced = current.created + current.updated + current.unchanged + current.synced_unspecified
    previous_total = None
    if previous is not None and previous.id != run.id:
        previous_total = previous.onoffice_newsletter_total
    return implausible_unsubscribes(
        stale, synced, current.onoffice_newsletter_total, previous_total
    )


def implausible_unsubscribes(
    stale: int, synced: int, newsletter_total: int, previous_total: int | None
) -> tuple[str, dict[str, Any]] | None:
    """The safety valve's rule (pure; the preview predicts it through this too): why `stale`
    unsubscribes beside `synced` contacts look implausible, as a catalogue key and its
    parameters, or None."""
    if not stale:
        return None
    if stale >= STALE_MIN and stale > STALE_SHARE * (synced + stale):
        share = f"{STALE_SHARE:.0%}"
        return "run.valve_share", {"stale": stale, "total": synced + stale, "share": share}
    if (
        previous_total is not None
        and previous_total >= STALE_MIN
        and newsletter_total < SHRINK_SHARE * previous_total
    ):
        return "run.valve_shrink", {"current": newsletter_total, "previous": previous_total}
    return None


async def unsubscribe_stale(
    resources: Resources, run: SyncRun, connection: Connection, *, approved: bool = False
) -> bool:
    """onOffice is the master: contacts synced before whose address this run did not find
    among the newsletter-Yes addresses (set to No, archived, deleted, or the email removed) are
    unsubscribed at the provider, unless the safety valve holds them back (then only an
    approval of this run unsubscribes them). "Not found" is first confirmed by a re-read by id
    (`syncs.recheck`: still-Yes addresses are synced instead, the rest marked), and each chunk
    is re-read once more right before it is unsubscribed. Returns False when a continuation
    job (time slice, or the batches of addresses found still Yes) takes over."""
    assert connection.list_id is not None
    if not approved and run.held_unsubscribes == 0:
        # "Not read by this run" is no proof (offset paging over a changing filter): only
        # what a re-read by id confirms is stale; addresses still Yes are synced instead.
        try:
            if not await recheck_stale(resources, run, connection):
                return False  # batches or a continuation job go on; finalize runs again
        except OnOfficeTransientError:
            raise  # the job's retry (finalize, approve_unsubscribes)
        except OnOfficeError as exc:
            await fail_run(resources, run.id, onoffice_failure(exc))
            return False
        reason = await safety_valve(resources, run, connection)
        if reason is not None:
            # The held set is stored with the run: an approval acts on exactly it.
            stale = await hold_stale(resources, run, connection)
            # Rendered in the reader's language (app.i18n.render_stored).
            key, params = reason
            warning = encode(key, held=stale, run=run.id, **params)
            async with resources.transaction() as session:
                await SyncRepository.from_session(session).set_run(
                    run.id, warning=warning, held_unsubscribes=stale
                )
            log.warning("sync.stale_held_back", extra={"run_id": run.id, "stale": stale})
            return True
    elif not approved:
        return True  # held back by an earlier try of this step
    clients = await start_unsubscribing(resources, run, connection)
    if clients is None:
        return True
    provider, onoffice = clients
    deadline = time.monotonic() + min(READ_SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    while True:
        if not approved and await stopped(resources, run.id):
            return False  # cancelled: nothing more is unsubscribed
        async with resources.sessionmaker() as session:
            rows = await ContactRepository.from_session(session).stale(
                connection.id, run.id, STALE_CHUNK
            )
        if not rows:
            return True
        try:
            gone = await confirm_gone(onoffice, resources, rows)
        except OnOfficeTransientError:
            raise  # the job's retry (finalize, approve_unsubscribes)
        except OnOfficeError as exc:
            if approved:
                raise  # nothing unsubscribed; the held set stays for another approval
            await fail_run(resources, run.id, onoffice_failure(exc))
            return False
        done: list[Contact] = []
        for row in gone:
            try:
                await provider.set_subscription(connection.list_id, row.email, False)
            except ProviderRequestError as exc:
                log.warning(
                    "sync.unsubscribe_refused", extra={"run_id": run.id, "reason": exc.message}
                )
            done.append(row)
        async with resources.transaction() as session:
            await record_left_onoffice(session, run.id, connection, done)
            await SyncRepository.from_session(session).increment(run.id, unsubscribed=len(done))
        if time.monotonic() > deadline:
            async with resources.transaction():
                enqueue_unsubscribe_slice(run.id, approved=approved)
            return False


async def approve_unsubscribes(
    resources: Resources, run_id: int, *, job_try: int = 1, max_tries: int = 10
) -> None:
    """Carry out the unsubscribes the safety valve held back in `run_id`: exactly the set it
    stored (app/lifecycle/held.py), nothing else is sent again."""
    loaded = await load_run(resources, run_id)
    if loaded is None:
        return
    run, connection, _tenant = loaded
    try:
        finished = await carry_out_held(resources, run, connection)
    except (ProviderTransientError, OnOfficeTransientError) as exc:
        retry_or_fail(exc, transient=True, job_try=job_try, max_tries=max_tries)
        raise
    if finished:
        async with resources.transaction() as session:
            # A user may have approved a selection: the rest stays held.
            left = await LifecycleRepository.from_session(session).count_held(run_id)
            values: dict[str, Any] = {"held_unsubscribes": left, "phase": "done"}
            await SyncRepository.from_session(session).set_run(
                run_id, **(values | ({} if left else {"warning": None}))
            )
        await check_drift(resources, run_id, connection)


async def check_drift(resources: Resources, run_id: int, connection: Connection) -> None:
    """Compare the provider's own count of subscribed contacts with what the ledger expects;
    the difference is the run's `drift` (0 = reconciled with the provider)."""
    assert connection.list_id is not None
    provider = provider_for_connection(resources, connection)
    try:
        counted = await provider.count_subscribed(connection.list_id)
    except ProviderError as exc:
        log.warning("sync.drift_unknown", extra={"run_id": run_id, "error": exc.message})
        return
    async with resources.transaction() as session:
        expected = await ContactRepository.from_session(session).count_subscribed(connection.id)
        await SyncRepository.from_session(session).set_run(
            run_id, provider_subscribed=counted, drift=counted - expected
        )


async def write_back_unseen_opt_outs(
    resources: Resources, run_id: int, connection: Connection
) -> int:
    """Unsubscribes this run read at the provider for known people it found no newsletter-Yes
    address of (e.g. a bounced member unsubscribed since, its webhook lost): each goes to
    onOffice as its webhook would have, when `rules.unseen_opt_out` says the ledger has not
    recorded it (deduplicated per state and time, so a resumed run stores it once)."""
    stored = 0
    ledger = LedgerWriter.for_run(connection, run_id)
    async with resources.transaction() as session:
        repo = ContactRepository.from_session(session)
        for contact, status, at in await repo.unseen_opt_outs(connection.id, run_id):
            read = Signal(status, at)
            if unseen_opt_out(provider_signal(contact, None), read, onoffice_signal(contact)):
                ledger.opted_out(None, contact.email, read)
                stored += 1
        await ledger.save(session)
    if stored:
        log.info("sync.unseen_opt_outs", extra={"run_id": run_id, "written_back": stored})
    return stored


async def complete_run(resources: Resources, run_id: int, connection: Connection) -> None:
    await write_back_unseen_opt_outs(resources, run_id, connection)
    await check_drift(resources, run_id, connection)
    async with resources.transaction() as session:
        # A run cancelled meanwhile stays cancelled.
        completed = await LifecycleRepository.from_session(session).end_run(
            run_id, status=SyncRunStatus.completed, phase="done", finished_at=utcnow()
        )
    if not completed:
        return
    SYNC_RUNS.labels("completed").inc()
    log.info("sync.completed", extra={"run_id": run_id})


async def resume_unfinished(
    resources: Resources, *, stale_after_s: float, quick: bool = False
) -> int:
    """Re-enqueue the next steps of unfinished runs that made no progress for `stale_after_s`
    (a worker died, or the embedded server restarted), and, with `quick` (on arq), of runs
    whose jobs are gone from Redis (`app.syncs.liveness`: a Redis restarted without
    persistence) after seconds. Job ids are deterministic, so a step that is still queued or
    running is not duplicated."""
    resumed = 0
    now = utcnow()
    idle = await IdleRuns.load(resources.redis) if quick and resources.redis else None
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        for run in await repo.unfinished_runs():
            updated = (
                run.updated_at if run.updated_at.tzinfo else run.updated_at.replace(tzinfo=UTC)
            )
            age = (now - updated).total_seconds()
            if age < stale_after_s and (idle is None or not await idle.lost_its_jobs(run.id, age)):
                continue
            resumed += 1
            for batch_no in await repo.pending_batch_numbers(run.id, run.batches_total):
                enqueue_batch(run.id, batch_no)
            if not run.reading_done:
                enqueue_read(run.id, run.read_offset)
            elif run.batches_done >= run.batches_total:
                enqueue_finalize(run.id)
            log.info("sync.resumed", extra={"run_id": run.id, "offset": run.read_offset})
    return resumed
