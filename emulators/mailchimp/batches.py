"""Mailchimp: batch subscribe (`POST /lists/{id}`), up to 500 members with per-member errors."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.mailchimp.common import (
    ApiError,
    find_list,
    member_json,
)
from emulators.mailchimp.members import check_merge_fields, new_member_checks, set_status
from emulators.mailchimp.state import (
    BATCH_LIMIT,
    MailchimpAccount,
    MailchimpState,
    now,
    subscriber_hash,
)


async def batch_subscribe(
    state: MailchimpState, account: MailchimpAccount, request: Request, body: Any
) -> Response:
    lst = find_list(state, account, request)
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
        state.batch_writes[email.lower()] += 1
        try:
            if key in seen:
                raise ApiError(400, "Invalid Resource", f"{email} appears more than once.")
            seen.add(key)
            check_merge_fields(lst, item.get("merge_fields"))
            member = lst.members.get(key)
            status = item.get("status")
            if member is None:
                if status is None:
                    raise ApiError(400, "Invalid Resource", "The status field is required.")
                new_member_checks(state, lst, email, status)
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
                set_status(state, lst, member, status)
                lst.version += 1
            member.merge_fields.update(item.get("merge_fields") or {})
            member.last_changed = now()
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
