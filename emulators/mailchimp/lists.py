"""Mailchimp: ping, the account root, lists (audiences), merge fields and campaign reports."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.mailchimp.common import (
    ApiError,
    find_list,
    list_json,
    not_found,
    page_args,
    shaped,
)
from emulators.mailchimp.state import (
    MailchimpAccount,
    MailchimpState,
    subscriber_hash,
)


async def ping(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    return JSONResponse({"health_status": "Everything's Chimpy!"})


async def root(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    total = sum(len(lst.members) for lst in state.lists_of(account))
    return shaped(request, {**account.info, "total_subscribers": total})


async def get_lists(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    count, offset = page_args(request)
    lists = state.lists_of(account)
    items = [list_json(lst) for lst in lists[offset : offset + count]]
    return shaped(request, {"lists": items, "total_items": len(lists)})


async def create_list(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    if state.max_lists is not None and len(state.lists_of(account)) >= state.max_lists:
        raise ApiError(
            403, "User action not permitted", "User does not have access to the requested operation"
        )
    lst = state.create_list(body["name"], account_id=account.id)
    lst.body = {k: v for k, v in body.items() if k != "name"}
    return JSONResponse(list_json(lst))


async def get_list(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    return shaped(request, list_json(find_list(state, account, request)))


async def patch_list(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    lst.name = body.get("name", lst.name)
    lst.body.update({k: v for k, v in body.items() if k != "name"})
    return JSONResponse(list_json(lst))


async def get_merge_fields(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    count, offset = page_args(request)
    items = lst.merge_fields[offset : offset + count]
    return shaped(
        request, {"merge_fields": items, "list_id": lst.id, "total_items": len(lst.merge_fields)}
    )


async def create_merge_field(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
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


async def get_sent_to(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    campaign_id = request.path_params["campaign_id"]
    list_id, emails = state.campaign_recipients.get(campaign_id, ("", []))
    lst = state.lists.get(list_id)
    if lst is None or lst.account_id != account.id:  # campaigns are the account's
        raise not_found()
    count, offset = page_args(request)
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
