"""The Brevo emulator's control API (no auth) under `/_control/`: state, accounts, contacts
to seed or read back, behaviour settings (`BrevoConfig`) and faults."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from emulators._kit import Control, apply_settings, fault_count
from emulators.brevo.common import not_found
from emulators.brevo.state import BrevoConfig, BrevoState, Fault

control = Control("brevo")
_CREATED = {"ok": True}


@control.route("/state", "GET")
async def read_state(state: BrevoState, request: Request) -> Any:
    return {
        "request_counts": state.request_counts,
        "spec_violations": len(state.violations),
        "violations": state.violations[-50:],
        "rate_limited": state.rate_limited,
        "config": asdict(state.config),
        "accounts": {
            key: {
                "language": a.language,
                "contacts": len(a.contacts),
                "lists": {i: m["name"] for i, m in a.lists.items()},
                "webhooks": list(a.webhooks.values()),
                "attributes": list(a.attributes),
            }
            for key, a in state.accounts.items()
        },
    }


@control.route("/accounts", "POST")
async def add_account(state: BrevoState, request: Request) -> Any:
    body = await request.json()
    state.add_account(body["api_key"], body.get("language", "de"))
    return JSONResponse(_CREATED, status_code=201)


@control.route("/accounts/{key}/contacts", "GET", "POST")
async def account_contacts(state: BrevoState, request: Request) -> Any:
    account = state.accounts.get(request.path_params["key"])
    if account is None:
        return not_found("Account")
    if request.method == "POST":
        for item in await request.json():
            state.seed_contact(
                account,
                item["email"],
                attributes=item.get("attributes"),
                list_ids=item.get("listIds"),
                blacklisted=bool(item.get("emailBlacklisted")),
            )
        return JSONResponse(_CREATED, status_code=201)
    return [c.to_api() for c in account.contacts.values()]


@control.route("/accounts/{key}/contacts/{email}/action", "POST")
async def contact_action(state: BrevoState, request: Request) -> Any:
    """`{"action": "unsubscribe" | "unsubscribe_list" | "unblock" | "delete", "list_id": ..}`:
    what a person or an admin does inside Brevo (`BrevoState.contact_action`; no webhook)."""
    account = state.accounts.get(request.path_params["key"])
    if account is None:
        return not_found("Account")
    body = await request.json()
    contact = state.contact_action(
        account, request.path_params["email"], body["action"], list_id=body.get("list_id")
    )
    if contact is None:
        return not_found("Contact")
    return contact.to_api()


@control.route("/config", "POST")
async def config(state: BrevoState, request: Request) -> Any:
    apply_settings(state.config, await request.json(), [f.name for f in fields(BrevoConfig)])
    return asdict(state.config)


@control.route("/faults", "POST")
async def add_fault(state: BrevoState, request: Request) -> Any:
    body = await request.json()
    state.faults.append(
        Fault(
            method=body.get("method"),
            path_prefix=body.get("path_prefix", "/"),
            status=int(body["status"]),
            remaining=fault_count(body),
            body=body.get("body"),
            headers=body.get("headers", {}),
        )
    )
    return JSONResponse(_CREATED, status_code=201)
