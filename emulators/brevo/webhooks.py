"""Brevo: transactional and marketing webhooks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.brevo.common import error, not_found
from emulators.brevo.state import (
    Account,
    BrevoState,
    now,
)


async def webhooks_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    kind = req.query_params.get("type", "transactional")
    hooks = [h for h in acc.webhooks.values() if h["type"] == kind]
    return JSONResponse({"webhooks": hooks})


async def webhooks_post(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    kind = b.get("type", "transactional")
    if len(acc.webhooks) >= 40:
        return error(400, "invalid_parameter", "Maximum number of webhooks reached")
    bad = _bad_events(state, kind, b["events"])
    if bad:
        return bad
    hook_id = state.next_id()
    stamp = now()
    acc.webhooks[hook_id] = {
        "id": hook_id,
        "url": b["url"],
        "description": b.get("description", ""),
        "events": b["events"],
        "type": kind,
        "createdAt": stamp,
        "modifiedAt": stamp,
        "batched": bool(b.get("batched")),
        "auth": b.get("auth") or {},
        "headers": b.get("headers") or [],
    }
    return JSONResponse({"id": hook_id}, status_code=201)


async def webhook_get(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    hook = acc.webhooks.get(int(p["webhookId"]))
    return JSONResponse(hook) if hook else not_found("Webhook")


async def webhook_put(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    """updateWebhook: the given fields change in place (id, type and createdAt stay)."""
    hook = acc.webhooks.get(int(p["webhookId"]))
    if hook is None:
        return not_found("Webhook")
    if "events" in b:
        bad = _bad_events(state, hook["type"], b["events"])
        if bad:
            return bad
    for field in ("url", "description", "events", "batched", "auth", "headers"):
        if field in b:
            hook[field] = b[field]
    hook["modifiedAt"] = now()
    return Response(status_code=204)


def _bad_events(state: BrevoState, kind: str, events: list[str]) -> Response | None:
    if kind != "marketing":
        return None
    marketing = {
        "spam",
        "opened",
        "click",
        "hardBounce",
        "softBounce",
        "unsubscribed",
        "listAddition",
        "delivered",
    }
    if state.config.marketing_contact_events:
        marketing |= {"contactUpdated", "contactDeleted"}
    bad = [e for e in events if e not in marketing]
    if bad:
        return error(400, "invalid_parameter", f"Invalid events for marketing: {', '.join(bad)}")
    return None


async def webhook_delete(state: BrevoState, acc: Account, req: Request, p: Any, b: Any) -> Response:
    return (
        Response(status_code=204)
        if acc.webhooks.pop(int(p["webhookId"]), None)
        else (not_found("Webhook"))
    )
