"""The periodic webhook health check: every PROVIDER_RECONCILE_INTERVAL_S each connection asks
its provider for its webhooks, `judge_webhook` decides (app/webhooks/health.py), and drift is
repaired (Mailchimp PATCH / Brevo PUT in place; a missing webhook registered again) and recorded
on the connection: what was wrong and when it was repaired, or why the webhook is broken.

Cost: one provider read per connection and interval (two more to repair). A check that fails
is recorded too (`broken` for a refused key or request, `check_failed` when the provider did
not answer), so the next try waits a whole interval: a failing key is never asked in a loop.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from app.connections.factory import provider_for_connection
from app.connections.repository import ConnectionRepository
from app.connections.service import webhook_url
from app.crypto import hash_token
from app.db.base import aware, utcnow
from app.db.models import Connection
from app.resources import Resources
from app.webhooks.health import Verdict, judge_webhook
from app.webhooks.jobs import enqueue_health_check
from providers.base import ProviderError, ProviderTransientError

log = logging.getLogger(__name__)

OK = "ok"
REPAIRED = "repaired"
BROKEN = "broken"
CHECK_FAILED = "check_failed"


async def schedule(resources: Resources) -> int:
    """Enqueue a check for every connection whose last check is an interval old (or that was
    saved since); one job per connection and interval slot."""
    interval = resources.settings.PROVIDER_RECONCILE_INTERVAL_S
    async with resources.transaction() as session:
        due = await ConnectionRepository.from_session(session).due_for_webhook_check(
            utcnow() - timedelta(seconds=interval)
        )
        for connection_id in due:
            enqueue_health_check(connection_id, interval)
    return len(due)


async def check(resources: Resources, connection_id: int, *, min_age_s: float = 0) -> str | None:
    """Check one connection's webhook, repair drift, record the result; returns the state
    recorded (None: nothing to check, the last check is younger than `min_age_s`, or the
    connection was saved meanwhile)."""
    async with resources.sessionmaker() as session:
        connection = await ConnectionRepository.from_session(session).get(connection_id)
    if connection is None or not connection.list_id:
        return None
    last = aware(connection.webhook_checked_at)
    if min_age_s and last is not None and utcnow() - last < timedelta(seconds=min_age_s):
        return None
    credentials = connection.webhook_credentials_encrypted
    if not credentials:
        return None
    token, _, secret = resources.secret_box.decrypt(credentials).partition(" ")
    values: dict[str, Any] = {"webhook_checked_at": utcnow(), "webhook_error": None}
    try:
        verdict = await _repair(resources, connection, token, secret)
    except ProviderTransientError as exc:
        values |= {"webhook_health": CHECK_FAILED, "webhook_error": exc.message}
    except ProviderError as exc:
        values |= {"webhook_health": BROKEN, "webhook_error": exc.message}
    else:
        values["webhook_id"] = verdict.webhook_id
        values["webhook_health"] = OK if verdict.action == "ok" else REPAIRED
        if verdict.action != "ok":
            values |= {
                "webhook_repaired_at": values["webhook_checked_at"],
                "webhook_problems": list(verdict.problems),
            }
    async with resources.transaction() as session:
        stored = await ConnectionRepository.from_session(session).record_webhook_health(
            connection_id, hash_token(token), values
        )
    log.log(
        logging.INFO if values["webhook_health"] == OK else logging.WARNING,
        "webhook.health",
        extra={
            "connection_id": connection_id,
            "health": values["webhook_health"],
            "problems": values.get("webhook_problems"),
            "error": values["webhook_error"],
        },
    )
    return str(values["webhook_health"]) if stored else None


async def _repair(resources: Resources, connection: Connection, token: str, secret: str) -> Verdict:
    """Read the provider's webhooks, judge them, and carry out the verdict. The verdict's
    webhook id is the one in place afterwards."""
    assert connection.list_id is not None
    provider = provider_for_connection(resources, connection)
    url = webhook_url(resources, connection.provider, token)
    activities = dict(connection.activities or {})
    wanted = provider.webhook_setup(url, secret, activities)
    verdict = judge_webhook(
        wanted, await provider.list_webhooks(connection.list_id), connection.webhook_id
    )
    if verdict.action == "update" and verdict.webhook_id is not None:
        await provider.update_webhook(connection.list_id, verdict.webhook_id, wanted)
    elif verdict.action == "register":
        info = await provider.register_webhook(
            connection.list_id, url, secret, activities=activities
        )
        verdict = Verdict("register", info.id, verdict.problems)
    return verdict
