"""What every Mailchimp resource module uses: problem+json errors, `fields`/`exclude_fields`
filtering, paging, the member and list representations and the path lookups."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.mailchimp.state import (
    ERROR_DOC,
    PAGE_LIMIT,
    MailchimpAccount,
    MailchimpList,
    MailchimpState,
    Member,
    subscriber_hash,
)

Handler = Callable[[MailchimpState, MailchimpAccount, Request, Any], Awaitable[Response]]
"""An API handler: (state, the caller's account, request, parsed body) -> Response; it raises
ApiError for problems."""


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


def not_found() -> ApiError:
    return ApiError(404, "Resource Not Found", "The requested resource could not be found.")


def compliance_error(email: str) -> ApiError:
    return ApiError(
        400,
        "Member In Compliance State",
        f"{email} is in a compliance state due to unsubscribe, bounce, or compliance review "
        f"and cannot be subscribed.",
    )


def forgotten_error(email: str) -> ApiError:
    return ApiError(
        400,
        "Forgotten Email Not Subscribed",
        f"{email} was permanently deleted and cannot be re-imported. The contact must "
        f"re-subscribe to get back on the list.",
    )


def invalid_email_error(email: str) -> ApiError:
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


def page_args(request: Request) -> tuple[int, int]:
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
# Path lookups
# ---------------------------------------------------------------------------------------------


def find_list(state: MailchimpState, account: MailchimpAccount, request: Request) -> MailchimpList:
    """The path's list if it is the caller's account's (another account's list: 404)."""
    lst = state.lists.get(request.path_params["list_id"])
    if lst is None or lst.account_id != account.id:
        raise not_found()
    return lst


def find_member(lst: MailchimpList, request: Request) -> Member:
    member = lst.members.get(resolve_hash(request.path_params["subscriber_hash"]))
    if member is None:
        raise not_found()
    return member


def resolve_hash(value: str) -> str:
    # The API also accepts the email address itself in place of the hash.
    return subscriber_hash(value) if "@" in value else value.lower()
