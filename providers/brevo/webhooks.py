"""Normalise Brevo marketing webhook payloads into `ProviderEvent`s.

Brevo posts one JSON object per event, or an array of up to 500 when the webhook is batched.
Event spellings differ between Brevo's docs, older Sendinblue payloads and the subscription
names (`hard_bounce` / `hardBounce` / `hard_bounced`, `unsubscribe` / `unsubscribed`, ...), so
names are compared after dropping case, underscores, dashes and spaces.

Payloads carry no event id (`id` is the webhook's id), so the dedupe key is a hash of what
identifies an event: name, e-mail, event time, campaign or lists, and the clicked URL. Where a
payload has an id of its own (`uuid`, `event_id`, `message-id`) that is used instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from providers.base import ProviderEvent, ProviderEventType, WebhookDelivery, normalise_email

logger = logging.getLogger(__name__)

_T = ProviderEventType
EVENT_TYPES: Final[dict[str, ProviderEventType]] = {
    "unsubscribed": _T.unsubscribe,
    "unsubscribe": _T.unsubscribe,
    "unsubscription": _T.unsubscribe,
    # Brevo blacklists contacts that complain, so a spam report is an opt-out too.
    "spam": _T.unsubscribe,
    "listaddition": _T.subscribe,
    "listadd": _T.subscribe,
    "subscribe": _T.subscribe,
    "subscribed": _T.subscribe,
    "hardbounce": _T.hard_bounce,
    "hardbounced": _T.hard_bounce,
    "click": _T.clicked,
    "clicked": _T.clicked,
    "clicks": _T.clicked,
    "opened": _T.opened,
    "open": _T.opened,
    "opens": _T.opened,
    "uniqueopened": _T.opened,
    "proxyopen": _T.opened,
    "uniqueproxyopen": _T.opened,
    "delivered": _T.delivered,
    "contactdeleted": _T.deleted,
    "deleted": _T.deleted,
    "contactupdated": _T.profile,
    "updated": _T.profile,
}
# Known but irrelevant to the connector: parsed as `ignored` without a warning.
IGNORED_EVENTS: Final = frozenset(
    {"softbounce", "softbounced", "sent", "request", "deferred", "blocked", "invalid",
     "error", "uniquecouponsent", "reply", "inboundemailprocessed"}
)  # fmt: skip
_ID_FIELDS: Final = ("uuid", "event_id", "eventId", "message-id", "messageId")
_TIME_FIELDS: Final = ("ts_event", "ts", "ts_epoch")
_FIRST_NAME_KEYS: Final = ("vorname", "firstname", "first_name", "prenom", "fname", "name")
_LAST_NAME_KEYS: Final = ("nachname", "lastname", "last_name", "nom", "lname", "surname")


def normalise_event_name(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


# Events one item may become without a list of the connection's to filter on (one per list):
# an item is a single contact's event, so more lists are no real traffic (amplification).
MAX_LIST_IDS_PER_ITEM: Final = 100


def parse_webhook(body: Any, list_id: str | None = None) -> list[ProviderEvent]:
    """Parse one event, a batch (array) of events, or the raw JSON bytes of either. With
    `list_id` (the connection's list) an item becomes at most one event: the one of that list,
    else one unsubscribe for all the other lists it names (an unsubscribe from any list may
    blacklist the person account-wide; the applier re-reads the contact)."""
    if isinstance(body, bytes | bytearray | str):
        body = json.loads(body)
    items = body if isinstance(body, list) else [body]
    events: list[ProviderEvent] = []
    for item in items:
        if isinstance(item, Mapping):
            events.extend(_parse_one(item, list_id))
        else:
            logger.warning(
                "brevo.webhook_item_not_object", extra={"item_type": type(item).__name__}
            )
    return events


def parse_delivery(body: Any, list_id: str | None = None) -> list[ProviderEvent]:
    """One delivery to the connector. ValueError when it holds no event with an address and a
    name (an empty array is a valid, empty delivery). Brevo's marketing webhooks are
    account-wide: with `list_id`, only events of that list are kept, and unsubscribes from any
    list (one may blacklist the person account-wide; the applier re-reads the contact)."""
    events = parse_webhook(body, list_id)
    if not events and body != [] and not parse_webhook(body):
        raise ValueError("no event with an `email` and an `event` name")
    if list_id:
        events = [
            e
            for e in events
            if e.list_id in (None, list_id) or e.type == ProviderEventType.unsubscribe
        ]
    return events


DELIVERY = WebhookDelivery(
    body="json",
    # Brevo delivers again only after a 429 (any other error drops the event).
    retry_status=429,
    parse=parse_delivery,
    bearer_secret=True,
    summary="Brevo events (one JSON event or an array), stored before they are acknowledged",
    description="Needs `Authorization: Bearer <secret>` with the secret registered in the "
    "Brevo webhook (not the URL token). When the events cannot be stored the answer is 429, "
    "the only error after which Brevo delivers again.",
    body_schema={"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]},
)


def _parse_one(item: Mapping[str, Any], own_list: str | None = None) -> list[ProviderEvent]:
    raw_type = str(item.get("event") or item.get("event_type") or "")
    email = normalise_email(str(item.get("email") or ""))
    if not email:
        logger.warning("brevo.webhook_without_email", extra={"raw_type": raw_type})
        return []
    key = normalise_event_name(raw_type)
    kind = EVENT_TYPES.get(key)
    if kind is None:
        if key not in IGNORED_EVENTS:
            logger.warning("brevo.webhook_unknown_event", extra={"raw_type": raw_type})
        kind = ProviderEventType.ignored
    content = _content(item.get("content"))
    first_name, last_name = _names(content)
    # A contact_updated whose attributes carry another EMAIL: the contact's email was changed
    # (in Brevo's UI or by an API), confirmed against Brevo's state like Mailchimp's upemail.
    new_email = _new_email(content, email) if kind == ProviderEventType.profile else None
    if new_email is not None:
        kind = ProviderEventType.email_changed
    campaign = item.get("campaign name") or item.get("campaign_name") or item.get("camp_id")
    common: dict[str, Any] = {
        "type": kind,
        "email": email,
        "new_email": new_email,
        "first_name": first_name,
        "last_name": last_name,
        "provider_id": _str(item.get("contact_id")),
        "occurred_at": _occurred_at(item),
        "campaign": _str(campaign),
        "url": _str(item.get("URL") or item.get("url") or item.get("link")),
        "reason": _str(item.get("reason")),
        "source": _source(item),
        "raw_type": raw_type,
    }
    list_ids = _list_ids(item.get("list_id"))
    if not list_ids:
        return [ProviderEvent(**common, dedupe_key=_dedupe_key(item, key, email, None))]
    if own_list:
        if own_list in list_ids:
            list_ids = [own_list]
        elif kind == ProviderEventType.unsubscribe:
            list_ids = list_ids[:1]  # one event stands for every other list of the item
        else:
            return []  # another list's news
    list_ids = list_ids[:MAX_LIST_IDS_PER_ITEM]
    # One event per list so the consumer can simply filter on its own list id.
    return [
        ProviderEvent(**common, list_id=list_id, dedupe_key=_dedupe_key(item, key, email, list_id))
        for list_id in list_ids
    ]


def _dedupe_key(item: Mapping[str, Any], key: str, email: str, list_id: str | None) -> str:
    own_id = next((item[f] for f in _ID_FIELDS if item.get(f) not in (None, "")), None)
    if own_id is not None:
        parts: list[Any] = [key, email, own_id, list_id]
    else:
        when = next((item[f] for f in _TIME_FIELDS if item.get(f) not in (None, "")), None)
        if when is None:
            when = item.get("date_event") or item.get("date")
        url = item.get("URL") or item.get("url") or item.get("link")
        parts = [key, email, when, item.get("camp_id"), list_id, url]
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
    return f"brevo:{digest[:40]}"


# Event times outside 1970..9999 are not times (ValueError -> the delivery is refused).
_MAX_SECONDS = 253_402_300_799


def _occurred_at(item: Mapping[str, Any]) -> datetime | None:
    for field in _TIME_FIELDS:
        value = item.get(field)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) or (
            isinstance(value, str) and value.isascii() and value.isdigit()
        ):
            seconds = float(value)
            if field == "ts_epoch" or seconds > 10**11:
                seconds /= 1000  # millisecond timestamps
            if not 0 <= seconds <= _MAX_SECONDS:  # also NaN and infinity
                raise ValueError(f"`{field}` is not a Unix time: {str(value)[:40]}")
            return datetime.fromtimestamp(seconds, UTC)
    return None


def _source(item: Mapping[str, Any]) -> str | None:
    # `api_key_name` names the API key behind a change ("" = made in the Brevo UI); the
    # consumer drops events caused by its own key to avoid sync loops.
    if "api_key_name" not in item:
        return None
    name = str(item.get("api_key_name") or "")
    return f"api:{name}" if name else "ui"


def _list_ids(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    values = value if isinstance(value, list) else str(value).split(",")
    return list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))


def _content(content: Any) -> dict[str, Any]:
    """The attributes of a contact event, keys in lower case. `content` of contact_updated is
    documented as a dict but shown as a list of pairs."""
    merged: dict[str, Any] = {}
    if isinstance(content, Mapping):
        merged.update(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping):
                merged.update(part)
    return {str(k).lower(): v for k, v in merged.items()}


def _names(content: Mapping[str, Any]) -> tuple[str | None, str | None]:
    first = next((content[k] for k in _FIRST_NAME_KEYS if content.get(k)), None)
    last = next((content[k] for k in _LAST_NAME_KEYS if content.get(k)), None)
    return _str(first), _str(last)


def _new_email(content: Mapping[str, Any], email: str) -> str | None:
    """The changed attributes' EMAIL when it is another address than the event's `email` (the
    contact as it was): the new address."""
    value = content.get("email")
    if not isinstance(value, str):
        return None
    new = normalise_email(value)
    return new if "@" in new and new != email else None


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
