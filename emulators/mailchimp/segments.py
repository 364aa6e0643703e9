"""Mailchimp: static segments. They are the tags (one store), so a tag set through one
shows through the other."""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.mailchimp.common import (
    ApiError,
    find_list,
    member_json,
    not_found,
    page_args,
    shaped,
)
from emulators.mailchimp.state import (
    BATCH_LIMIT,
    MailchimpAccount,
    MailchimpList,
    MailchimpState,
    subscriber_hash,
)


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
    raise not_found()


async def get_segments(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    count, offset = page_args(request)
    # Only tags (static segments) are emulated; saved and fuzzy segments never exist.
    kind = request.query_params.get("type")
    names = list(lst.tag_ids) if kind in (None, "", "static") else []
    counts = _segment_counts(lst)
    page = [_segment_json(lst, name, counts[name]) for name in names[offset : offset + count]]
    return shaped(request, {"segments": page, "list_id": lst.id, "total_items": len(names)})


async def create_segment(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
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


async def get_segment(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
    name = _segment_name(lst, request)
    return shaped(request, _segment_json(lst, name, _segment_counts(lst)[name]))


async def update_segment_members(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    """Batch add/remove members of a static segment, i.e. tag or untag them."""
    lst = find_list(state, account, request)
    name = _segment_name(lst, request)
    to_add, to_remove = body.get("members_to_add") or [], body.get("members_to_remove") or []
    if len(to_add) > BATCH_LIMIT or len(to_remove) > BATCH_LIMIT:
        raise ApiError(
            400,
            "Invalid Resource",
            f"You may only add or remove {BATCH_LIMIT} members of a segment at a time.",
        )
    await state.pause(len(to_add) + len(to_remove))
    refused = state.accounts[lst.account_id].segment_rejected_emails
    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for emails, adding in ((to_add, True), (to_remove, False)):
        for email in emails:
            email = str(email).strip()
            member = lst.members.get(subscriber_hash(email))
            if member is None or member.status == "archived":
                errors.setdefault("Email addresses are not list members.", []).append(email)
            elif adding and email.lower() in refused:
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
