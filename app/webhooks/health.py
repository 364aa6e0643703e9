"""The webhook's health, decided (pure): is the webhook the provider has still the one the
connector needs, and if not, what was wrong and what repairs it.

The check job (`app/webhooks/checkup.py`) reads the provider's webhooks, asks `judge_webhook`
and carries out its verdict. Problem codes are stored and rendered in the user's language
(`webhook.problem.<code>` in the catalogue, the event or source name as `{name}`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from providers.base import WebhookSetup, WebhookState

# No webhook with this service's URL (deleted at the provider, or the URL changed).
MISSING = "missing"
# The webhook's bearer secret is not ours (Brevo): our intake would refuse every delivery.
TOKEN = "token"
# A required event is off / an optional one is on although its activity is switched off.
EVENT_OFF = "event_off"
EVENT_ON = "event_on"
# A source that must be on is off (Mailchimp user/admin) / one that must be off is on (`api`).
SOURCE_OFF = "source_off"
SOURCE_ON = "source_on"


@dataclass(frozen=True, slots=True)
class Verdict:
    """ "ok": nothing to do; "update": set events and sources of `webhook_id` in place;
    "register": create the webhook (replacing `webhook_id` where it has the wrong secret)."""

    action: Literal["ok", "update", "register"]
    webhook_id: str | None
    problems: tuple[str, ...] = ()


def problem(code: str, name: str = "") -> str:
    """A stored problem: the code, and the event or source it names (`event_off:unsubscribe`)."""
    return f"{code}:{name}" if name else code


def split_problem(stored: str) -> tuple[str, str]:
    code, _, name = stored.partition(":")
    return code, name


def judge_webhook(
    wanted: WebhookSetup, found: Sequence[WebhookState], stored_id: str | None
) -> Verdict:
    """The verdict on the provider's webhooks `found` against the webhook `wanted`. Of several
    with our URL the stored one is judged (else the first)."""
    ours = [hook for hook in found if hook.url == wanted.url]
    if not ours:
        return Verdict("register", None, (MISSING,))
    hook = next((h for h in ours if h.id == stored_id), ours[0])
    if hook.token is not None and hook.token != wanted.token:
        return Verdict("register", hook.id, (TOKEN,))
    problems = [problem(EVENT_OFF, e) for e in sorted(wanted.events - hook.events)]
    problems += [problem(EVENT_ON, e) for e in sorted(hook.events & wanted.off)]
    for source, on in sorted(wanted.sources.items()):
        if hook.sources.get(source, False) != on:
            problems.append(problem(SOURCE_OFF if on else SOURCE_ON, source))
    if problems:
        return Verdict("update", hook.id, tuple(problems))
    return Verdict("ok", hook.id)
