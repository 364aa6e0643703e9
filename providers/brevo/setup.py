"""Setting an account up: the list, its folder, the name attributes and the webhook."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from providers.base import FieldMapping, ListInfo, WebhookInfo
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
WEBHOOK_EVENTS: Final = (
    "unsubscribed", "listAddition", "delivered", "opened", "click", "hardBounce",
    "contactUpdated", "contactDeleted",
)  # fmt: skip
OPTIONAL_WEBHOOK_EVENTS: Final = frozenset({"contactUpdated", "contactDeleted"})
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


async def register_webhook(
    api: BrevoApi, url: str, token: str, *, events: Sequence[str], batched: bool
) -> WebhookInfo:
    """One marketing webhook for `url` with this bearer token (an outdated one is replaced)."""
    existing = await api.json(
        "GET", "/webhooks", params={"type": "marketing"}, label="GET /webhooks"
    )
    for hook in existing.get("webhooks", []):
        if hook.get("url") != url:
            continue
        auth = hook.get("auth") or {}
        if auth.get("token") == token and set(hook.get("events", [])) >= {
            e for e in events if e not in OPTIONAL_WEBHOOK_EVENTS
        }:
            return WebhookInfo(id=str(hook["id"]), url=url)
        # The spec's update has no `auth`, so a changed token means delete and recreate.
        await remove_webhook(api, str(hook["id"]))
    body: dict[str, Any] = {
        "url": url,
        "description": "onOffice newsletter connector",
        "type": "marketing",
        "events": list(events),
        "auth": {"type": "bearer", "token": token},
        # Batched: arrays of up to 500 events per 5 minutes instead of one POST per open.
        "batched": batched,
    }
    try:
        created = await api.json("POST", "/webhooks", body=body, label="POST /webhooks")
    except BrevoLimitError:
        raise
    except BrevoRequestError as exc:
        reduced = [e for e in events if e not in OPTIONAL_WEBHOOK_EVENTS]
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
