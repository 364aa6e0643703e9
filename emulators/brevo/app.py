"""The Brevo emulator's app: the request pipeline of emulators._kit in Brevo's order (count,
spec, key, faults, the /contacts rate limit, JSON, latency), the route table and `main`."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators import _kit
from emulators.brevo import contacts, imports, lists, webhooks
from emulators.brevo.common import Handler, error
from emulators.brevo.control import control
from emulators.brevo.state import Account, BrevoConfig, BrevoState, Fault

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/account", lists.account_get),
    ("GET", "/contacts/folders", lists.folders_get),
    ("POST", "/contacts/folders", lists.folders_post),
    ("GET", "/contacts/lists", lists.lists_get),
    ("POST", "/contacts/lists", lists.lists_post),
    ("GET", "/contacts/lists/{listId}", lists.list_get),
    ("GET", "/contacts/lists/{listId}/contacts", lists.list_contacts),
    ("POST", "/contacts/lists/{listId}/contacts/add", lists.list_add),
    ("POST", "/contacts/lists/{listId}/contacts/remove", lists.list_remove),
    ("GET", "/contacts/attributes", contacts.attributes_get),
    ("POST", "/contacts/attributes/{attributeCategory}/{attributeName}", contacts.attribute_post),
    ("POST", "/contacts/import", imports.import_post),
    ("POST", "/contacts/batch", contacts.batch_post),
    ("GET", "/contacts", contacts.contacts_get),
    ("POST", "/contacts", contacts.contacts_post),
    ("GET", "/contacts", contacts.contacts_get),
    ("GET", "/contacts/{identifier}", contacts.contact_get),
    ("PUT", "/contacts/{identifier}", contacts.contact_put),
    ("DELETE", "/contacts/{identifier}", contacts.contact_delete),
    ("GET", "/processes/{processId}", imports.process_get),
    ("GET", "/webhooks", webhooks.webhooks_get),
    ("POST", "/webhooks", webhooks.webhooks_post),
    ("GET", "/webhooks/{webhookId}", webhooks.webhook_get),
    ("PUT", "/webhooks/{webhookId}", webhooks.webhook_put),
    ("DELETE", "/webhooks/{webhookId}", webhooks.webhook_delete),
]
_COMPILED = [
    (method, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", tpl) + "$"), tpl, handler)
    for method, tpl, handler in ROUTES
]


def _rate_limited(state: BrevoState, account: Account) -> Response | None:
    limit = state.config.contacts_rps
    if limit <= 0:
        return None
    now = time.monotonic()
    window = account.window
    while window and now - window[0] >= 1.0:
        window.popleft()
    if len(window) >= limit:
        state.rate_limited += 1
        reset = max(0.0, 1.0 - (now - window[0]))
        return error(
            429,
            "too_many_requests",
            "Too many requests",
            **{
                "x-sib-ratelimit-limit": str(limit),
                "x-sib-ratelimit-remaining": "0",
                "x-sib-ratelimit-reset": f"{reset:.3f}",
            },
        )
    window.append(now)
    return None


def _items_in(body: Any) -> int:
    if isinstance(body, dict):
        for key in ("jsonBody", "contacts", "emails"):
            if isinstance(body.get(key), list):
                return len(body[key])
    return 1


def _path(call: _kit.Call) -> str:
    return call.path.removeprefix("/v3")


async def _log(call: _kit.Call) -> None:
    call.state.request_log.append((time.monotonic(), call.method, _path(call)))


def _nonconforming(problems: list[str]) -> Response:
    return error(400, "invalid_parameter", "; ".join(problems)[:1000])


def _account(call: _kit.Call) -> Account | Response:
    account: Account | None = call.state.accounts.get(call.request.headers.get("api-key", ""))
    if account is not None:
        return account
    if "api-key" not in call.request.headers:
        return error(401, "unauthorized", "authentication not found in headers")
    return error(401, "unauthorized", "Key not found")


def _fault_matches(fault: Fault, call: _kit.Call) -> bool:
    return _path(call).startswith(fault.path_prefix) and fault.method in (None, call.method)


async def _fault_response(fault: Fault) -> Response:
    body = fault.body or {"code": "internal_error", "message": "Injected fault"}
    return JSONResponse(body, status_code=fault.status, headers=fault.headers)


async def _contacts_rate(call: _kit.Call) -> Response | None:
    if not _path(call).startswith("/contacts"):
        return None
    return _rate_limited(call.state, call.principal)


def _latency(call: _kit.Call) -> float:
    config: BrevoConfig = call.state.config
    return config.latency + config.latency_per_item * _items_in(call.body)


PIPELINE = _kit.Pipeline(
    "brevo",
    [
        _kit.read_body,
        _kit.count(lambda call: f"{call.method} {_path(call)}"),
        _log,
        _kit.check_spec(lambda call: call.state.validator, lambda s: s.violations, _nonconforming),
        _kit.authenticate(_account),
        *_kit.inject_fault(_fault_matches, _fault_response),
        _contacts_rate,
        _kit.parse_json(empty=dict),
        _kit.pause(_latency),
    ],
)


async def _dispatch(call: _kit.Call) -> Response:
    path = _path(call)
    for method, pattern, _tpl, handler in _COMPILED:
        found = pattern.match(path)
        if found and method == call.method:
            params = {k: unquote(v) for k, v in found.groupdict().items()}
            return await handler(call.state, call.principal, call.request, params, call.body)
    return error(405, "method_not_allowed", "Not emulated")


def create_app(state: BrevoState | None = None) -> Starlette:
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    routes = [Route("/v3/{path:path}", PIPELINE.endpoint(_dispatch), methods=methods)]
    return _kit.build_app("brevo", state or BrevoState(), routes, control)


def main(argv: list[str] | None = None) -> None:
    parser = _kit.parser("brevo", "Brevo API v3 emulator", 8025)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    state = BrevoState(BrevoConfig(latency=args.latency))
    state.add_account("test-key-de", "de")
    state.add_account("test-key-en", "en")
    _kit.run(create_app(state), args)
