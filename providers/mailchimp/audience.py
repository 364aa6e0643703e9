"""Setting an account up: the key check, the audience (found or created), its merge fields and
the webhook."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from providers.base import (
    AccountInfo,
    FieldMapping,
    ListInfo,
    WebhookInfo,
    WebhookSetup,
    WebhookState,
)
from providers.mailchimp.api import MailchimpApi
from providers.mailchimp.errors import (
    MailchimpAuthError,
    MailchimpLimitError,
    MailchimpNotFoundError,
    MailchimpRequestError,
    reworded,
)

logger = logging.getLogger("providers.mailchimp.client")

WEBHOOK_EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
# The events the consent rules need; `campaign` (the cue to log "delivered" activities) is on
# only while that activity is switched on.
REQUIRED_EVENTS = frozenset(WEBHOOK_EVENTS) - {"campaign"}
# Optional event -> the connection's activity setting that switches it on.
ACTIVITY_EVENTS = {"campaign": "delivered"}
# `api: false` keeps our own writes from being echoed back as webhooks (feedback loops).
WEBHOOK_SOURCES = {"user": True, "admin": True, "api": False}

# Merge field tags we accept for each property; the first one is created when none exists.
_FIELD_TAGS: dict[str, tuple[str, ...]] = {
    "first_name": ("FNAME",),
    "last_name": ("LNAME",),
    "salutation": ("SALUTATION", "ANREDE"),
    "greeting": ("GREETING",),
}
_FIELD_NAMES: dict[str, dict[str, str]] = {
    "de": {
        "first_name": "Vorname",
        "last_name": "Nachname",
        "salutation": "Anrede",
        "greeting": "Briefanrede",
    },
    "en": {
        "first_name": "First Name",
        "last_name": "Last Name",
        "salutation": "Salutation",
        "greeting": "Greeting",
    },
}


class MailchimpListDefaults(BaseModel):
    """Values a new audience needs. Unset fields are taken from the account's contact data."""

    company: str | None = None
    address1: str | None = None
    city: str | None = None
    zip: str | None = None
    state: str | None = None
    country: str | None = None
    from_name: str | None = None
    from_email: str | None = None
    language: str | None = None
    permission_reminder: str = (
        "Sie erhalten diese E-Mail, weil Sie dem Newsletter-Empfang zugestimmt haben. / "
        "You are receiving this email because you opted in to our newsletter."
    )


async def check_key(api: MailchimpApi) -> AccountInfo:
    """The account behind the key (its language guessed from the country)."""
    try:
        await api.request("GET", "/ping")
    except MailchimpNotFoundError as exc:
        raise MailchimpAuthError(
            "The Mailchimp API did not answer at the expected address. Check that the key "
            "ends in the right data centre (e.g. '-us21'), exactly as Mailchimp shows it.",
            status_code=exc.status_code,
            endpoint=exc.endpoint,
        ) from exc
    root = await api.request("GET", "/", params={"fields": "account_id,account_name,email,contact"})
    return AccountInfo(
        account_id=str(root.get("account_id", "")),
        account_name=str(root.get("account_name", "")),
        email=root.get("email") or None,
        language=language_of(root),
    )


async def ensure_list(
    api: MailchimpApi, name: str, defaults: MailchimpListDefaults, language: str | None
) -> ListInfo:
    """Find the audience named exactly `name`, or create it.

    Raises MailchimpLimitError when the plan allows no further audience (free plan).
    """
    lists = [
        item
        async for item in api.paginate(
            "/lists", "lists", fields="lists.id,lists.name,lists.stats.member_count"
        )
    ]
    matches = [item for item in lists if item.get("name") == name]
    if len(matches) > 1:
        raise MailchimpRequestError(
            f"Your Mailchimp account has {len(matches)} audiences named '{name}'. Rename or "
            f"delete all but one of them so the connector knows which one to use."
        )
    if matches:
        found = matches[0]
        return ListInfo(
            id=found["id"],
            name=name,
            member_count=(found.get("stats") or {}).get("member_count"),
        )
    body = await new_list_body(api, name, defaults, language)
    try:
        created = await api.request("POST", "/lists", json=body)
    except MailchimpAuthError as exc:
        if exc.status_code != 403 or not lists:
            raise
        others = ", ".join(f"'{item.get('name')}'" for item in lists[:3])
        raise reworded(
            exc,
            f"Mailchimp does not allow another audience on this plan (the free plan has "
            f"one, currently {others}). Rename your existing audience to {name} in "
            f"Mailchimp (Audience > Settings > Audience name and defaults), or upgrade the "
            f"plan, then connect again.",
            MailchimpLimitError,
        ) from exc
    return ListInfo(id=created["id"], name=name, created=True, member_count=0)


async def new_list_body(
    api: MailchimpApi, name: str, defaults: MailchimpListDefaults, known_language: str | None
) -> dict[str, Any]:
    root = await api.request("GET", "/", params={"fields": "account_name,email,contact"})
    contact = root.get("contact") or {}
    company = defaults.company or contact.get("company") or root.get("account_name") or name
    language = defaults.language or known_language or language_of(root) or "de"
    from_email = defaults.from_email or root.get("email")
    if not from_email:
        raise MailchimpRequestError(
            "Mailchimp needs a sender address for a new audience, and the account has no "
            "email address. Add one to your Mailchimp profile, or create the audience "
            f"'{name}' in Mailchimp yourself."
        )
    return {
        "name": name,
        "contact": {
            "company": company,
            "address1": defaults.address1 or contact.get("addr1") or "-",
            "city": defaults.city or contact.get("city") or "-",
            "state": defaults.state or contact.get("state") or "",
            "zip": defaults.zip or contact.get("zip") or "",
            "country": defaults.country or contact.get("country") or "DE",
        },
        "permission_reminder": defaults.permission_reminder,
        "campaign_defaults": {
            "from_name": defaults.from_name or company,
            "from_email": from_email,
            "subject": "",
            "language": language,
        },
        "email_type_option": False,
        "double_optin": False,
        "marketing_permissions": False,
    }


async def ensure_fields(api: MailchimpApi, list_id: str, language: str | None) -> FieldMapping:
    """Find (or create as text fields) first/last name, salutation and greeting.

    A field that cannot be created (e.g. the audience's merge field limit) maps to None and
    is then not written; transient failures still raise.
    """
    existing = {
        str(item.get("tag", "")).upper()
        async for item in api.paginate(
            f"/lists/{list_id}/merge-fields", "merge_fields", fields="merge_fields.tag"
        )
    }
    names = _FIELD_NAMES.get(language or "", _FIELD_NAMES["en"])
    mapping: dict[str, str | None] = {}
    for prop, candidates in _FIELD_TAGS.items():
        found = next((tag for tag in candidates if tag in existing), None)
        if found is None:
            found = candidates[0]
            body = {
                "name": names[prop],
                "tag": found,
                "type": "text",
                "required": False,
                "public": False,
            }
            try:
                await api.request("POST", f"/lists/{list_id}/merge-fields", json=body)
            except MailchimpRequestError as exc:
                logger.warning(
                    "mailchimp.merge_field_not_created",
                    extra={"tag": found, "reason": exc.message},
                )
                found = None
        mapping[prop] = found
    return FieldMapping(**mapping)


def webhook_setup(url: str, activities: Mapping[str, bool] | None) -> WebhookSetup:
    """Our webhook: the required events, `campaign` as the activity settings say, the user and
    admin sources on and `api` off."""
    chosen = {
        e for e, option in ACTIVITY_EVENTS.items() if activities is None or activities.get(option)
    }
    return WebhookSetup(
        url=url,
        events=REQUIRED_EVENTS | chosen,
        off=frozenset(ACTIVITY_EVENTS) - chosen,
        sources=dict(WEBHOOK_SOURCES),
    )


def _body(setup: WebhookSetup) -> dict[str, Any]:
    """Events and sources, each set explicitly (what is not wanted is off)."""
    return {
        "events": {e: e in setup.wanted_events for e in WEBHOOK_EVENTS},
        "sources": dict(setup.sources),
    }


def _state(hook: Mapping[str, Any]) -> WebhookState:
    events = hook.get("events") or {}
    sources = hook.get("sources") or {}
    return WebhookState(
        id=str(hook["id"]),
        url=str(hook.get("url") or ""),
        events=frozenset(str(k) for k, v in events.items() if v),
        sources={str(k): bool(v) for k, v in sources.items()},
    )


async def list_webhooks(api: MailchimpApi, list_id: str) -> list[WebhookState]:
    hooks = await api.request("GET", f"/lists/{list_id}/webhooks")
    return [_state(hook) for hook in hooks.get("webhooks") or [] if hook.get("id")]


async def update_webhook(
    api: MailchimpApi, list_id: str, webhook_id: str, setup: WebhookSetup
) -> None:
    await api.request("PATCH", f"/lists/{list_id}/webhooks/{webhook_id}", json=_body(setup))


def _fits(hook: WebhookState, setup: WebhookSetup) -> bool:
    return (
        hook.events >= setup.events
        and not hook.events & setup.off
        and all(hook.sources.get(k, False) == v for k, v in setup.sources.items())
    )


async def register_webhook(api: MailchimpApi, list_id: str, setup: WebhookSetup) -> WebhookInfo:
    """Ensure exactly one webhook for `setup.url` with our events and sources (never `api`).
    Mailchimp cannot send credentials, so the secret lives in the URL."""
    url = setup.url
    for hook in await list_webhooks(api, list_id):
        if hook.url != url:
            continue
        if not _fits(hook, setup):
            await update_webhook(api, list_id, hook.id, setup)
        return WebhookInfo(id=hook.id, url=url)
    try:
        hook = await api.request(
            "POST", f"/lists/{list_id}/webhooks", json={"url": url, **_body(setup)}
        )
    except MailchimpRequestError as exc:
        if exc.status_code != 400:
            raise
        raise reworded(
            exc,
            f"Mailchimp refused the webhook address {url}: {exc.message} Mailchimp checks "
            f"the address with a GET request, so it must be publicly reachable over the "
            f"internet (check PUBLIC_BASE_URL).",
            MailchimpRequestError,
        ) from exc
    return WebhookInfo(id=str(hook["id"]), url=str(hook.get("url", url)))


async def remove_webhook(api: MailchimpApi, list_id: str, webhook_id: str) -> None:
    with contextlib.suppress(MailchimpNotFoundError):
        await api.request("DELETE", f"/lists/{list_id}/webhooks/{webhook_id}")


def language_of(root: dict[str, Any]) -> str | None:
    """Best guess at the account language from its country (Mailchimp exposes no locale)."""
    country = str((root.get("contact") or {}).get("country") or "").upper()
    if not country:
        return None
    return "de" if country in {"DE", "AT", "CH", "LI", "LU"} else "en"
