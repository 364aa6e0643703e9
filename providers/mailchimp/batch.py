"""Batch subscribe (`POST /lists/{id}`) with retries that do not write a member twice: a try
after one whose answer may have been lost (5xx, network) first checks which members the lost
try already wrote (`reads.applied_since`: the members changed since it was sent, at most ten
pages) and resends only the others. When more members changed since than that (a busy list),
checking costs more than resending: the batch is resent whole (an upsert; the list ends the
same)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from providers._retry import RetryPolicy
from providers.base import ContactData, ProviderTransientError
from providers.mailchimp import reads
from providers.mailchimp.api import MailchimpApi

logger = logging.getLogger(__name__)


async def send_batch(
    api: MailchimpApi,
    retry: RetryPolicy,
    list_id: str,
    body: dict[str, Any],
    chunk: dict[str, ContactData],
) -> dict[str, Any]:
    """The batch's answer; members an earlier, lost try wrote are listed as updated."""
    written: dict[str, dict[str, Any]] = {}  # email -> the member as an answer lists it
    sent_at: datetime | None = None

    async def attempt() -> Any:
        nonlocal sent_at
        if sent_at is not None:
            pending = [e for e in chunk if e not in written]
            found = await reads.applied_since(api, list_id, pending, sent_at)
            for email, state in (found or {}).items():
                if state.subscribed is chunk[email].subscribed:
                    written[email] = reads.as_member(state)
            sent_at = None
        members = [m for m in body["members"] if m["email_address"] not in written]
        if not members:
            return {}
        started = datetime.now(UTC) - reads.CHECK_SKEW
        try:
            return await api.request(
                "POST", f"/lists/{list_id}", json={**body, "members": members}, retry=False
            )
        except ProviderTransientError as exc:
            if exc.status_code is None or exc.status_code >= 500:
                sent_at = started  # carried out, perhaps: check before sending again
            raise

    answer = dict(await retry.call(attempt) or {})
    if written:
        logger.info("mailchimp.batch_checked", extra={"not_resent": len(written)})
        answer["updated_members"] = [*(answer.get("updated_members") or []), *written.values()]
    return answer
