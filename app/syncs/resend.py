"""A batch sent before whose outcome was never recorded (the answer was lost: a proxy's 504,
a dropped connection, the worker killed or the database gone before the results were written)
is checked before it is sent again, where checking costs less than resending.

Each send is recorded on the batch's chunks first (`attempts`, `updated_at`). A later try of
the same batch asks the provider which of its contacts changed since that attempt
(`NewsletterProvider.applied_since`, from TIE before it): those that are subscribed as the batch
wanted were written by it and are not sent again; their missing tags are added as usual. The
rest is sent. Mailchimp: at most ten list pages instead of a 500-member write, unless more
than ten pages of members changed since (then the batch is resent). Brevo: always resent (one
import request; reading the contacts back costs more). A resend is an upsert either way: the
provider's state ends the same and the run's counts stay exact (`app.contacts.counts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from app.contacts.rules import TIE
from app.db.models import SyncBatch
from app.resources import Resources
from app.syncs.repository import SyncRepository
from providers.base import (
    ContactData,
    NewsletterProvider,
    UpsertOutcome,
    UpsertResult,
    normalise_email,
)


async def record_attempt(
    resources: Resources, run_id: int, batch_no: int, chunks: Sequence[SyncBatch]
) -> datetime | None:
    """Record that the batch is being sent now; the time of an earlier send (None: the first)."""
    earlier = [c.updated_at for c in chunks if c.attempts]
    async with resources.transaction() as session:
        await SyncRepository.from_session(session).record_attempt(run_id, batch_no)
    if not earlier:
        return None
    first = min(earlier)
    return first if first.tzinfo else first.replace(tzinfo=UTC)


async def applied_before(
    provider: NewsletterProvider,
    list_id: str,
    contacts: Sequence[ContactData],
    sent_at: datetime | None,
) -> dict[str, UpsertResult]:
    """The contacts an earlier send of this batch (at `sent_at`) already wrote, as results
    (outcome `updated`: the run counts created/updated from its list state); empty when there
    was no earlier send or checking costs more than resending."""
    if sent_at is None or not contacts:
        return {}
    states = await provider.applied_since(list_id, [c.email for c in contacts], sent_at - TIE)
    if not states:
        return {}
    done: dict[str, UpsertResult] = {}
    for contact in contacts:
        email = normalise_email(contact.email)
        state = states.get(email)
        if state is None or state.subscribed is not contact.subscribed:
            continue
        has = set(state.tags)
        done[email] = UpsertResult(
            email=email,
            outcome=UpsertOutcome.updated,
            provider_id=state.provider_id,
            status=state.status,
            missing_tags=[t for t in dict.fromkeys(contact.tags) if t not in has],
        )
    return done
