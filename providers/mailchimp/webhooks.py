"""Parse Mailchimp list webhooks (form-encoded, PHP-style `data[...]` keys) into ProviderEvents.

Mailchimp sends no event id and redelivers, so every event gets a dedupe key hashed from its
content. Payloads are hints: the consumer should re-read the member before writing to the CRM.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from providers.base import ProviderEvent, ProviderEventType, WebhookDelivery

__all__ = ["DEFAULT_ARCHIVE_ACTIONS", "DELIVERY", "parse_delivery", "parse_form", "parse_webhook"]

# `data[action]` values of an `unsubscribe` that mean "archived" rather than "opted out". Which
# value Mailchimp really sends for an archive (also for "Archive All", one POST per contact) is
# unverified, hence configurable.
DEFAULT_ARCHIVE_ACTIONS: frozenset[str] = frozenset({"archive"})

_KEY_PART = re.compile(r"\[([^\]]*)\]")
# Mailchimp nests at most `data[merges][GROUPINGS][0][groups]`; deeper keys are refused.
MAX_KEY_DEPTH = 8
_FIRED_AT_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z")


def parse_form(form: Mapping[str, str] | Sequence[tuple[str, str]]) -> dict[str, Any]:
    """`data[merges][FNAME]=x` -> {"data": {"merges": {"FNAME": "x"}}}.

    ValueError for keys nested deeper than MAX_KEY_DEPTH."""
    items = form.items() if isinstance(form, Mapping) else form
    out: dict[str, Any] = {}
    for key, value in items:
        head = key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(key[len(head) :])]
        if len(parts) > MAX_KEY_DEPTH:
            raise ValueError(f"form key nested deeper than {MAX_KEY_DEPTH} levels")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return out


def parse_webhook(
    form: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    archive_actions: Collection[str] = DEFAULT_ARCHIVE_ACTIONS,
    archive_event: ProviderEventType = ProviderEventType.ignored,
) -> list[ProviderEvent]:
    """One POST body -> its events (Mailchimp sends one event per request).

    `unsubscribe` becomes `unsubscribe` for `data[action]=unsub` (or no action), `archive_event`
    (default `ignored`, so bulk "Archive All" never changes CRM consent) for an action in
    `archive_actions`, and `deleted` for `delete` or anything else. `campaign` comes out as
    `ignored` with `raw_type="campaign"`, `campaign` = id and `reason` = status: there is no
    per-recipient delivery webhook, it is the cue to pull the campaign's recipient report.
    An empty body (Mailchimp's URL check) yields no events.
    """
    payload = parse_form(form)
    raw_type = str(payload.get("type") or "").strip()
    if not raw_type:
        return []
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    merges: dict[str, Any] = data["merges"] if isinstance(data.get("merges"), dict) else {}
    fired_at = str(payload.get("fired_at") or "")
    email = _email(data.get("email"))
    fields: dict[str, Any] = {
        "email": email,
        "list_id": _text(data.get("list_id")),
        "provider_id": _text(data.get("id")),
        "occurred_at": _parse_fired_at(fired_at),
        "raw_type": raw_type,
        "first_name": _text(merges.get("FNAME")),
        "last_name": _text(merges.get("LNAME")),
        "campaign": _text(data.get("campaign_id")),
        "reason": _text(data.get("reason")),
    }
    kind: ProviderEventType
    if raw_type == "subscribe":
        kind = ProviderEventType.subscribe
    elif raw_type == "profile":
        kind = ProviderEventType.profile
    elif raw_type == "unsubscribe":
        action = _text(data.get("action")) or "unsub"
        if action == "unsub":
            kind = ProviderEventType.unsubscribe
        elif action in archive_actions:
            kind = archive_event
        else:
            kind = ProviderEventType.deleted
        fields["reason"] = fields["reason"] or action
    elif raw_type == "upemail":
        kind = ProviderEventType.email_changed
        fields["email"] = _email(data.get("old_email"))
        fields["new_email"] = _email(data.get("new_email")) or None
        fields["provider_id"] = _text(data.get("new_id"))
    elif raw_type == "cleaned":
        kind = ProviderEventType.cleaned
    elif raw_type == "campaign":
        kind = ProviderEventType.ignored
        fields["campaign"] = _text(data.get("id"))
        fields["reason"] = _text(data.get("status"))
        fields["provider_id"] = None
    else:
        kind = ProviderEventType.ignored  # e.g. sms_subscribe on newer accounts
    fields["dedupe_key"] = _dedupe_key(raw_type, fired_at, data)
    return [ProviderEvent(type=kind, **fields)]


def parse_delivery(
    form: Mapping[str, str] | Sequence[tuple[str, str]], list_id: str | None = None
) -> list[ProviderEvent]:
    """One delivery to the connector: an archive is a removal like a delete (single ones apply;
    a burst such as "Archive All" is held for a person by the app). ValueError when the delivery
    has no `type`, or an event that needs an address has none. Mailchimp webhooks belong to one
    audience, so `list_id` filters nothing."""
    events = parse_webhook(form, archive_event=ProviderEventType.deleted)
    if not events:
        raise ValueError("no `type`")
    if any(e.type != ProviderEventType.ignored and not e.email for e in events):
        raise ValueError("no `data[email]`")
    return events


DELIVERY = WebhookDelivery(
    body="form",
    # Mailchimp retries a delivery that did not get a 2xx answer (for a while), so any failure
    # to store is answered 503.
    retry_status=503,
    parse=parse_delivery,
    url_check=True,
    summary="Mailchimp events (form-encoded `data[...]`), stored before they are acknowledged",
    body_schema={"type": "object", "additionalProperties": True},
    body_required=False,
)


def _dedupe_key(raw_type: str, fired_at: str, data: Mapping[str, Any]) -> str:
    """Same content -> same key, whatever the order of the form fields."""
    flat = sorted(_flatten(data))
    material = "\x1f".join([raw_type, fired_at, *(f"{k}={v}" for k, v in flat)])
    return "mailchimp:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def _flatten(node: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in node.items():
        path = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out.extend(_flatten(value, path))
        else:
            out.append((path, str(value)))
    return out


def _parse_fired_at(value: str) -> datetime | None:
    # Mailchimp's `2009-03-26 21:35:57` carries no zone; it is taken as UTC.
    for fmt in _FIRED_AT_FORMATS:
        try:
            parsed = datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict):
        return None
    text = str(value).strip()
    return text or None


def _email(value: Any) -> str:
    return (_text(value) or "").lower()
