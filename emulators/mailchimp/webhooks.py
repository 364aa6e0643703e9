"""Mailchimp: list webhooks; a new URL is checked with a GET, as Mailchimp does."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.mailchimp.common import (
    ApiError,
    find_list,
    not_found,
    shaped,
)
from emulators.mailchimp.state import (
    MailchimpAccount,
    MailchimpList,
    MailchimpState,
)


def _webhook(lst: MailchimpList, request: Request) -> dict[str, Any]:
    hook = lst.webhooks.get(request.path_params["webhook_id"])
    if hook is None:
        raise not_found()
    return hook


async def get_webhooks(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    hooks = list(lst.webhooks.values())
    return shaped(request, {"webhooks": hooks, "list_id": lst.id, "total_items": len(hooks)})


async def create_webhook(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
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


async def get_webhook(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    return shaped(request, _webhook(find_list(state, account, request), request))


async def patch_webhook(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    hook = _webhook(find_list(state, account, request), request)
    for section in ("events", "sources"):
        hook[section].update({k: bool(v) for k, v in (body.get(section) or {}).items()})
    if body.get("url"):
        hook["url"] = body["url"]
    return JSONResponse(hook)


async def delete_webhook(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    _webhook(lst, request)
    del lst.webhooks[request.path_params["webhook_id"]]
    return Response(status_code=204)
