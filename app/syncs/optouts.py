"""The full sync's re-check of opt-outs at the provider, at most once per OPT_OUT_RECHECK_S.

Mailchimp's batch subscribe sets the status of existing members, so a member who opted out
(or went to pending, or was archived) after the run read the list would be subscribed again by
the batch if the webhook telling us is late or lost. Before a batch is sent, the run therefore
asks the provider for opt-outs since the run started (`recent_opt_outs`). Asking before every
batch cost four reads per 500 contacts; now the answer is shared by every batch of the run (in
Redis, so across workers; in-process in embedded mode) and asked again only when the last
answer is older than `OPT_OUT_RECHECK_S` (counted from the list read at the start of the run).
What remains open: an opt-out whose webhook is lost and that happens less than that interval
(plus one request) before its batch is sent. `OPT_OUT_RECHECK_S = 0` asks before every batch.
Opt-out webhooks received meanwhile are honoured by every batch regardless (database check).
"""

from __future__ import annotations

import time
from datetime import datetime

from app.resources import Resources
from providers.base import NewsletterProvider


async def recent_opt_outs(
    resources: Resources,
    run_id: int,
    started_at: datetime,
    since: datetime,
    provider: NewsletterProvider,
    list_id: str,
) -> set[str]:
    """Emails that opted out at the provider since `since` as far as the run knows, asking the
    provider when the last answer (or the run's start) is older than OPT_OUT_RECHECK_S."""
    interval = resources.settings.OPT_OUT_RECHECK_S
    if interval <= 0:
        return await provider.recent_opt_outs(list_id, since)
    store = resources.parts.opt_outs
    if time.time() - started_at.timestamp() >= interval and await store.claim(run_id, interval):
        try:
            found = await provider.recent_opt_outs(list_id, since)
        except BaseException:
            await store.release(run_id)  # the next batch asks again
            raise
        await store.add(run_id, found)
        return found | await store.emails(run_id)
    return await store.emails(run_id)
