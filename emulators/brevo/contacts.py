"""Brevo: contacts (create or upsert, read, update incl. a new address, delete), contact
attributes and batch updates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.brevo.common import error, not_found, page
from emulators.brevo.state import (
    EMAIL,
    Account,
    BrevoState,
    Contact,
    create_contact,
    find_contact,
    link,
    now,
    set_attributes,
    set_blacklist,
    unlink,
)


async def contacts_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    email = str(b.get("email", "")).lower()
    if not email:
        return error(
            400, "missing_parameter", "Please provide Email or SMS attribute value to create user"
        )
    if not EMAIL.match(email):
        return error(400, "invalid_parameter", "Invalid email address")
    contact = acc.contacts.get(email)
    created = contact is None
    if contact is None:
        contact = create_contact(state, acc, email)
    elif not b.get("updateEnabled"):
        return _duplicate("create")
    elif state.config.upsert_replaces_lists and "listIds" in b:
        for list_id in list(contact.list_ids):
            unlink(acc, contact, list_id)
    _apply_update(state, acc, contact, b)
    if created:
        return JSONResponse({"id": contact.id}, status_code=201)
    return Response(status_code=204)


def _duplicate(action: str) -> Response:
    return JSONResponse(
        {
            "code": "duplicate_parameter",
            "message": f"Unable to {action} contact, "
            "email is already associated with another Contact",
            "metadata": {"duplicate_identifiers": ["email"]},
        },
        status_code=400,
    )


def _apply_update(state: BrevoState, acc: Account, contact: Contact, b: dict[str, Any]) -> None:
    set_attributes(acc, contact, b.get("attributes") or {})
    set_blacklist(state, contact, b.get("emailBlacklisted"))
    for list_id in b.get("listIds") or []:
        if list_id in acc.lists:
            link(acc, contact, list_id)
    for list_id in b.get("unlinkListIds") or []:
        unlink(acc, contact, list_id)
    contact.modified_at = now()


def modified_since(req: Request, contacts: list[Contact]) -> list[Contact] | Response:
    """`modifiedSince` (ISO date-time; a list touch counts as a modification at Brevo)."""
    raw = req.query_params.get("modifiedSince")
    if not raw:
        return contacts
    try:
        floor = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return error(400, "invalid_parameter", "modifiedSince is not a valid date-time")
    return [
        c for c in contacts if datetime.fromisoformat(c.modified_at.replace("Z", "+00:00")) >= floor
    ]


async def contacts_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    """All contacts of the account (getContacts): `limit` ≤ 1000, `offset`, `sort` (by
    creation), `modifiedSince`, `listIds` (comma-separated)."""
    chosen: list[Contact] | Response = list(acc.by_id.values())
    wanted = {int(x) for x in req.query_params.get("listIds", "").split(",") if x.strip()}
    if wanted:
        chosen = [c for c in chosen if c.list_ids & wanted]
    chosen = modified_since(req, chosen)
    if isinstance(chosen, Response):
        return chosen
    items = [c.to_api() for c in page(req, chosen, 50)]
    return JSONResponse({"contacts": items, "count": len(chosen)})


async def contact_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    contact = find_contact(acc, p["identifier"], req.query_params.get("identifierType"))
    if contact is None:
        return not_found("Contact")
    return JSONResponse({**contact.to_api(), "statistics": {}})


async def contact_put(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    contact = find_contact(acc, p["identifier"], req.query_params.get("identifierType"))
    if contact is None:
        return not_found("Contact")
    new_email = str((b.get("attributes") or {}).get("EMAIL", "")).lower()
    if new_email and new_email != contact.email:
        if new_email in acc.contacts:
            return _duplicate("update")
        del acc.contacts[contact.email]
        contact.email = new_email
        acc.contacts[new_email] = contact
    _apply_update(state, acc, contact, b)
    return Response(status_code=204)


async def contact_delete(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    contact = find_contact(acc, p["identifier"], req.query_params.get("identifierType"))
    if contact is None:
        return not_found("Contact")
    if contact.email == acc.email:
        return error(405, "method_not_allowed", "The account owner cannot be deleted")
    for list_id in list(contact.list_ids):
        unlink(acc, contact, list_id)
    del acc.contacts[contact.email], acc.by_id[contact.id]
    return Response(status_code=204)


async def attributes_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    return JSONResponse({"attributes": list(acc.attributes.values())})


async def attribute_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    name = p["attributeName"].upper()
    if name in acc.attributes:
        return error(400, "duplicate_parameter", "Attribute name must be unique")
    acc.attributes[name] = {
        "name": name,
        "category": p["attributeCategory"],
        "type": b.get("type", "text"),
    }
    return Response(status_code=201)


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
