"""The Mailchimp emulator's control API (no auth) under `/_control/`: statistics, keys and
accounts, settings, faults, lists and members to seed or read back, blocked addresses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators._kit import Control, apply_settings, fault_count, json_object
from emulators.mailchimp.common import list_json
from emulators.mailchimp.state import DEFAULT_ACCOUNT_ID, Fault, MailchimpState, subscriber_hash

control = Control("mailchimp")
_NO_CONTENT = 204


@control.route("/stats", "GET")
async def stats(state: MailchimpState, request: Request) -> Any:
    return state.stats()


@control.route("/stats/reset", "POST")
async def reset_stats(state: MailchimpState, request: Request) -> Any:
    state.request_counts.clear()
    state.batch_writes.clear()
    state.spec_violations.clear()
    state.max_concurrency = 0
    state.concurrency_rejections = 0
    return state.stats()


@control.route("/api-keys", "POST")
async def add_key(state: MailchimpState, request: Request) -> Any:
    """A key of the default account."""
    state.api_keys.add((await json_object(request))["api_key"])
    return Response(status_code=_NO_CONTENT)


@control.route("/accounts", "POST")
async def add_account(state: MailchimpState, request: Request) -> Any:
    """A key of another account: {"api_key", "account_id"?, "name"?} (the account is created
    if new); answers the account's `GET /`."""
    data = await json_object(request)
    account = state.add_account(
        data["api_key"], account_id=data.get("account_id"), name=data.get("name")
    )
    return account.info


@control.route("/config", "POST", "PATCH")
async def config(state: MailchimpState, request: Request) -> Any:
    names = ("latency_s", "latency_per_item_s", "max_connections", "max_lists", "validate_spec")
    apply_settings(state, await json_object(request), names)
    return Response(status_code=_NO_CONTENT)


@control.route("/faults", "POST")
async def add_fault(state: MailchimpState, request: Request) -> Any:
    payload = await json_object(request)
    state.faults.append(Fault(**(payload | {"count": fault_count(payload)})))
    return Response(status_code=_NO_CONTENT)


@control.route("/lists", "GET")
async def lists(state: MailchimpState, request: Request) -> Any:
    return {
        "lists": [
            {
                **list_json(lst),
                "account_id": lst.account_id,
                "webhooks": list(lst.webhooks.values()),
                "merge_fields": [f["tag"] for f in lst.merge_fields],
            }
            for lst in state.lists.values()
        ]
    }


@control.route("/lists", "POST")
async def add_list(state: MailchimpState, request: Request) -> Any:
    data = await json_object(request)
    account_id = data.get("account_id", DEFAULT_ACCOUNT_ID)
    if account_id not in state.accounts:
        return JSONResponse({"detail": "no such account"}, status_code=404)
    return list_json(state.create_list(data["name"], data.get("id"), account_id=account_id))


@control.route("/lists/{list_id}/members", "GET")
async def members(state: MailchimpState, request: Request) -> Any:
    lst = state.lists.get(request.path_params["list_id"])
    if lst is None:
        return JSONResponse({"detail": "no such list"}, status_code=404)
    email = request.query_params.get("email")
    chosen = (
        [lst.members[subscriber_hash(email)]]
        if email and subscriber_hash(email) in lst.members
        else ([] if email else list(lst.members.values()))
    )
    return {
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


@control.route("/lists/{list_id}/members", "POST")
async def add_members(state: MailchimpState, request: Request) -> Any:
    list_id = request.path_params["list_id"]
    for item in (await json_object(request))["members"]:
        state.seed_member(
            list_id,
            item["email"],
            status=item.get("status", "subscribed"),
            merge_fields=item.get("merge_fields"),
            tags=item.get("tags", ()),
            self_unsubscribed=bool(item.get("self_unsubscribed", False)),
        )
    return Response(status_code=_NO_CONTENT)


@control.route("/lists/{list_id}/members/actions", "POST")
async def member_actions(state: MailchimpState, request: Request) -> Any:
    """What people or an admin do inside Mailchimp, no webhook sent (`member_action`):
    {"action": "unsubscribe", "emails": [...], "at": "2026-01-01T00:00:00+00:00"}."""
    list_id = request.path_params["list_id"]
    if list_id not in state.lists:
        return JSONResponse({"detail": "no such list"}, status_code=404)
    data = await json_object(request)
    for email in data["emails"]:
        state.member_action(list_id, email, data["action"], at=data.get("at"))
    return Response(status_code=_NO_CONTENT)


@control.route("/blocked/{kind:str}", "POST")
async def block(state: MailchimpState, request: Request) -> Any:
    """{"emails": [...]} refused in every audience of the account `account_id` (default: the
    default account): `compliance`, `segment`, or (any other kind) `forgotten`."""
    kind = request.path_params["kind"]
    data = await json_object(request)
    account = state.accounts.get(data.get("account_id", DEFAULT_ACCOUNT_ID))
    if account is None:
        return JSONResponse({"detail": "no such account"}, status_code=404)
    target = {
        "compliance": account.compliance_emails,
        "segment": account.segment_rejected_emails,
    }.get(kind, account.forgotten_emails)
    target.update(e.lower() for e in data["emails"])
    return Response(status_code=_NO_CONTENT)
