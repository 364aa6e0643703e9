"""Brevo: contact imports (`POST /contacts/import`, applied at once, reported `in_process`
until `import_delay` has passed, then `notifyUrl` is called) and their processes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.brevo.common import error
from emulators.brevo.state import (
    EMAIL,
    Account,
    BrevoState,
    create_contact,
    link,
    now,
    set_attributes,
)


async def import_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    rows = b.get("jsonBody")
    if rows is None:
        return error(400, "invalid_parameter", "Only jsonBody imports are emulated")
    list_ids = [i for i in b.get("listIds") or [] if i in acc.lists]
    if not list_ids:
        return error(400, "invalid_parameter", "listIds are invalid")
    update_existing = b.get("updateExistingContacts", True)
    invalid = 0
    for row in rows:
        email = str(row.get("email", "")).lower()
        if not EMAIL.match(email):
            invalid += 1
            continue
        contact = acc.contacts.get(email)
        if contact is not None and not update_existing:
            continue
        if contact is None:
            contact = create_contact(state, acc, email)
        attributes = {
            k: v
            for k, v in (row.get("attributes") or {}).items()
            if v not in ("", None) or b.get("emptyContactsAttributes")
        }
        set_attributes(acc, contact, attributes)
        if b.get("emailBlacklist"):
            contact.blacklisted = True
        for list_id in list_ids:
            link(acc, contact, list_id)
        contact.modified_at = now()
    process_id = state.next_id()
    acc.processes[process_id] = {
        "id": process_id,
        "name": "IMPORTUSER",
        "invalid_emails": invalid,
        "done_at": time.monotonic() + state.config.import_delay,
    }
    if b.get("notifyUrl"):
        # Brevo calls the notify URL once the process is finished (a POST; the receiver
        # treats it as a trigger only and reads the process).
        task = asyncio.create_task(_notify(str(b["notifyUrl"]), process_id, state))
        _NOTIFY_TASKS.add(task)
        task.add_done_callback(_NOTIFY_TASKS.discard)
    return JSONResponse({"processId": process_id}, status_code=202)


_NOTIFY_TASKS: set[asyncio.Task[None]] = set()


async def _notify(url: str, process_id: int, state: BrevoState) -> None:
    await asyncio.sleep(state.config.import_delay)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await client.post(url, json={"processId": process_id, "status": "completed"})
    except httpx.HTTPError:
        pass  # like Brevo: a notification that cannot be delivered is dropped


async def process_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    process = acc.processes.get(int(p["processId"]))
    if process is None:
        return error(404, "invalid_parameter", "processId is invalid")
    done = time.monotonic() >= process["done_at"]
    return JSONResponse(
        {
            "id": process["id"],
            "name": process["name"],
            "status": "completed" if done else "in_process",
        }
    )
