"""The webhook's health as the status shows it: state, what was repaired, why it is broken."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.connections.factory import provider_label
from app.db.base import aware
from app.db.models import Connection
from app.i18n import has_key, t
from app.status.schemas import WebhookHealth
from app.webhooks.health import split_problem


def problems_text(lang: str, provider: str, problems: Sequence[str]) -> str:
    """The problem codes in words ("event `unsubscribe` was off; …")."""
    parts = []
    for stored in problems:
        code, name = split_problem(stored)
        key = f"webhook.problem.{code}_{name}"
        if not has_key(key):
            key = f"webhook.problem.{code}"
        text = t(lang, key, name=name, provider=provider) if has_key(key) else stored
        parts.append(text)
    return "; ".join(parts)


def _when(value: datetime | None) -> str:
    return aware(value).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def webhook_health(
    connection: Connection, last_event_at: datetime | None, lang: str
) -> WebhookHealth:
    label = provider_label(connection.provider)
    state = connection.webhook_health or "unchecked"
    problems = list(connection.webhook_problems or [])
    what = problems_text(lang, label, problems)
    error = connection.webhook_error
    if state == "broken":
        summary = t(lang, "ui.s_webhook_broken", why=error or "")
    elif state == "check_failed":
        summary = t(lang, "ui.s_webhook_check_failed", provider=label, why=error or "")
    elif state == "repaired":
        summary = t(
            lang, "ui.s_webhook_repaired", time=_when(connection.webhook_repaired_at), what=what
        )
    elif state == "ok":
        summary = t(lang, "ui.s_webhook_ok")
    else:
        summary = t(lang, "ui.s_webhook_unchecked")
    return WebhookHealth(
        state=state,
        summary=summary,
        checked_at=aware(connection.webhook_checked_at),
        repaired_at=aware(connection.webhook_repaired_at),
        problems=problems,
        problems_text=what,
        error=error,
        last_event_at=aware(last_event_at),
    )
