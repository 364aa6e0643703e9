"""The onOffice activity a provider event writes: its note (in the customer's language) and its
kind and type, chosen from the action kinds the customer has in onOffice.

The action kinds are read once per tenant and kept in the process for KINDS_TTL_S (they change
rarely: a customer adding a type in onOffice's settings), so a small drain costs no extra
request; `forget_kinds` drops them after onOffice refused an activity, so the retry reads them
again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from app.connections.factory import provider_label
from app.db.base import aware
from app.i18n import has_key, t
from app.parts import KindsCache
from app.resources import Resources
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import ActivityCreate, OnOfficeNotFoundError
from providers.base import ProviderEvent, ProviderEventType

ACTIVITY_KIND = "Newsletter"
KINDS_TTL_S = 600.0

# Preferred onOffice action types per event (the first one the customer has is used).
ACTIVITY_TYPES: dict[ProviderEventType, tuple[str, ...]] = {
    ProviderEventType.subscribe: ("bestellt",),
    ProviderEventType.unsubscribe: ("nicht bestellt", "abbestellt"),
    ProviderEventType.deleted: (),
    ProviderEventType.cleaned: (),
    ProviderEventType.delivered: ("versendet", "zugestellt"),
    ProviderEventType.opened: ("geöffnet",),
    ProviderEventType.clicked: ("geklickt",),
    ProviderEventType.hard_bounce: (),
}
OPTIONAL_ACTIVITIES = {
    ProviderEventType.delivered: "delivered",
    ProviderEventType.opened: "opened",
    ProviderEventType.clicked: "clicked",
    ProviderEventType.hard_bounce: "hard_bounce",
}


def activity_time(event: ProviderEvent, received_at: datetime) -> datetime:
    """The activity's date: the event's time, else when it was received. Fixed, so that a retry
    sends the same time and recognises an activity an earlier try wrote."""
    return event.occurred_at or aware(received_at)


async def create_once(
    onoffice: OnOfficeClient, items: Sequence[ActivityCreate], *, unsure: bool
) -> None:
    """Create the activities; after a try whose answer was lost (`unsure`), only for the
    addresses that do not have them yet."""
    if unsure:
        items = [item for item in await onoffice.missing_activities(items) if item is not None]
    if items:
        await onoffice.create_activities(items)


async def create_for_known(
    onoffice: OnOfficeClient,
    item: ActivityCreate,
    create: Callable[[ActivityCreate], Awaitable[None]],
) -> list[int]:
    """Create `item` through `create`. onOffice refuses the whole action when one of its
    address ids is unknown (an address deleted since the ledger learnt it): the ids are then
    read (one request per 500), the activity is created for the known ones, and the unknown
    ones are returned (they fail alone)."""
    try:
        await create(item)
        return []
    except OnOfficeNotFoundError:
        found = {a.id for a in await onoffice.get_addresses(item.address_ids)}
    known = [i for i in item.address_ids if i in found]
    if known:
        await create(item.model_copy(update={"address_ids": known}))
    return [int(i) for i in item.address_ids if i not in found]


def unknown_note(address_ids: Sequence[int]) -> str:
    """The event's note for recipients whose onOffice address no longer exists."""
    shown = ", ".join(str(i) for i in list(address_ids)[:20])
    more = f" (+{len(address_ids) - 20})" if len(address_ids) > 20 else ""
    return f"{len(address_ids)} address id(s) unknown to onOffice, not logged: {shown}{more}"


def activity_note(provider: str, event: ProviderEvent, lang: str = "de") -> str:
    """The activity note, in the customer's UI language (catalogue keys `activity.*`)."""
    label = provider_label(provider)
    if event.raw_type == "person" and event.address_id is not None:
        # An onOffice opt-out carried to the person's other addresses (app/contacts/person.py).
        value = t(lang, f"activity.value.{event.reason or 'no'}")
        return t(lang, "activity.person_opt_out", address=event.address_id, value=value)
    key = f"activity.{event.type.value}"
    parts = [f"{label}: {t(lang, key) if has_key(key) else event.type.value}"]
    if event.campaign:
        parts.append(t(lang, "activity.campaign", campaign=event.campaign))
    if event.url:
        parts.append(event.url)
    if event.reason:
        parts.append(t(lang, "activity.reason", reason=event.reason))
    return " – ".join(parts)


def kinds_cache(resources: Resources) -> KindsCache:
    """The process's action kinds, per tenant."""
    return resources.parts.action_kinds


async def activity_kind(
    cache: KindsCache, tenant_id: int, onoffice: OnOfficeClient, event_type: ProviderEventType
) -> tuple[str, str | None]:
    """The action kind and type for an event of `event_type` (kinds read at most once per
    KINDS_TTL_S per tenant, kept in `cache`)."""
    found = cache.get(tenant_id)
    if found is None or time.monotonic() - found[0] > KINDS_TTL_S:
        kinds = {k.key: set(k.types) for k in await onoffice.get_action_kinds()}
        cache[tenant_id] = found = (time.monotonic(), kinds)
    kinds = found[1]
    kind = ACTIVITY_KIND if ACTIVITY_KIND in kinds else next(iter(kinds), "")
    types = kinds.get(kind, set())
    wanted = next((t for t in ACTIVITY_TYPES.get(event_type, ()) if t in types), None)
    return kind, wanted


def forget_kinds(cache: KindsCache, tenant_id: int) -> None:
    """onOffice refused an activity: read the tenant's action kinds again next time."""
    cache.pop(tenant_id, None)
