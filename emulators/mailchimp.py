"""Mailchimp Marketing API v3 emulator (the parts the connector uses), as an ASGI app.

Serves under `/3.0` like `https://<dc>.api.mailchimp.com/3.0`: Basic auth with seeded keys,
lists, merge fields, members (PUT/GET/PATCH/DELETE=archive, delete-permanent), batch subscribe
with per-member errors, tags, static segments (= tags: the same store, so a tag set through one
shows through the other), webhooks (URL checked with a GET), problem+json errors, the
10-connection limit, latency and fault injection. Every request is validated against the
Mailchimp OpenAPI spec; a violation is answered 400 and counted.

Control API (no auth) under `/_control/`: see `_control_routes`. Run standalone with
`python -m emulators.mailchimp --port 8025 --api-key <key>-us1`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from email_validator import EmailNotValidError, validate_email
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators._openapi import OpenAPIRequestValidator
from emulators._shared import shared_path

logger = logging.getLogger(__name__)

SPEC_PATH = Path(
    os.environ.get(
        "MAILCHIMP_SPEC_PATH",
        str(shared_path("specs", "mailchimp-marketing.ballerina-derived.openapi.json")),
    )
)
ERROR_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
DEFAULT_API_KEY = "0123456789abcdef0123456789abcdef-us1"
BATCH_LIMIT = 500
PAGE_LIMIT = 1000
WRITABLE_STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}
_FAST_EMAIL = re.compile(r"[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}")

UrlChecker = Callable[[str], Awaitable[bool]]


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@lru_cache(maxsize=65536)
def _valid_email(email: str) -> bool:
    if _FAST_EMAIL.fullmatch(email):
        return True
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


async def check_url_with_get(url: str) -> bool:
    """Mailchimp's webhook URL validation: a GET that must answer 200."""
    headers = {"User-Agent": "MailChimp.com WebHook Validator"}
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@dataclass(slots=True)
class Member:
    email: str
    status: str
    merge_fields: dict[str, Any]
    tags: dict[str, int]  # name -> tag id, in insertion order
    unique_email_id: str
    web_id: int
    contact_id: str
    timestamp_signup: str
    last_changed: str
    self_unsubscribed: bool = False

    @property
    def id(self) -> str:
        return subscriber_hash(self.email)


@dataclass
class MailchimpList:
    id: str
    name: str
    web_id: int
    body: dict[str, Any]
    date_created: str
    members: dict[str, Member] = field(default_factory=dict)
    merge_fields: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    tag_ids: dict[str, int] = field(default_factory=dict)  # tags are the static segments
    tag_created: dict[int, str] = field(default_factory=dict)
    version: int = 0
    _views: dict[tuple[str | None, int], list[str]] = field(default_factory=dict)

    def view(self, status: str | None) -> list[str]:
        """Member hashes for a status filter (archived hidden unless asked), cached per version."""
        cached = self._views.get((status, self.version))
        if cached is None:
            self._views.clear()
            if status is None:
                cached = [h for h, m in self.members.items() if m.status != "archived"]
            else:
                cached = [h for h, m in self.members.items() if m.status == status]
            self._views[(status, self.version)] = cached
        return cached


@dataclass
class Fault:
    status: int
    count: int = 1
    retry_after: float | None = None
    bodiless: bool = False
    path_contains: str | None = None
    method: str | None = None


@dataclass
class MailchimpState:
    """Everything the emulator knows; tests may seed it directly or through `/_control/`."""

    api_keys: set[str] = field(default_factory=lambda: {DEFAULT_API_KEY})
    account: dict[str, Any] = field(
        default_factory=lambda: {
            "account_id": "8d3a3db4d97663a9074efcc16",
            "account_name": "Musterhaus Immobilien GmbH",
            "email": "office@musterhaus-immobilien.de",
            "first_name": "Max",
            "last_name": "Muster",
            "username": "musterhaus",
            "contact": {
                "company": "Musterhaus Immobilien GmbH",
                "addr1": "Musterstraße 1",
                "addr2": "",
                "city": "Berlin",
                "state": "",
                "zip": "10115",
                "country": "DE",
            },
            "pricing_plan_type": "monthly",
            "total_subscribers": 0,
        }
    )
    lists: dict[str, MailchimpList] = field(default_factory=dict)
    max_lists: int | None = None  # 1 = free plan
    max_connections: int = 10
    latency_s: float = 0.0
    latency_per_item_s: float = 0.0
    validate_spec: bool = True
    compliance_emails: set[str] = field(default_factory=set)
    forgotten_emails: set[str] = field(default_factory=set)
    # Addresses the static-segment endpoint reports in `errors` instead of adding (an unexplained
    # per-address refusal; the member tags endpoint still accepts them).
    segment_rejected_emails: set[str] = field(default_factory=set)
    # Recipients of sent campaigns (campaign id -> (list id, emails)), for /reports/.../sent-to.
    campaign_recipients: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    url_checker: UrlChecker = check_url_with_get
    request_counts: Counter[str] = field(default_factory=Counter)
    spec_violations: list[str] = field(default_factory=list)
    active: Counter[str] = field(default_factory=Counter)
    max_concurrency: int = 0
    concurrency_rejections: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def next_id(self) -> int:
        return next(self._ids)

    # -- seeding helpers ------------------------------------------------------------------------

    def create_list(self, name: str, list_id: str | None = None) -> MailchimpList:
        lst = MailchimpList(
            id=list_id or secrets.token_hex(5),
            name=name,
            web_id=self.next_id(),
            body={},
            date_created=_now(),
        )
        for tag, label, kind in (
            ("FNAME", "First Name", "text"),
            ("LNAME", "Last Name", "text"),
            ("ADDRESS", "Address", "address"),
            ("PHONE", "Phone Number", "phone"),
            ("BIRTHDAY", "Birthday", "birthday"),
        ):
            self._add_merge_field(lst, tag, label, kind)
        self.lists[lst.id] = lst
        return lst

    def _add_merge_field(
        self, lst: MailchimpList, tag: str, name: str, kind: str
    ) -> dict[str, Any]:
        item = {
            "merge_id": len(lst.merge_fields) + 1,
            "tag": tag,
            "name": name,
            "type": kind,
            "required": False,
            "default_value": "",
            "public": False,
            "display_order": len(lst.merge_fields) + 1,
            "options": {},
            "help_text": "",
            "list_id": lst.id,
        }
        lst.merge_fields.append(item)
        return item

    def seed_member(
        self,
        list_id: str,
        email: str,
        *,
        status: str = "subscribed",
        merge_fields: dict[str, Any] | None = None,
        tags: list[str] | tuple[str, ...] = (),
        self_unsubscribed: bool = False,
    ) -> Member:
        lst = self.lists[list_id]
        member = self._new_member(email, status)
        member.merge_fields.update(merge_fields or {})
        member.self_unsubscribed = self_unsubscribed
        for tag in tags:
            member.tags[tag] = self._tag_id(lst, tag)
        lst.members[member.id] = member
        lst.version += 1
        return member

    def member_action(
        self, list_id: str, email: str, action: str, *, at: str | None = None
    ) -> Member:
        """What a subscriber or an admin does inside Mailchimp (no webhook is sent here; a test
        sends, delays or loses it): `unsubscribe` (the person, via the link: a compliance
        state afterwards), `admin_unsubscribe`, `archive`, `clean` (hard bounce), `pending`
        (double opt-in mail sent), `subscribe` (the person signs up again)."""
        lst = self.lists[list_id]
        member = lst.members.get(subscriber_hash(email)) or self.seed_member(list_id, email)
        status = {
            "unsubscribe": "unsubscribed",
            "admin_unsubscribe": "unsubscribed",
            "archive": "archived",
            "clean": "cleaned",
            "pending": "pending",
            "subscribe": "subscribed",
        }[action]
        member.status = status
        member.self_unsubscribed = action == "unsubscribe"
        member.last_changed = at or _now()
        lst.version += 1
        return member

    def _new_member(self, email: str, status: str) -> Member:
        now = _now()
        return Member(
            email=email.strip(),
            status=status,
            merge_fields={},
            tags={},
            unique_email_id=secrets.token_hex(5),
            web_id=self.next_id(),
            contact_id=secrets.token_hex(16),
            timestamp_signup=now,
            last_changed=now,
        )

    def _tag_id(self, lst: MailchimpList, name: str) -> int:
        if name not in lst.tag_ids:
            lst.tag_ids[name] = self.next_id()
            lst.tag_created[lst.tag_ids[name]] = _now()
        return lst.tag_ids[name]

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method and fault.method.upper() != method:
                continue
            if fault.path_contains and fault.path_contains not in path:
                continue
            fault.count -= 1
            if fault.count <= 0:
                self.faults.remove(fault)
            return fault
        return None

    async def pause(self, items: int = 0) -> None:
        delay = self.latency_s + self.latency_per_item_s * items
        if delay > 0:
            await asyncio.sleep(delay)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.request_counts),
            "total_requests": sum(self.request_counts.values()),
            "spec_violations": len(self.spec_violations),
            "spec_violation_samples": self.spec_violations[-20:],
            "max_concurrency": self.max_concurrency,
            "concurrency_rejections": self.concurrency_rejections,
            "faults_pending": len(self.faults),
        }


class ApiError(Exception):
    def __init__(
        self, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors


def problem(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> Response:
    instance = str(uuid.uuid4())
    body: dict[str, Any] = {
        "type": ERROR_DOC,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(
        body,
        status_code=status,
        media_type="application/problem+json",
        headers={"X-Request-Id": instance},
    )


def _not_found() -> ApiError:
    return ApiError(404, "Resource Not Found", "The requested resource could not be found.")


def _compliance(email: str) -> ApiError:
    return ApiError(
        400,
        "Member In Compliance State",
        f"{email} is in a compliance state due to unsubscribe, bounce, or compliance review "
        f"and cannot be subscribed.",
    )


def _forgotten(email: str) -> ApiError:
    return ApiError(
        400,
        "Forgotten Email Not Subscribed",
        f"{email} was permanently deleted and cannot be re-imported. The contact must "
        f"re-subscribe to get back on the list.",
    )


def _invalid_email(email: str) -> ApiError:
    return ApiError(
        400,
        "Invalid Resource",
        "The resource submitted could not be validated. For field-specific details, see the "
        "'errors' array.",
        [
            {
                "field": "email_address",
                "message": f"{email} looks fake or invalid, please enter a real email address.",
            }
        ],
    )


# ---------------------------------------------------------------------------------------------
# Field filtering (`fields` / `exclude_fields`, dot notation)
# ---------------------------------------------------------------------------------------------


def _field_tree(spec: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in filter(None, (p.strip() for p in spec.split(","))):
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _include(value: Any, tree: dict[str, Any]) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [_include(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: _include(value[k], sub) for k, sub in tree.items() if k in value}
    return value


def _exclude(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_exclude(v, tree) for v in value]
    if isinstance(value, dict):
        return {
            k: (_exclude(v, tree[k]) if k in tree else v)
            for k, v in value.items()
            if not (k in tree and not tree[k])
        }
    return value


def shaped(request: Request, body: dict[str, Any]) -> JSONResponse:
    fields = request.query_params.get("fields")
    excluded = request.query_params.get("exclude_fields")
    result: Any = body
    if fields:
        result = _include(result, _field_tree(fields))
    if excluded:
        result = _exclude(result, _field_tree(excluded))
    return JSONResponse(result)


def _page(request: Request) -> tuple[int, int]:
    try:
        count = int(request.query_params.get("count", "10"))
        offset = int(request.query_params.get("offset", "0"))
    except ValueError as exc:
        raise ApiError(400, "Invalid Resource", "count and offset must be integers.") from exc
    if count > PAGE_LIMIT or count < 0 or offset < 0:
        raise ApiError(
            400, "Invalid Resource", f"count must be between 0 and {PAGE_LIMIT}; offset >= 0."
        )
    return count, offset


# ---------------------------------------------------------------------------------------------
# Representations
# ---------------------------------------------------------------------------------------------


def member_json(lst: MailchimpList, m: Member) -> dict[str, Any]:
    merge: dict[str, Any] = dict.fromkeys((f["tag"] for f in lst.merge_fields), "")
    merge.update(m.merge_fields)
    return {
        "id": m.id,
        "email_address": m.email,
        "unique_email_id": m.unique_email_id,
        "contact_id": m.contact_id,
        "full_name": " ".join(
            str(v) for v in (m.merge_fields.get("FNAME"), m.merge_fields.get("LNAME")) if v
        ),
        "web_id": m.web_id,
        "email_type": "html",
        "status": m.status,
        "merge_fields": merge,
        "interests": {},
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
        "ip_signup": "",
        "timestamp_signup": m.timestamp_signup,
        "ip_opt": "",
        "timestamp_opt": m.timestamp_signup,
        "member_rating": 2,
        "last_changed": m.last_changed,
        "language": "",
        "vip": False,
        "email_client": "",
        "location": {"latitude": 0, "longitude": 0},
        "source": "API - Generic",
        "tags_count": len(m.tags),
        "tags": [{"id": tid, "name": name} for name, tid in list(m.tags.items())[:50]],
        "list_id": lst.id,
    }


def list_json(lst: MailchimpList) -> dict[str, Any]:
    counts = Counter(m.status for m in lst.members.values())
    return {
        **lst.body,
        "id": lst.id,
        "web_id": lst.web_id,
        "name": lst.name,
        "date_created": lst.date_created,
        "stats": {
            "member_count": counts["subscribed"],
            "unsubscribe_count": counts["unsubscribed"],
            "cleaned_count": counts["cleaned"],
            "total_contacts": len(lst.members),
        },
    }


# ---------------------------------------------------------------------------------------------
# API handlers: (state, request, parsed body) -> Response. Raise ApiError for problems.
# ---------------------------------------------------------------------------------------------


def _list(state: MailchimpState, request: Request) -> MailchimpList:
    lst = state.lists.get(request.path_params["list_id"])
    if lst is None:
        raise _not_found()
    return lst


def _member(lst: MailchimpList, request: Request) -> Member:
    member = lst.members.get(_resolve_hash(request.path_params["subscriber_hash"]))
    if member is None:
        raise _not_found()
    return member


def _resolve_hash(value: str) -> str:
    # The API also accepts the email address itself in place of the hash.
    return subscriber_hash(value) if "@" in value else value.lower()


async def ping(state: MailchimpState, request: Request, body: Any) -> Response:
    return JSONResponse({"health_status": "Everything's Chimpy!"})


async def root(state: MailchimpState, request: Request, body: Any) -> Response:
    total = sum(len(lst.members) for lst in state.lists.values())
    return shaped(request, {**state.account, "total_subscribers": total})


async def get_lists(state: MailchimpState, request: Request, body: Any) -> Response:
    count, offset = _page(request)
    lists = list(state.lists.values())
    items = [list_json(lst) for lst in lists[offset : offset + count]]
    return shaped(request, {"lists": items, "total_items": len(lists)})


async def create_list(state: MailchimpState, request: Request, body: Any) -> Response:
    if state.max_lists is not None and len(state.lists) >= state.max_lists:
        raise ApiError(
            403, "User action not permitted", "User does not have access to the requested operation"
        )
    lst = state.create_list(body["name"])
    lst.body = {k: v for k, v in body.items() if k != "name"}
    return JSONResponse(list_json(lst))


async def get_list(state: MailchimpState, request: Request, body: Any) -> Response:
    return shaped(request, list_json(_list(state, request)))


async def patch_list(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    lst.name = body.get("name", lst.name)
    lst.body.update({k: v for k, v in body.items() if k != "name"})
    return JSONResponse(list_json(lst))


async def get_merge_fields(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    count, offset = _page(request)
    items = lst.merge_fields[offset : offset + count]
    return shaped(
        request, {"merge_fields": items, "list_id": lst.id, "total_items": len(lst.merge_fields)}
    )


async def create_merge_field(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    tag = str(body.get("tag") or re.sub(r"[^A-Z0-9]", "", body["name"].upper())[:10] or "MMERGE")
    if len(tag) > 10:
        raise ApiError(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated.",
            [{"field": "tag", "message": "Merge field tags may be at most 10 characters."}],
        )
    if any(f["tag"] == tag.upper() for f in lst.merge_fields):
        raise ApiError(
            400, "Invalid Resource", f'A Merge Field with the tag "{tag}" already exists.'
        )
    if len(lst.merge_fields) >= 30:
        raise ApiError(400, "Invalid Resource", "This audience has reached its merge field limit.")
    item = state._add_merge_field(lst, tag.upper(), body["name"], body["type"])
    item.update({k: body[k] for k in ("required", "public", "default_value") if k in body})
    return JSONResponse(item)


def _check_merge_fields(lst: MailchimpList, merge_fields: Any) -> None:
    known = {f["tag"] for f in lst.merge_fields}
    unknown = sorted(set(merge_fields or {}) - known)
    if unknown:
        raise ApiError(
            400,
            "Invalid Resource",
            "Your merge fields were invalid.",
            [{"field": tag, "message": "This merge field does not exist."} for tag in unknown],
        )


def _set_status(state: MailchimpState, m: Member, status: str) -> None:
    """Apply a requested status the way Mailchimp guards it."""
    key = m.email.lower()
    blocked = key in state.compliance_emails or m.status == "cleaned" or m.self_unsubscribed
    if status == "subscribed" and m.status != "subscribed" and blocked:
        raise _compliance(m.email)
    m.status = status
    if status == "subscribed":
        m.self_unsubscribed = False


def _new_member_checks(state: MailchimpState, email: str, status: str) -> None:
    if not _valid_email(email):
        raise _invalid_email(email)
    key = email.lower()
    if key in state.forgotten_emails:
        raise _forgotten(email)
    if status == "subscribed" and key in state.compliance_emails:
        raise _compliance(email)


async def batch_subscribe(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    items = body["members"]
    if len(items) > BATCH_LIMIT:
        raise ApiError(
            400, "Invalid Resource", f"You may only add or update {BATCH_LIMIT} members at a time."
        )
    await state.pause(len(items))
    update_existing = bool(body.get("update_existing", False))
    new, updated, errors = [], [], []
    seen: set[str] = set()
    for item in items:
        email = str(item.get("email_address", "")).strip()
        key = subscriber_hash(email)
        try:
            if key in seen:
                raise ApiError(400, "Invalid Resource", f"{email} appears more than once.")
            seen.add(key)
            _check_merge_fields(lst, item.get("merge_fields"))
            member = lst.members.get(key)
            status = item.get("status")
            if member is None:
                if status is None:
                    raise ApiError(400, "Invalid Resource", "The status field is required.")
                _new_member_checks(state, email, status)
                member = state._new_member(email, status)
                member.merge_fields.update(item.get("merge_fields") or {})
                lst.members[key] = member
                lst.version += 1
                new.append(member_json(lst, member))
                continue
            if not update_existing:
                errors.append(
                    {
                        "email_address": email,
                        "error": f"{email} is already a list member, do you want to update? "
                        f"please provide update_existing:true in the request body",
                        "error_code": "ERROR_CONTACT_EXISTS",
                        "field": "",
                        "field_message": "",
                    }
                )
                continue
            if status is not None:
                _set_status(state, member, status)
                lst.version += 1
            member.merge_fields.update(item.get("merge_fields") or {})
            member.last_changed = _now()
            updated.append(member_json(lst, member))
        except ApiError as exc:
            field_error = (exc.errors or [{}])[0]
            errors.append(
                {
                    "email_address": email,
                    "error": str(field_error.get("message") or exc.detail),
                    "error_code": "ERROR_GENERIC",
                    "field": str(field_error.get("field", "")),
                    "field_message": str(field_error.get("message", "")),
                }
            )
    return JSONResponse(
        {
            "new_members": new,
            "updated_members": updated,
            "errors": errors,
            "total_created": len(new),
            "total_updated": len(updated),
            "error_count": len(errors),
        }
    )


async def get_members(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    count, offset = _page(request)
    hashes = lst.view(request.query_params.get("status"))
    since = request.query_params.get("since_last_changed")
    if since:
        floor = datetime.fromisoformat(since.replace("Z", "+00:00"))
        hashes = [
            h
            for h in hashes
            if datetime.fromisoformat(lst.members[h].last_changed.replace("Z", "+00:00")) >= floor
        ]
    page = [member_json(lst, lst.members[h]) for h in hashes[offset : offset + count]]
    await state.pause(len(page))
    return shaped(request, {"members": page, "list_id": lst.id, "total_items": len(hashes)})


async def get_sent_to(state: MailchimpState, request: Request, body: Any) -> Response:
    campaign_id = request.path_params["campaign_id"]
    if campaign_id not in state.campaign_recipients:
        raise _not_found()
    list_id, emails = state.campaign_recipients[campaign_id]
    count, offset = _page(request)
    page = [
        {
            "email_id": subscriber_hash(email),
            "email_address": email,
            "status": "sent",
            "campaign_id": campaign_id,
            "list_id": list_id,
        }
        for email in emails[offset : offset + count]
    ]
    await state.pause(len(page))
    return shaped(
        request, {"sent_to": page, "campaign_id": campaign_id, "total_items": len(emails)}
    )


async def create_member(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    email = body["email_address"].strip()
    if subscriber_hash(email) in lst.members:
        raise ApiError(
            400,
            "Member Exists",
            f"{email} is already a list member. Use PUT to insert or update list members.",
        )
    _check_merge_fields(lst, body.get("merge_fields"))
    _new_member_checks(state, email, body["status"])
    member = state.seed_member(
        lst.id,
        email,
        status=body["status"],
        merge_fields=body.get("merge_fields"),
        tags=body.get("tags") or (),
    )
    return JSONResponse(member_json(lst, member))


async def get_member(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    return shaped(request, member_json(lst, _member(lst, request)))


def _change_email(state: MailchimpState, lst: MailchimpList, m: Member, new_email: str) -> None:
    new_email = new_email.strip()
    if new_email.lower() == m.email.lower():
        m.email = new_email
        return
    if not _valid_email(new_email):
        raise _invalid_email(new_email)
    new_key = subscriber_hash(new_email)
    if new_key in lst.members:
        raise ApiError(
            400,
            "Member Exists",
            f"{new_email} is already a list member (in any status, including archived).",
        )
    if new_email.lower() in state.forgotten_emails:
        raise _forgotten(new_email)
    del lst.members[m.id]
    m.email = new_email
    lst.members[new_key] = m
    lst.version += 1


async def put_member(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    key = _resolve_hash(request.path_params["subscriber_hash"])
    _check_merge_fields(lst, body.get("merge_fields"))
    member = lst.members.get(key)
    if member is None:
        email = body["email_address"].strip()
        if subscriber_hash(email) != key:
            raise ApiError(
                400,
                "Invalid Resource",
                "The subscriber hash in the URL does not match the email address.",
            )
        status = body.get("status") or body["status_if_new"]
        _new_member_checks(state, email, status)
        member = state._new_member(email, status)
        lst.members[key] = member
        lst.version += 1
    else:
        if body.get("email_address"):
            _change_email(state, lst, member, body["email_address"])
        status = body.get("status")
        if status is None and member.status == "archived":
            status = body["status_if_new"]  # unarchiving needs a status; assume status_if_new
        if status is not None:
            _set_status(state, member, status)
            lst.version += 1
    member.merge_fields.update(body.get("merge_fields") or {})
    member.last_changed = _now()
    return JSONResponse(member_json(lst, member))


async def patch_member(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    member = _member(lst, request)
    _check_merge_fields(lst, body.get("merge_fields"))
    if body.get("email_address"):
        _change_email(state, lst, member, body["email_address"])
    if body.get("status") is not None:
        _set_status(state, member, body["status"])
        lst.version += 1
    member.merge_fields.update(body.get("merge_fields") or {})
    member.last_changed = _now()
    return JSONResponse(member_json(lst, member))


async def archive_member(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    member = _member(lst, request)
    if member.status == "archived":
        raise _not_found()
    member.status = "archived"
    member.last_changed = _now()
    lst.version += 1
    return Response(status_code=204)


async def delete_permanent(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    member = _member(lst, request)
    del lst.members[member.id]
    lst.version += 1
    state.forgotten_emails.add(member.email.lower())
    return Response(status_code=204)


async def get_member_tags(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    member = _member(lst, request)
    count, offset = _page(request)
    tags = [
        {"id": tid, "name": name, "date_added": member.last_changed}
        for name, tid in member.tags.items()
    ]
    return shaped(request, {"tags": tags[offset : offset + count], "total_items": len(tags)})


async def post_member_tags(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    member = _member(lst, request)
    for tag in body["tags"]:
        if tag["status"] == "active":
            member.tags.setdefault(tag["name"], state._tag_id(lst, tag["name"]))
        else:
            member.tags.pop(tag["name"], None)
    return Response(status_code=204)


def _segment_json(lst: MailchimpList, name: str, member_count: int) -> dict[str, Any]:
    segment_id = lst.tag_ids[name]
    created = lst.tag_created.get(segment_id, lst.date_created)
    return {
        "id": segment_id,
        "name": name,
        "member_count": member_count,
        "type": "static",
        "created_at": created,
        "updated_at": created,
        "options": {"match": "any", "conditions": []},
        "list_id": lst.id,
    }


def _segment_counts(lst: MailchimpList) -> Counter[str]:
    """Subscribed members per tag ("active subscribers currently included in the segment")."""
    counts: Counter[str] = Counter()
    for m in lst.members.values():
        if m.status == "subscribed":
            counts.update(m.tags.keys())  # a mapping would add its values (the ids)
    return counts


def _segment_name(lst: MailchimpList, request: Request) -> str:
    wanted = str(request.path_params["segment_id"])
    for name, tag_id in lst.tag_ids.items():
        if str(tag_id) == wanted:
            return name
    raise _not_found()


async def get_segments(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    count, offset = _page(request)
    # Only tags (static segments) are emulated; saved and fuzzy segments never exist.
    kind = request.query_params.get("type")
    names = list(lst.tag_ids) if kind in (None, "", "static") else []
    counts = _segment_counts(lst)
    page = [_segment_json(lst, name, counts[name]) for name in names[offset : offset + count]]
    return shaped(request, {"segments": page, "list_id": lst.id, "total_items": len(names)})


async def create_segment(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    name = str(body["name"]).strip()
    if "static_segment" not in body:
        raise ApiError(400, "Invalid Resource", "The emulator only creates static segments (tags).")
    if not name or name in lst.tag_ids:
        # Assumption: the real API's answer to a duplicate tag name is not documented.
        raise ApiError(400, "Invalid Resource", f'A tag named "{name}" already exists.')
    state._tag_id(lst, name)
    for email in body["static_segment"]:
        member = lst.members.get(subscriber_hash(str(email)))
        if member is not None and member.status != "archived":  # others are ignored
            member.tags.setdefault(name, lst.tag_ids[name])
    return JSONResponse(_segment_json(lst, name, _segment_counts(lst)[name]))


async def get_segment(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    name = _segment_name(lst, request)
    return shaped(request, _segment_json(lst, name, _segment_counts(lst)[name]))


async def update_segment_members(state: MailchimpState, request: Request, body: Any) -> Response:
    """Batch add/remove members of a static segment, i.e. tag or untag them."""
    lst = _list(state, request)
    name = _segment_name(lst, request)
    to_add, to_remove = body.get("members_to_add") or [], body.get("members_to_remove") or []
    if len(to_add) > BATCH_LIMIT or len(to_remove) > BATCH_LIMIT:
        raise ApiError(
            400,
            "Invalid Resource",
            f"You may only add or remove {BATCH_LIMIT} members of a segment at a time.",
        )
    await state.pause(len(to_add) + len(to_remove))
    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for emails, adding in ((to_add, True), (to_remove, False)):
        for email in emails:
            email = str(email).strip()
            member = lst.members.get(subscriber_hash(email))
            if member is None or member.status == "archived":
                errors.setdefault("Email addresses are not list members.", []).append(email)
            elif adding and email.lower() in state.segment_rejected_emails:
                errors.setdefault("Email address could not be added.", []).append(email)
            elif adding and name not in member.tags:
                member.tags[name] = lst.tag_ids[name]
                added.append(member_json(lst, member))
            elif not adding and name in member.tags:
                del member.tags[name]
                removed.append(member_json(lst, member))
    return JSONResponse(
        {
            "members_added": added,
            "members_removed": removed,
            "errors": [{"email_addresses": e, "error": msg} for msg, e in errors.items()],
            "total_added": len(added),
            "total_removed": len(removed),
            "error_count": sum(len(e) for e in errors.values()),
        }
    )


def _webhook(lst: MailchimpList, request: Request) -> dict[str, Any]:
    hook = lst.webhooks.get(request.path_params["webhook_id"])
    if hook is None:
        raise _not_found()
    return hook


async def get_webhooks(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    hooks = list(lst.webhooks.values())
    return shaped(request, {"webhooks": hooks, "list_id": lst.id, "total_items": len(hooks)})


async def create_webhook(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    url = str(body.get("url") or "")
    if not await state.url_checker(url):
        raise ApiError(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated. For field-specific details, see "
            "the 'errors' array.",
            [{"field": "url", "message": "We couldn't verify the URL is working."}],
        )
    hook: dict[str, Any] = {
        "id": secrets.token_hex(5),
        "url": url,
        "events": {
            k: bool((body.get("events") or {}).get(k, False))
            for k in ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
        },
        "sources": {
            k: bool((body.get("sources") or {}).get(k, False)) for k in ("user", "admin", "api")
        },
        "list_id": lst.id,
    }
    lst.webhooks[hook["id"]] = hook
    return JSONResponse(hook)


async def get_webhook(state: MailchimpState, request: Request, body: Any) -> Response:
    return shaped(request, _webhook(_list(state, request), request))


async def patch_webhook(state: MailchimpState, request: Request, body: Any) -> Response:
    hook = _webhook(_list(state, request), request)
    for section in ("events", "sources"):
        hook[section].update({k: bool(v) for k, v in (body.get(section) or {}).items()})
    if body.get("url"):
        hook["url"] = body["url"]
    return JSONResponse(hook)


async def delete_webhook(state: MailchimpState, request: Request, body: Any) -> Response:
    lst = _list(state, request)
    _webhook(lst, request)
    del lst.webhooks[request.path_params["webhook_id"]]
    return Response(status_code=204)


Handler = Callable[[MailchimpState, Request, Any], Awaitable[Response]]


def _api_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value).decode()
        except ValueError:
            return None
        return decoded.partition(":")[2]
    if scheme.lower() in ("bearer", "apikey"):
        return value
    return None


def _fault_response(fault: Fault) -> Response:
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    if fault.bodiless:
        return Response(status_code=fault.status, headers=headers)
    titles = {
        400: "Invalid Resource",
        429: "Too Many Requests",
        403: "Forbidden",
        500: "Internal Server Error",
    }
    response = problem(
        fault.status,
        titles.get(fault.status, "Service Unavailable"),
        "Injected fault: the emulator was told to fail this request.",
    )
    response.headers.update(headers)
    return response


def _api_endpoint(handler: Handler, validator: OpenAPIRequestValidator | None) -> Any:
    async def endpoint(request: Request) -> Response:
        state: MailchimpState = request.app.state.mailchimp
        key = _api_key(request)
        if key is None or key not in state.api_keys:
            return problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        bucket = hashlib.sha256(key.encode()).hexdigest()
        state.active[bucket] += 1
        try:
            in_flight = state.active[bucket]
            state.max_concurrency = max(state.max_concurrency, in_flight)
            if in_flight > state.max_connections:
                state.concurrency_rejections += 1
                return problem(
                    429,
                    "Too Many Requests",
                    f"You have exceeded the limit of {state.max_connections} simultaneous "
                    f"connections.",
                )
            route = request.scope.get("route")
            state.request_counts[
                f"{request.method} {getattr(route, 'path', request.url.path)}"
            ] += 1
            fault = state.take_fault(request.method, request.url.path)
            raw = await request.body()
            if state.validate_spec and validator is not None:
                violations = validator.validate(
                    request.method,
                    request.url.path,
                    request.url.query,
                    request.headers,
                    raw,
                    request.headers.get("content-type"),
                )
                if violations:
                    state.spec_violations.extend(violations)
                    logger.warning("mailchimp_emulator.spec_violation %s", violations)
                    return problem(
                        400,
                        "Invalid Resource",
                        "The request does not conform to the Mailchimp API specification.",
                        [{"field": "", "message": v} for v in violations],
                    )
            await state.pause()
            if fault is not None:
                return _fault_response(fault)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return problem(
                    400, "JSON Parse Exception", "We encountered an unspecified JSON parsing error."
                )
            try:
                return await handler(state, request, body)
            except ApiError as exc:
                return problem(exc.status, exc.title, exc.detail, exc.errors)
        finally:
            state.active[bucket] -= 1

    return endpoint


# ---------------------------------------------------------------------------------------------
# Control API
# ---------------------------------------------------------------------------------------------


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    return data if isinstance(data, dict) else {}


def _control_routes() -> list[Route]:
    def state_of(request: Request) -> MailchimpState:
        return request.app.state.mailchimp  # type: ignore[no-any-return]

    async def stats(request: Request) -> Response:
        return JSONResponse(state_of(request).stats())

    async def reset_stats(request: Request) -> Response:
        state = state_of(request)
        state.request_counts.clear()
        state.spec_violations.clear()
        state.max_concurrency = 0
        state.concurrency_rejections = 0
        return JSONResponse(state.stats())

    async def add_key(request: Request) -> Response:
        state_of(request).api_keys.add((await _json(request))["api_key"])
        return Response(status_code=204)

    async def config(request: Request) -> Response:
        state = state_of(request)
        data = await _json(request)
        for name in (
            "latency_s",
            "latency_per_item_s",
            "max_connections",
            "max_lists",
            "validate_spec",
        ):
            if name in data:
                setattr(state, name, data[name])
        return Response(status_code=204)

    async def add_fault(request: Request) -> Response:
        state_of(request).faults.append(Fault(**await _json(request)))
        return Response(status_code=204)

    async def add_list(request: Request) -> Response:
        data = await _json(request)
        lst = state_of(request).create_list(data["name"], data.get("id"))
        return JSONResponse(list_json(lst))

    async def add_members(request: Request) -> Response:
        state = state_of(request)
        list_id = request.path_params["list_id"]
        for item in (await _json(request))["members"]:
            state.seed_member(
                list_id,
                item["email"],
                status=item.get("status", "subscribed"),
                merge_fields=item.get("merge_fields"),
                tags=item.get("tags", ()),
                self_unsubscribed=bool(item.get("self_unsubscribed", False)),
            )
        return Response(status_code=204)

    async def members(request: Request) -> Response:
        state = state_of(request)
        lst = state.lists.get(request.path_params["list_id"])
        if lst is None:
            return JSONResponse({"detail": "no such list"}, status_code=404)
        email = request.query_params.get("email")
        chosen = (
            [lst.members[subscriber_hash(email)]]
            if email and subscriber_hash(email) in lst.members
            else ([] if email else list(lst.members.values()))
        )
        return JSONResponse(
            {
                "members": [
                    {
                        "email": m.email,
                        "status": m.status,
                        "merge_fields": m.merge_fields,
                        "tags": list(m.tags),
                    }
                    for m in chosen
                ]
            }
        )

    async def lists(request: Request) -> Response:
        state = state_of(request)
        return JSONResponse(
            {
                "lists": [
                    {
                        **list_json(lst),
                        "webhooks": list(lst.webhooks.values()),
                        "merge_fields": [f["tag"] for f in lst.merge_fields],
                    }
                    for lst in state.lists.values()
                ]
            }
        )

    async def block(request: Request) -> Response:
        state = state_of(request)
        kind = request.path_params["kind"]
        target = {
            "compliance": state.compliance_emails,
            "segment": state.segment_rejected_emails,
        }.get(kind, state.forgotten_emails)
        target.update(e.lower() for e in (await _json(request))["emails"])
        return Response(status_code=204)

    return [
        Route("/_control/stats", stats, methods=["GET"]),
        Route("/_control/stats/reset", reset_stats, methods=["POST"]),
        Route("/_control/api-keys", add_key, methods=["POST"]),
        Route("/_control/config", config, methods=["POST", "PATCH"]),
        Route("/_control/faults", add_fault, methods=["POST"]),
        Route("/_control/lists", lists, methods=["GET"]),
        Route("/_control/lists", add_list, methods=["POST"]),
        Route("/_control/lists/{list_id}/members", members, methods=["GET"]),
        Route("/_control/lists/{list_id}/members", add_members, methods=["POST"]),
        Route("/_control/blocked/{kind:str}", block, methods=["POST"]),
    ]


def create_app(state: MailchimpState | None = None) -> Starlette:
    state = state or MailchimpState()
    validator = (
        OpenAPIRequestValidator(SPEC_PATH, server_prefix="/3.0") if SPEC_PATH.exists() else None
    )
    if validator is None:
        logger.warning("mailchimp_emulator.no_spec %s: requests are not validated", SPEC_PATH)
    member = "/3.0/lists/{list_id}/members/{subscriber_hash}"
    api: list[tuple[str, str, Handler]] = [
        ("/3.0/ping", "GET", ping),
        ("/3.0/", "GET", root),
        ("/3.0/lists", "GET", get_lists),
        ("/3.0/lists", "POST", create_list),
        ("/3.0/lists/{list_id}", "GET", get_list),
        ("/3.0/lists/{list_id}", "PATCH", patch_list),
        ("/3.0/lists/{list_id}", "POST", batch_subscribe),
        ("/3.0/lists/{list_id}/merge-fields", "GET", get_merge_fields),
        ("/3.0/lists/{list_id}/merge-fields", "POST", create_merge_field),
        ("/3.0/lists/{list_id}/members", "GET", get_members),
        ("/3.0/lists/{list_id}/members", "POST", create_member),
        (member, "GET", get_member),
        (member, "PUT", put_member),
        (member, "PATCH", patch_member),
        (member, "DELETE", archive_member),
        (member + "/actions/delete-permanent", "POST", delete_permanent),
        (member + "/tags", "GET", get_member_tags),
        (member + "/tags", "POST", post_member_tags),
        ("/3.0/lists/{list_id}/segments", "GET", get_segments),
        ("/3.0/lists/{list_id}/segments", "POST", create_segment),
        ("/3.0/lists/{list_id}/segments/{segment_id}", "GET", get_segment),
        ("/3.0/lists/{list_id}/segments/{segment_id}", "POST", update_segment_members),
        ("/3.0/lists/{list_id}/webhooks", "GET", get_webhooks),
        ("/3.0/lists/{list_id}/webhooks", "POST", create_webhook),
        ("/3.0/lists/{list_id}/webhooks/{webhook_id}", "GET", get_webhook),
        ("/3.0/lists/{list_id}/webhooks/{webhook_id}", "PATCH", patch_webhook),
        ("/3.0/lists/{list_id}/webhooks/{webhook_id}", "DELETE", delete_webhook),
        ("/3.0/reports/{campaign_id}/sent-to", "GET", get_sent_to),
    ]
    routes = [Route(path, _api_endpoint(h, validator), methods=[m]) for path, m, h in api]
    routes.append(Route("/3.0", _api_endpoint(root, validator), methods=["GET"]))
    app = Starlette(routes=[*routes, *_control_routes()])
    app.state.mailchimp = state
    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Mailchimp Marketing API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--api-key", action="append", default=[], help="accepted key (repeat)")
    parser.add_argument("--latency", type=float, default=0.0, help="fixed seconds per request")
    parser.add_argument("--latency-per-item", type=float, default=0.0)
    parser.add_argument("--max-lists", type=int, default=None, help="1 emulates the free plan")
    args = parser.parse_args(argv)
    state = MailchimpState(
        latency_s=args.latency, latency_per_item_s=args.latency_per_item, max_lists=args.max_lists
    )
    if args.api_key:
        state.api_keys = set(args.api_key)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
