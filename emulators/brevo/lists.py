"""Brevo: the account, contact folders, lists and list membership."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.brevo.common import error, not_found, page
from emulators.brevo.state import (
    Account,
    BrevoState,
    changed_since,
    link,
    now,
    unlink,
)


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


async def folders_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    items = [
        {"id": i, "name": n, "totalBlacklisted": 0, "totalSubscribers": 0, "uniqueSubscribers": 0}
        for i, n in acc.folders.items()
    ]
    return JSONResponse({"folders": page(req, items, 10), "count": len(items)})


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
    return JSONResponse({"lists": page(req, items, 10), "count": len(items)})


async def lists_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    if int(b["folderId"]) not in acc.folders:
        return error(400, "invalid_parameter", "Folder ID does not exist")
    list_id = state.next_id()
    acc.lists[list_id] = {"name": b["name"], "folderId": int(b["folderId"]), "createdAt": now()}
    acc.members[list_id] = {}
    return JSONResponse({"id": list_id}, status_code=201)


async def list_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    list_id = int(p["listId"])
    if list_id not in acc.lists:
        return not_found("List ID")
    return JSONResponse(_list_api(acc, list_id))


async def list_contacts(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    list_id = int(p["listId"])
    if list_id not in acc.lists:
        return not_found("List ID")
    found = [acc.by_id[cid] for cid in acc.members.get(list_id, {})]
    found = changed_since(found, req.query_params)
    chosen = [contact.to_api() for contact in page(req, found, 50)]
    return JSONResponse({"contacts": chosen, "count": len(found)})


async def list_add(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    list_id = int(p["listId"])
    if list_id not in acc.lists:
        return not_found("List ID")
    success, failure = [], []
    for email in b.get("emails", []):
        contact = acc.contacts.get(email.lower())
        if contact is None or list_id in contact.list_ids:
            failure.append(email)
        else:
            link(acc, contact, list_id)
            success.append(email)
    return JSONResponse({"contacts": {"success": success, "failure": failure}}, status_code=201)


async def list_remove(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    list_id = int(p["listId"])
    if list_id not in acc.lists:
        return not_found("List ID")
    success = []
    for email in b.get("emails", []):
        contact = acc.contacts.get(email.lower())
        if contact is not None and list_id in contact.list_ids:
            unlink(acc, contact, list_id)
            success.append(email)
    if not success:
        return error(
            400, "invalid_parameter", "Contact already removed from list and/or does not exist"
        )
    return JSONResponse({"contacts": {"success": success, "failure": []}}, status_code=201)
