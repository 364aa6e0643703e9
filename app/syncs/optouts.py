"""The full sync's re-check of opt-outs at the provider before a batch is sent.

Mailchimp's batch subscribe sets the status of existing members, so a member who opted out
(or went to pending, or was archived) after the run read the list would be subscribed again by
the batch if the webhook telling us is late or lost. Before a batch is sent, the run therefore
asks the provider for opt-outs since the run started (`recent_opt_outs`, four reads). The
answers are shared by every batch of the run (in Redis, so across workers; in-process in
embedded mode; `app/syncs/optout_store.py`):

* `OPT_OUT_RECHECK_S = 0` (the default): every batch gets an answer read after it asked, as if
  it had asked itself. Batches that ask while a check is under way do not use that check (it
  may have read before their opt-outs); they wait for the next one, which one of them leads
  for all of them. The window left open is the same as asking alone: from the check's read
  until the batch request.
* `OPT_OUT_RECHECK_S > 0`: asked again only when the last answer is older than that (counted
  from the list read at the start of the run). What remains open: an opt-out whose webhook is
  lost and that happens less than that interval (plus one request) before its batch is sent.

Opt-out webhooks received meanwhile are honoured by every batch regardless (database check).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from app.resources import Resources
from app.syncs.optout_store import OptOutStore
from providers.base import NewsletterProvider

WAIT_S = 0.02  # how often a batch waiting for a shared check looks for its answer


async def recent_opt_outs(
    resources: Resources,
    run_id: int,
    started_at: datetime,
    since: datetime,
    provider: NewsletterProvider,
    list_id: str,
) -> set[str]:
    """Emails that opted out at the provider since `since` as far as the run knows, asking the
    provider when the last answer (or the run's start) is older than OPT_OUT_RECHECK_S; with 0,
    from a check that began after this call (see the module)."""
    interval = resources.settings.OPT_OUT_RECHECK_S
    store = resources.parts.opt_outs
    if interval <= 0:
        return await _fresh_answer(store, run_id, since, provider, list_id)
    if time.time() - started_at.timestamp() >= interval and await store.claim(run_id, interval):
        try:
            found = await provider.recent_opt_outs(list_id, since)
        except BaseException:
            await store.release(run_id)  # the next batch asks again
            raise
        await store.add(run_id, found)
        return found | await store.emails(run_id)
    return await store.emails(run_id)


async def _fresh_answer(
    store: OptOutStore, run_id: int, since: datetime, provider: NewsletterProvider, list_id: str
) -> set[str]:
    """The run's opt-outs from a check that began after the ticket taken here: led by this
    batch, or by another one that asked meanwhile and found no check under way."""
    ticket = await store.ask(run_id)
    while await store.covered(run_id) < ticket:
        covers = await store.lead(run_id)
        if covers is None:  # a check is under way (begun before or after the ticket)
            await asyncio.sleep(WAIT_S)
            continue
        try:
            found = await provider.recent_opt_outs(list_id, since)
        except BaseException:
            await store.abandon(run_id)
            raise
        await store.finish(run_id, covers, found)
        return found | await store.emails(run_id)
    return await store.emails(run_id)
