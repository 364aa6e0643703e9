"""Setting an account up: the list, its folder, the name attributes and the webhook."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from providers.base import FieldMapping, ListInfo, WebhookInfo, WebhookSetup, WebhookState
from providers.brevo.api import BrevoApi
from providers.brevo.errors import BrevoLimitError, BrevoRequestError
from providers.brevo.values import (
    FIRST_NAME_CANDIDATES,
    GREETING_CANDIDATES,
    LAST_NAME_CANDIDATES,
    SALUTATION_CANDIDATES,
    list_size,
)

logger = logging.getLogger("providers.brevo.client")

# Attributes we create when the account has none of the candidates, per account language.
CREATED_NAMES: Final = {
    "de": {"first_name": "VORNAME", "last_name": "NACHNAME", "salutation": "ANREDE",
           "greeting": "BRIEFANREDE"},
    "en": {"first_name": "FIRSTNAME", "last_name": "LASTNAME", "salutation": "SALUTATION",
           "greeting": "GREETING"},
}  # fmt: skip

# Marketing webhook events the connector consumes. contactUpdated/contactDeleted are in the
# spec enum but not in its list of marketing events, so registration falls back without them.
# `spam` (a complaint: Brevo blacklists the contact) is an opt-out like `unsubscribed`.
WEBHOOK_EVENTS: Final = (
    "unsubscribed", "spam", "listAddition", "delivered", "opened", "click", "hardBounce",
    "contactUpdated", "contactDeleted",
)  # fmt: skip
OPTIONAL_WEBHOOK_EVENTS: Final = frozenset({"contactUpdated", "contactDeleted"})
# Optional activity events -> the connection's activity setting that switches them on. A hard
# bounce also stops the ledger from sending to that email, so `hardBounce` stays on.
ACTIVITY_EVENTS: Final = {"delivered": "delivered", "opened": "opened", "click": "clicked"}
_PAGE_LISTS: Final = 50


async def ensure_list(api: BrevoApi, name: str, folder_name: str) -> ListInfo:
    """The list named `name` (the oldest of several), created in the folder when missing."""
    matches = [
        item
        async for item in api.paged("/contacts/lists", "lists", _PAGE_LISTS)
        if item.get("name") == name
    ]
    if matches:
        if len(matches) > 1:
            logger.warning("brevo.duplicate_lists", extra={"list_name": name})
        found = min(matches, key=lambda item: int(item["id"]))
        return ListInfo(id=str(found["id"]), name=name, member_count=list_size(found))
    folder_id = await ensure_folder(api, folder_name)
    created = await api.json(
        "POST", "/contacts/lists", body={"name": name, "folderId": folder_id},
        label="POST /contacts/lists",
    )  # fmt: skip
    return ListInfo(id=str(created["id"]), name=name, created=True, member_count=0)


async def ensure_folder(api: BrevoApi, folder_name: str) -> int:
    async for folder in api.paged("/contacts/folders", "folders", _PAGE_LISTS):
        if folder.get("name") == folder_name:
            return int(folder["id"])
    created = await api.json(
        "POST", "/contacts/folders", body={"name": folder_name},
        label="POST /contacts/folders",
    )  # fmt: skip
    return int(created["id"])


async def ensure_fields(api: BrevoApi, language: str | None) -> FieldMapping:
    """Which text attributes hold the names and salutation; missing ones are created in the
    account's language (a name taken by a non-text attribute stays unmapped)."""
    data = await api.json("GET", "/contacts/attributes", label="GET /contacts/attributes")
    existing: dict[str, Mapping[str, Any]] = {
        str(a["name"]).upper(): a for a in data.get("attributes", []) if "name" in a
    }
    writable = {
        name
        for name, attr in existing.items()
        if attr.get("category", "normal") == "normal" and attr.get("type", "text") == "text"
    }
    language = language or ("de" if {"VORNAME", "NACHNAME"} & writable else "en")
    names = CREATED_NAMES["de" if language == "de" else "en"]
    resolved: dict[str, str] = {}
    for field, candidates in (
        ("first_name", FIRST_NAME_CANDIDATES),
        ("last_name", LAST_NAME_CANDIDATES),
        ("salutation", SALUTATION_CANDIDATES),
        ("greeting", GREETING_CANDIDATES),
    ):
        found = next((c for c in candidates if c in writable), None)
        if found is None:
            found = names[field]
            if found in existing:
                # The name is taken by a non-text attribute; writing text into it would be
                # dropped silently, so leave the field unmapped.
                logger.warning("brevo.attribute_not_text", extra={"attribute": found})
                continue
            await api.request(
                "POST", f"/contacts/attributes/normal/{found}", body={"type": "text"},
                label="POST /contacts/attributes/{category}/{name}",
            )  # fmt: skip
        resolved[field] = found
    return FieldMapping(**resolved)


def webhook_setup(
    url: str, token: str, events: Sequence[str], activities: Mapping[str, bool] | None
) -> WebhookSetup:
    """Our marketing webhook: `events` less the activity events switched off; the contact
    events only where the account accepts them."""
    off = {
        event
        for event, option in ACTIVITY_EVENTS.items()
        if activities is not None and not activities.get(option)
    }
    wanted = {e for e in events if e not in off}
    return WebhookSetup(
        url=url,
        token=token,
        events=frozenset(wanted - OPTIONAL_WEBHOOK_EVENTS),
        optional=frozenset(wanted & OPTIONAL_WEBHOOK_EVENTS),
        off=frozenset(off),
    )


async def list_webhooks(api: BrevoApi) -> list[WebhookState]:
    """The account's marketing webhooks (Brevo's are account-wide, not per list)."""
    found = await api.json("GET", "/webhooks", params={"type": "marketing"}, label="GET /webhooks")
    return [
        WebhookState(
            id=str(hook["id"]),
            url=str(hook.get("url") or ""),
            events=frozenset(str(e) for e in hook.get("events") or []),
            # Shown without a token (or none at all): our deliveries would be refused.
            token=str((hook.get("auth") or {}).get("token") or "") if "auth" in hook else None,
        )
        for hook in found.get("webhooks", [])
        if hook.get("id") is not None
    ]


async def update_webhook(api: BrevoApi, webhook_id: str, setup: WebhookSetup) -> None:
    """Set the events in place (PUT keeps the webhook's id and auth). An account that refuses
    the contact events gets the others."""
    events = sorted(setup.wanted_events)
    try:
        await _put_events(api, webhook_id, events)
    except BrevoRequestError as exc:
        reduced = sorted(setup.events)
        if exc.status_code != 400 or len(reduced) == len(events):
            raise
        await _put_events(api, webhook_id, reduced)


async def _put_events(api: BrevoApi, webhook_id: str, events: list[str]) -> None:
    await api.request(
        "PUT", f"/webhooks/{int(webhook_id)}", body={"events": events},
        label="PUT /webhooks/{webhookId}",
    )  # fmt: skip


async def register_webhook(api: BrevoApi, setup: WebhookSetup, *, batched: bool) -> WebhookInfo:
    """One marketing webhook for `setup.url` with its bearer token: one with the right token
    and other events is updated, one with an outdated token replaced."""
    url, token = setup.url, setup.token
    for hook in await list_webhooks(api):
        if hook.url != url:
            continue
        if hook.token is None or hook.token == token:
            if not (hook.events >= setup.events and not hook.events & setup.off):
                await update_webhook(api, hook.id, setup)
            return WebhookInfo(id=hook.id, url=url)
        # A changed token: delete and recreate (the secret is compared on every delivery).
        await remove_webhook(api, hook.id)
    events = sorted(setup.wanted_events)
    body: dict[str, Any] = {
        "url": url,
        "description": "onOffice newsletter connector",
        "type": "marketing",
        "events": events,
        "auth": {"type": "bearer", "token": token},
        # Batched: arrays of up to 500 events per 5 minutes instead of one POST per open.
        "batched": batched,
    }
    try:
        created = await api.json("POST", "/webhooks", body=body, label="POST /webhooks")
    except BrevoLimitError:
        raise
    except BrevoRequestError as exc:
        reduced = sorted(setup.events)
        if exc.status_code != 400 or len(reduced) == len(events):
            raise
        # Some accounts only accept the spec's documented marketing events.
        logger.warning("brevo.webhook_contact_events_refused", extra={"error": exc.message})
        created = await api.json(
            "POST", "/webhooks", body={**body, "events": reduced}, label="POST /webhooks"
        )
    return WebhookInfo(id=str(created["id"]), url=url)


async def remove_webhook(api: BrevoApi, webhook_id: str) -> None:
    try:
        await api.request(
            "DELETE", f"/webhooks/{int(webhook_id)}", label="DELETE /webhooks/{webhookId}"
        )
    except BrevoRequestError as exc:
        if exc.status_code != 404:
            raise
