"""Brevo API v3 emulator: an ASGI app serving `/v3/...` like api.brevo.com.

Every request is checked against the official OpenAPI file; a non-conforming request gets
400 `invalid_parameter` and is counted (`/_control/state` → `spec_violations`).

Behaviour notes (where Brevo's behaviour is uncertain the switch is in `BrevoConfig`):
- Writes to attributes that do not exist are dropped silently, as Brevo does.
- `POST /contacts/import` applies rows at once; its process reports `in_process` until
  `import_delay` has passed (then a given `notifyUrl` gets a POST `{processId, status}`).
  Rows with an invalid e-mail are skipped and counted.
- `upsert_replaces_lists`: `POST /contacts` with `updateEnabled` replaces list memberships
  (a historical Brevo bug) instead of adding.
- `unblacklist_ignored`: `emailBlacklisted:false` leaves a blacklisted contact blacklisted.
- `marketing_contact_events`: marketing webhooks accept contactUpdated/contactDeleted.
- `account_language`: `GET /account` includes a `language` field (not in the spec).

Run standalone: `python -m emulators.brevo --port 8025` (seeds keys `test-key-de`/`test-key-en`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators._openapi import OpenAPIRequestValidator
from emulators._shared import shared_path

SPEC_PATH = shared_path("specs", "brevo-v3.yml")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DEFAULT_ATTRIBUTES = {
    "de": ["VORNAME", "NACHNAME", "SMS"],
    "en": ["FIRSTNAME", "LASTNAME", "SMS"],
}


@dataclass
class BrevoConfig:
    latency: float = 0.0  # seconds per request
    latency_per_item: float = 0.0  # seconds per contact in bulk bodies
    contacts_rps: int = 10  # requests/s on /contacts*; 0 disables the limit
    import_delay: float = 0.0
    upsert_replaces_lists: bool = False
    unblacklist_ignored: bool = False
    marketing_contact_events: bool = True
    account_language: bool = False


@dataclass
class Contact:
    id: int
    email: str
    attributes: dict[str, Any] = field(default_factory=dict)
    list_ids: set[int] = field(default_factory=set)
    blacklisted: bool = False
    list_unsubscribed: set[int] = field(default_factory=set)
    created_at: str = ""
    modified_at: str = ""

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "email": self.email,
            "id": self.id,
            "emailBlacklisted": self.blacklisted,
            "smsBlacklisted": False,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "listIds": sorted(self.list_ids),
            "attributes": dict(self.attributes),
        }
        if self.list_unsubscribed:
            data["listUnsubscribed"] = sorted(self.list_unsubscribed)
        return data


@dataclass
class Account:
    api_key: str
    language: str = "de"
    email: str = "owner@example.de"
    company: str = "Musterimmobilien GmbH"
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)  # by lower-case e-mail
    by_id: dict[int, Contact] = field(default_factory=dict)
    folders: dict[int, str] = field(default_factory=dict)
    lists: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, dict[int, None]] = field(default_factory=dict)  # list -> ordered ids
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)
    window: deque[float] = field(default_factory=deque)


@dataclass
class Fault:
    method: str | None
    path_prefix: str
    status: int
    remaining: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class BrevoState:
    def __init__(self, config: BrevoConfig | None = None) -> None:
        self.config = config or BrevoConfig()
        self.accounts: dict[str, Account] = {}
        self.faults: list[Fault] = []
        self.request_counts: dict[str, int] = {}
        self.request_log: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.violations: list[str] = []
        self.rate_limited = 0
        self.validator = OpenAPIRequestValidator(SPEC_PATH, server_prefix="/v3")
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def add_account(self, api_key: str, language: str = "de", **extra: Any) -> Account:
        account = Account(api_key=api_key, language=language, **extra)
        if language != "de":
            account.email, account.company = "owner@example.com", "Example Realty Ltd"
        for name in DEFAULT_ATTRIBUTES.get(language, DEFAULT_ATTRIBUTES["en"]):
            account.attributes[name] = {"name": name, "category": "normal", "type": "text"}
        self.accounts[api_key] = account
        return account

    def seed_contact(
        self,
        account: Account,
        email: str,
        *,
        attributes: dict[str, Any] | None = None,
        list_ids: list[int] | None = None,
        blacklisted: bool = False,
    ) -> Contact:
        contact = _create_contact(self, account, email.lower())
        contact.attributes.update(attributes or {})
        contact.blacklisted = blacklisted
        for list_id in list_ids or []:
            _link(account, contact, list_id)
        return contact

    def contact_action(
        self, account: Account, email: str, action: str, *, list_id: int | None = None
    ) -> Contact | None:
        """What a person or an admin does inside Brevo (no webhook is sent here):
        `unsubscribe` (campaign link: account-wide blacklist), `unsubscribe_list` (with
        "unsubscription per list" on: `listUnsubscribed`), `unblock`, `delete`."""
        contact = account.contacts.get(email.lower())
        if contact is None:
            return None
        if action == "unsubscribe":
            contact.blacklisted = True
        elif action == "unsubscribe_list":
            assert list_id is not None
            contact.list_unsubscribed.add(list_id)
        elif action == "unblock":
            contact.blacklisted = False
        elif action == "delete":
            for lid in list(contact.list_ids):
                _unlink(account, contact, lid)
            del account.contacts[email.lower()]
            account.by_id.pop(contact.id, None)
            return None
        contact.modified_at = _now()
        return contact


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _not_found(what: str) -> JSONResponse:
    return _error(404, "document_not_found", f"{what} does not exist")


def _create_contact(state: BrevoState, account: Account, email: str) -> Contact:
    now = _now()
    contact = Contact(id=state.next_id(), email=email, created_at=now, modified_at=now)
    account.contacts[email] = contact
    account.by_id[contact.id] = contact
    return contact


def _link(account: Account, contact: Contact, list_id: int) -> None:
    contact.list_ids.add(list_id)
    account.members.setdefault(list_id, {})[contact.id] = None


def _unlink(account: Account, contact: Contact, list_id: int) -> None:
    contact.list_ids.discard(list_id)
    account.members.get(list_id, {}).pop(contact.id, None)


def _set_attributes(account: Account, contact: Contact, attributes: dict[str, Any]) -> None:
    for name, value in attributes.items():
        if name.upper() in account.attributes and name.upper() != "EMAIL":
            contact.attributes[name.upper()] = value


def _set_blacklist(state: BrevoState, contact: Contact, value: Any) -> None:
    if value is True:
        contact.blacklisted = True
    elif value is False and not state.config.unblacklist_ignored:
        contact.blacklisted = False


def _find_contact(account: Account, identifier: str, kind: str | None) -> Contact | None:
    if kind == "contact_id" or (kind is None and identifier.isdigit()):
        return account.by_id.get(int(identifier)) if identifier.isdigit() else None
    return account.contacts.get(identifier.lower())


Handler = Callable[[BrevoState, Account, Request, dict[str, str], Any], Awaitable[Response]]


async def account_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    country = "Germany" if acc.language == "de" else "United Kingdom"
    data: dict[str, Any] = {
        "email": acc.email,
        "firstName": "Max",
        "lastName": "Owner",
        "companyName": acc.company,
        "address": {
            "city": "Aachen",
            "street": "Charlottenburger Allee 5",
            "zipCode": "52068",
            "country": country,
        },
        "plan": [{"type": "free", "credits": 300, "creditsType": "sendLimit"}],
        "relay": {
            "enabled": True,
            "data": {"userName": acc.email, "relay": "smtp-relay.brevo.com", "port": 587},
        },
    }
    if state.config.account_language:
        data["language"] = acc.language
    return JSONResponse(data)


def _page(req: Request, items: list[Any], default: int) -> list[Any]:
    limit = int(req.query_params.get("limit", default))
    offset = int(req.query_params.get("offset", 0))
    if req.query_params.get("sort", "desc") == "desc":
        items = items[::-1]
    return items[offset : offset + limit]


async def folders_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    items = [
        {"id": i, "name": n, "totalBlacklisted": 0, "totalSubscribers": 0, "uniqueSubscribers": 0}
        for i, n in acc.folders.items()
    ]
    return JSONResponse({"folders": _page(req, items, 10), "count": len(items)})


async def folders_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    folder_id = state.next_id()
    acc.folders[folder_id] = b["name"]
    return JSONResponse({"id": folder_id}, status_code=201)


def _list_api(acc: Account, list_id: int) -> dict[str, Any]:
    meta = acc.lists[list_id]
    ids = acc.members.get(list_id, {})
    blacklisted = sum(1 for cid in ids if acc.by_id[cid].blacklisted)
    return {
        "id": list_id,
        "name": meta["name"],
        "folderId": meta["folderId"],
        "totalBlacklisted": blacklisted,
        "totalSubscribers": len(ids) - blacklisted,
        "uniqueSubscribers": len(ids),
        "createdAt": meta["createdAt"],
        "dynamicList": False,
    }


async def lists_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    items = [_list_api(acc, i) for i in acc.lists]
    for item in items:
        item.pop("createdAt"), item.pop("dynamicList")
    return JSONResponse({"lists": _page(req, items, 10), "count": len(items)})


async def lists_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    if int(b["folderId"]) not in acc.folders:
        return _error(400, "invalid_parameter", "Folder ID does not exist")
    list_id = state.next_id()
    acc.lists[list_id] = {"name": b["name"], "folderId": int(b["folderId"]), "createdAt": _now()}
    acc.members[list_id] = {}
    return JSONResponse({"id": list_id}, status_code=201)


async def list_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    list_id = int(p["listId"])
    if list_id not in acc.lists:
        return _not_found("List ID")
    return JSONResponse(_list_api(acc, list_id))


async def list_contacts(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    list_id = int(p["listId"])
    if list_id not in acc.lists:
        return _not_found("List ID")
    ids = list(acc.members.get(list_id, {}))
    page = [acc.by_id[cid].to_api() for cid in _page(req, ids, 50)]
    return JSONResponse({"contacts": page, "count": len(ids)})


async def list_add(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    list_id = int(p["listId"])
    if list_id not in acc.lists:
        return _not_found("List ID")
    success, failure = [], []
    for email in b.get("emails", []):
        contact = acc.contacts.get(email.lower())
        if contact is None or list_id in contact.list_ids:
            failure.append(email)
        else:
            _link(acc, contact, list_id)
            success.append(email)
    return JSONResponse({"contacts": {"success": success, "failure": failure}}, status_code=201)


async def list_remove(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    list_id = int(p["listId"])
    if list_id not in acc.lists:
        return _not_found("List ID")
    success = []
    for email in b.get("emails", []):
        contact = acc.contacts.get(email.lower())
        if contact is not None and list_id in contact.list_ids:
            _unlink(acc, contact, list_id)
            success.append(email)
    if not success:
        return _error(
            400, "invalid_parameter", "Contact already removed from list and/or does not exist"
        )
    return JSONResponse({"contacts": {"success": success, "failure": []}}, status_code=201)


async def contacts_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    email = str(b.get("email", "")).lower()
    if not email:
        return _error(
            400, "missing_parameter", "Please provide Email or SMS attribute value to create user"
        )
    if not _EMAIL.match(email):
        return _error(400, "invalid_parameter", "Invalid email address")
    contact = acc.contacts.get(email)
    created = contact is None
    if contact is None:
        contact = _create_contact(state, acc, email)
    elif not b.get("updateEnabled"):
        return JSONResponse(
            {
                "code": "duplicate_parameter",
                "message": "Unable to create contact, "
                "email is already associated with another Contact",
                "metadata": {"duplicate_identifiers": ["email"]},
            },
            status_code=400,
        )
    elif state.config.upsert_replaces_lists and "listIds" in b:
        for list_id in list(contact.list_ids):
            _unlink(acc, contact, list_id)
    _apply_update(state, acc, contact, b)
    if created:
        return JSONResponse({"id": contact.id}, status_code=201)
    return Response(status_code=204)


def _apply_update(state: BrevoState, acc: Account, contact: Contact, b: dict[str, Any]) -> None:
    _set_attributes(acc, contact, b.get("attributes") or {})
    _set_blacklist(state, contact, b.get("emailBlacklisted"))
    for list_id in b.get("listIds") or []:
        if list_id in acc.lists:
            _link(acc, contact, list_id)
    for list_id in b.get("unlinkListIds") or []:
        _unlink(acc, contact, list_id)
    contact.modified_at = _now()


async def contact_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    contact = _find_contact(acc, p["identifier"], req.query_params.get("identifierType"))
    if contact is None:
        return _not_found("Contact")
    return JSONResponse({**contact.to_api(), "statistics": {}})


async def contact_put(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    contact = _find_contact(acc, p["identifier"], req.query_params.get("identifierType"))
    if contact is None:
        return _not_found("Contact")
    new_email = str((b.get("attributes") or {}).get("EMAIL", "")).lower()
    if new_email and new_email != contact.email:
        if new_email in acc.contacts:
            return JSONResponse(
                {
                    "code": "duplicate_parameter",
                    "message": "Unable to update "
                    "contact, email is already associated with another Contact",
                    "metadata": {"duplicate_identifiers": ["email"]},
                },
                status_code=400,
            )
        del acc.contacts[contact.email]
        contact.email = new_email
        acc.contacts[new_email] = contact
    _apply_update(state, acc, contact, b)
    return Response(status_code=204)


async def contact_delete(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    contact = _find_contact(acc, p["identifier"], req.query_params.get("identifierType"))
    if contact is None:
        return _not_found("Contact")
    if contact.email == acc.email:
        return _error(405, "method_not_allowed", "The account owner cannot be deleted")
    for list_id in list(contact.list_ids):
        _unlink(acc, contact, list_id)
    del acc.contacts[contact.email], acc.by_id[contact.id]
    return Response(status_code=204)


async def attributes_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    return JSONResponse({"attributes": list(acc.attributes.values())})


async def attribute_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    name = p["attributeName"].upper()
    if name in acc.attributes:
        return _error(400, "duplicate_parameter", "Attribute name must be unique")
    acc.attributes[name] = {
        "name": name,
        "category": p["attributeCategory"],
        "type": b.get("type", "text"),
    }
    return Response(status_code=201)


async def import_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    rows = b.get("jsonBody")
    if rows is None:
        return _error(400, "invalid_parameter", "Only jsonBody imports are emulated")
    list_ids = [i for i in b.get("listIds") or [] if i in acc.lists]
    if not list_ids:
        return _error(400, "invalid_parameter", "listIds are invalid")
    update_existing = b.get("updateExistingContacts", True)
    invalid = 0
    for row in rows:
        email = str(row.get("email", "")).lower()
        if not _EMAIL.match(email):
            invalid += 1
            continue
        contact = acc.contacts.get(email)
        if contact is not None and not update_existing:
            continue
        if contact is None:
            contact = _create_contact(state, acc, email)
        attributes = {
            k: v
            for k, v in (row.get("attributes") or {}).items()
            if v not in ("", None) or b.get("emptyContactsAttributes")
        }
        _set_attributes(acc, contact, attributes)
        if b.get("emailBlacklist"):
            contact.blacklisted = True
        for list_id in list_ids:
            _link(acc, contact, list_id)
    process_id = state.next_id()
    acc.processes[process_id] = {
        "id": process_id,
        "name": "IMPORTUSER",
        "invalid_emails": invalid,
        "done_at": time.monotonic() + state.config.import_delay,
    }
    if b.get("notifyUrl"):
        # Brevo calls the notify URL once the process is finished (a POST; the receiver
        # treats it as a trigger only and reads the process).
        task = asyncio.create_task(_notify(str(b["notifyUrl"]), process_id, state))
        _NOTIFY_TASKS.add(task)
        task.add_done_callback(_NOTIFY_TASKS.discard)
    return JSONResponse({"processId": process_id}, status_code=202)


_NOTIFY_TASKS: set[asyncio.Task[None]] = set()


async def _notify(url: str, process_id: int, state: BrevoState) -> None:
    await asyncio.sleep(state.config.import_delay)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await client.post(url, json={"processId": process_id, "status": "completed"})
    except httpx.HTTPError:
        pass  # like Brevo: a notification that cannot be delivered is dropped


async def process_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    process = acc.processes.get(int(p["processId"]))
    if process is None:
        return _error(404, "invalid_parameter", "processId is invalid")
    done = time.monotonic() >= process["done_at"]
    return JSONResponse(
        {
            "id": process["id"],
            "name": process["name"],
            "status": "completed" if done else "in_process",
        }
    )


async def batch_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    success, failure = [], []
    for item in b.get("contacts", []):
        contact = (
            acc.by_id.get(item["id"])
            if "id" in item
            else acc.contacts.get(str(item.get("email", "")).lower())
        )
        if contact is None:
            failure.append(item.get("id") or item.get("email"))
            continue
        _apply_update(state, acc, contact, item)
        success.append(contact.id)
    if failure:
        return JSONResponse({"successIds": success, "failureIds": failure}, status_code=207)
    return Response(status_code=204)


async def webhooks_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    kind = req.query_params.get("type", "transactional")
    hooks = [h for h in acc.webhooks.values() if h["type"] == kind]
    return JSONResponse({"webhooks": hooks})


async def webhooks_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    kind = b.get("type", "transactional")
    if len(acc.webhooks) >= 40:
        return _error(400, "invalid_parameter", "Maximum number of webhooks reached")
    marketing = {
        "spam",
        "opened",
        "click",
        "hardBounce",
        "softBounce",
        "unsubscribed",
        "listAddition",
        "delivered",
    }
    if state.config.marketing_contact_events:
        marketing |= {"contactUpdated", "contactDeleted"}
    bad = [e for e in b["events"] if kind == "marketing" and e not in marketing]
    if bad:
        return _error(400, "invalid_parameter", f"Invalid events for marketing: {', '.join(bad)}")
    hook_id = state.next_id()
    now = _now()
    acc.webhooks[hook_id] = {
        "id": hook_id,
        "url": b["url"],
        "description": b.get("description", ""),
        "events": b["events"],
        "type": kind,
        "createdAt": now,
        "modifiedAt": now,
        "batched": bool(b.get("batched")),
        "auth": b.get("auth") or {},
        "headers": b.get("headers") or [],
    }
    return JSONResponse({"id": hook_id}, status_code=201)


async def webhook_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    hook = acc.webhooks.get(int(p["webhookId"]))
    return JSONResponse(hook) if hook else _not_found("Webhook")


async def webhook_delete(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    return (
        Response(status_code=204)
        if acc.webhooks.pop(int(p["webhookId"]), None)
        else (_not_found("Webhook"))
    )


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/account", account_get),
    ("GET", "/contacts/folders", folders_get),
    ("POST", "/contacts/folders", folders_post),
    ("GET", "/contacts/lists", lists_get),
    ("POST", "/contacts/lists", lists_post),
    ("GET", "/contacts/lists/{listId}", list_get),
    ("GET", "/contacts/lists/{listId}/contacts", list_contacts),
    ("POST", "/contacts/lists/{listId}/contacts/add", list_add),
    ("POST", "/contacts/lists/{listId}/contacts/remove", list_remove),
    ("GET", "/contacts/attributes", attributes_get),
    ("POST", "/contacts/attributes/{attributeCategory}/{attributeName}", attribute_post),
    ("POST", "/contacts/import", import_post),
    ("POST", "/contacts/batch", batch_post),
    ("POST", "/contacts", contacts_post),
    ("GET", "/contacts/{identifier}", contact_get),
    ("PUT", "/contacts/{identifier}", contact_put),
    ("DELETE", "/contacts/{identifier}", contact_delete),
    ("GET", "/processes/{processId}", process_get),
    ("GET", "/webhooks", webhooks_get),
    ("POST", "/webhooks", webhooks_post),
    ("GET", "/webhooks/{webhookId}", webhook_get),
    ("DELETE", "/webhooks/{webhookId}", webhook_delete),
]
_COMPILED = [
    (method, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", tpl) + "$"), tpl, handler)
    for method, tpl, handler in ROUTES
]


def _rate_limited(state: BrevoState, account: Account) -> Response | None:
    limit = state.config.contacts_rps
    if limit <= 0:
        return None
    now = time.monotonic()
    window = account.window
    while window and now - window[0] >= 1.0:
        window.popleft()
    if len(window) >= limit:
        state.rate_limited += 1
        reset = max(0.0, 1.0 - (now - window[0]))
        return _error(
            429,
            "too_many_requests",
            "Too many requests",
            **{
                "x-sib-ratelimit-limit": str(limit),
                "x-sib-ratelimit-remaining": "0",
                "x-sib-ratelimit-reset": f"{reset:.3f}",
            },
        )
    window.append(now)
    return None


def _items_in(body: Any) -> int:
    if isinstance(body, dict):
        for key in ("jsonBody", "contacts", "emails"):
            if isinstance(body.get(key), list):
                return len(body[key])
    return 1


async def _api(request: Request) -> Response:
    state: BrevoState = request.app.state.brevo
    path = "/" + request.path_params["path"]
    raw = await request.body()
    state.request_counts[f"{request.method} {path}"] = (
        state.request_counts.get(f"{request.method} {path}", 0) + 1
    )
    state.request_log.append((time.monotonic(), request.method, path))
    problems = state.validator.validate(
        request.method,
        "/v3" + path,
        request.query_params,
        request.headers,
        raw,
        request.headers.get("content-type"),
    )
    if problems:
        state.violations.extend(problems)
        return _error(400, "invalid_parameter", "; ".join(problems)[:1000])
    account = state.accounts.get(request.headers.get("api-key", ""))
    if account is None:
        if "api-key" not in request.headers:
            return _error(401, "unauthorized", "authentication not found in headers")
        return _error(401, "unauthorized", "Key not found")
    for fault in state.faults:
        if (
            fault.remaining > 0
            and path.startswith(fault.path_prefix)
            and (fault.method in (None, request.method))
        ):
            fault.remaining -= 1
            body = fault.body or {"code": "internal_error", "message": "Injected fault"}
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
    if path.startswith("/contacts") and (limited := _rate_limited(state, account)):
        return limited
    body = json.loads(raw) if raw else {}
    delay = state.config.latency + state.config.latency_per_item * _items_in(body)
    if delay > 0:
        await asyncio.sleep(delay)
    for method, pattern, _tpl, handler in _COMPILED:
        found = pattern.match(path)
        if found and method == request.method:
            params = {k: unquote(v) for k, v in found.groupdict().items()}
            return await handler(state, account, request, params, body)
    return _error(405, "method_not_allowed", "Not emulated")


# -- control API ------------------------------------------------------------------------------


async def _control_state(request: Request) -> Response:
    state: BrevoState = request.app.state.brevo
    return JSONResponse(
        {
            "request_counts": state.request_counts,
            "spec_violations": len(state.violations),
            "violations": state.violations[-50:],
            "rate_limited": state.rate_limited,
            "config": asdict(state.config),
            "accounts": {
                key: {
                    "language": a.language,
                    "contacts": len(a.contacts),
                    "lists": {i: m["name"] for i, m in a.lists.items()},
                    "webhooks": list(a.webhooks.values()),
                    "attributes": list(a.attributes),
                }
                for key, a in state.accounts.items()
            },
        }
    )


async def _control_accounts(request: Request) -> Response:
    state: BrevoState = request.app.state.brevo
    body = await request.json()
    state.add_account(body["api_key"], body.get("language", "de"))
    return JSONResponse({"ok": True}, status_code=201)


async def _control_contacts(request: Request) -> Response:
    state: BrevoState = request.app.state.brevo
    account = state.accounts.get(request.path_params["key"])
    if account is None:
        return _not_found("Account")
    if request.method == "POST":
        for item in await request.json():
            state.seed_contact(
                account,
                item["email"],
                attributes=item.get("attributes"),
                list_ids=item.get("listIds"),
                blacklisted=bool(item.get("emailBlacklisted")),
            )
        return JSONResponse({"ok": True}, status_code=201)
    return JSONResponse([c.to_api() for c in account.contacts.values()])


async def _control_config(request: Request) -> Response:
    state: BrevoState = request.app.state.brevo
    for key, value in (await request.json()).items():
        if hasattr(state.config, key):
            setattr(state.config, key, value)
    return JSONResponse(asdict(state.config))


async def _control_faults(request: Request) -> Response:
    state: BrevoState = request.app.state.brevo
    body = await request.json()
    state.faults.append(
        Fault(
            method=body.get("method"),
            path_prefix=body.get("path_prefix", "/"),
            status=int(body["status"]),
            remaining=int(body.get("count", 1)),
            body=body.get("body"),
            headers=body.get("headers", {}),
        )
    )
    return JSONResponse({"ok": True}, status_code=201)


def create_app(state: BrevoState | None = None) -> Starlette:
    state = state or BrevoState()
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    app = Starlette(
        routes=[
            Route("/_control/state", _control_state),
            Route("/_control/accounts", _control_accounts, methods=["POST"]),
            Route("/_control/accounts/{key}/contacts", _control_contacts, methods=["GET", "POST"]),
            Route("/_control/config", _control_config, methods=["POST"]),
            Route("/_control/faults", _control_faults, methods=["POST"]),
            Route("/v3/{path:path}", _api, methods=methods),
        ]
    )
    app.state.brevo = state
    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Brevo API v3 emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    state = BrevoState(BrevoConfig(latency=args.latency))
    state.add_account("test-key-de", "de")
    state.add_account("test-key-en", "en")
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
