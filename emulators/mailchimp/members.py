"""Mailchimp: list members (add, read, upsert, patch, archive, delete permanently) and
member tags, guarded the way Mailchimp guards a status (compliance, forgotten, cleaned)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.mailchimp.common import (
    ApiError,
    compliance_error,
    find_list,
    find_member,
    forgotten_error,
    invalid_email_error,
    member_json,
    not_found,
    page_args,
    resolve_hash,
    shaped,
)
from emulators.mailchimp.state import (
    MailchimpAccount,
    MailchimpList,
    MailchimpState,
    Member,
    now,
    subscriber_hash,
    valid_email,
)


def check_merge_fields(lst: MailchimpList, merge_fields: Any) -> None:
    known = {f["tag"] for f in lst.merge_fields}
    unknown = sorted(set(merge_fields or {}) - known)
    if unknown:
        raise ApiError(
            400,
            "Invalid Resource",
            "Your merge fields were invalid.",
            [{"field": tag, "message": "This merge field does not exist."} for tag in unknown],
        )


def set_status(state: MailchimpState, lst: MailchimpList, m: Member, status: str) -> None:
    """Apply a requested status the way Mailchimp guards it."""
    key = m.email.lower()
    compliance = state.accounts[lst.account_id].compliance_emails
    blocked = key in compliance or m.status == "cleaned" or m.self_unsubscribed
    if status == "subscribed" and m.status != "subscribed" and blocked:
        raise compliance_error(m.email)
    m.status = status
    if status == "subscribed":
        m.self_unsubscribed = False


def new_member_checks(state: MailchimpState, lst: MailchimpList, email: str, status: str) -> None:
    if not valid_email(email):
        raise invalid_email_error(email)
    if state.forgotten(lst, email):
        raise forgotten_error(email)
    key = email.lower()
    if status == "subscribed" and key in state.accounts[lst.account_id].compliance_emails:
        raise compliance_error(email)


async def get_members(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    count, offset = page_args(request)
    hashes = lst.view(request.query_params.get("status"))
    since = request.query_params.get("since_last_changed")
    by_change = request.query_params.get("sort_field") == "last_changed"
    if since or by_change:
        changed = {h: _changed_at(lst.members[h]) for h in hashes}
        if since:
            floor = datetime.fromisoformat(since.replace("Z", "+00:00"))
            hashes = [h for h in hashes if changed[h] >= floor]
        if by_change:  # stable, like a database's order by the time of the change
            descending = request.query_params.get("sort_dir") == "DESC"
            hashes = sorted(hashes, key=changed.__getitem__, reverse=descending)
    page = [member_json(lst, lst.members[h]) for h in hashes[offset : offset + count]]
    if since and by_change:  # the connector's confirmation reads (by the time of the change)
        state.changed_listings.append((request.query_params.get("status"), offset, len(page)))
    await state.pause(len(page))
    return shaped(request, {"members": page, "list_id": lst.id, "total_items": len(hashes)})


def _changed_at(member: Member) -> datetime:
    return datetime.fromisoformat(member.last_changed.replace("Z", "+00:00"))


async def create_member(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    email = body["email_address"].strip()
    if subscriber_hash(email) in lst.members:
        raise ApiError(
            400,
            "Member Exists",
            f"{email} is already a list member. Use PUT to insert or update list members.",
        )
    check_merge_fields(lst, body.get("merge_fields"))
    new_member_checks(state, lst, email, body["status"])
    member = state.seed_member(
        lst.id,
        email,
        status=body["status"],
        merge_fields=body.get("merge_fields"),
        tags=body.get("tags") or (),
    )
    return JSONResponse(member_json(lst, member))


async def get_member(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    return shaped(request, member_json(lst, find_member(lst, request)))


def _change_email(state: MailchimpState, lst: MailchimpList, m: Member, new_email: str) -> None:
    new_email = new_email.strip()
    if new_email.lower() == m.email.lower():
        m.email = new_email
        return
    if not valid_email(new_email):
        raise invalid_email_error(new_email)
    new_key = subscriber_hash(new_email)
    if new_key in lst.members:
        raise ApiError(
            400,
            "Member Exists",
            f"{new_email} is already a list member (in any status, including archived).",
        )
    if state.forgotten(lst, new_email):
        raise forgotten_error(new_email)
    del lst.members[m.id]
    m.email = new_email
    lst.members[new_key] = m
    lst.version += 1


async def put_member(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    key = resolve_hash(request.path_params["subscriber_hash"])
    check_merge_fields(lst, body.get("merge_fields"))
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
        new_member_checks(state, lst, email, status)
        member = state._new_member(email, status)
        lst.members[key] = member
        lst.version += 1
        member.merge_fields.update(body.get("merge_fields") or {})
        member.last_changed = now()
        return JSONResponse(member_json(lst, member))
    status = body.get("status")
    if status is None and member.status == "archived":
        status = body["status_if_new"]  # unarchiving needs a status; assume status_if_new
    return _update(state, lst, member, body, status)


async def patch_member(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    member = find_member(lst, request)
    check_merge_fields(lst, body.get("merge_fields"))
    return _update(state, lst, member, body, body.get("status"))


def _update(
    state: MailchimpState, lst: MailchimpList, member: Member, body: Any, status: str | None
) -> Response:
    """An existing member's PUT or PATCH: new address, status (if any), merge fields."""
    if body.get("email_address"):
        _change_email(state, lst, member, body["email_address"])
    if status is not None:
        set_status(state, lst, member, status)
        lst.version += 1
    member.merge_fields.update(body.get("merge_fields") or {})
    member.last_changed = now()
    return JSONResponse(member_json(lst, member))


async def archive_member(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    member = find_member(lst, request)
    if member.status == "archived":
        raise not_found()
    member.status = "archived"
    member.last_changed = now()
    lst.version += 1
    return Response(status_code=204)


async def delete_permanent(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    member = find_member(lst, request)
    del lst.members[member.id]
    lst.version += 1
    lst.forgotten.add(member.email.lower())  # this audience only (Mailchimp: "from this audience")
    return Response(status_code=204)


async def get_member_tags(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    member = find_member(lst, request)
    count, offset = page_args(request)
    tags = [
        {"id": tid, "name": name, "date_added": member.last_changed}
        for name, tid in member.tags.items()
    ]
    return shaped(request, {"tags": tags[offset : offset + count], "total_items": len(tags)})


async def post_member_tags(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    member = find_member(lst, request)
    for tag in body["tags"]:
        if tag["status"] == "active":
            member.tags.setdefault(tag["name"], state._tag_id(lst, tag["name"]))
        else:
            member.tags.pop(tag["name"], None)
    return Response(status_code=204)
