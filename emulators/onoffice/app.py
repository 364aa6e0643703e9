"""The onOffice emulator's app: one endpoint (`/api/stable/api.php` and `/api/latest/api.php`)
behind the request pipeline of emulators._kit in onOffice's order (record, latency, HTTP
faults, the envelope's token), then the actions one by one; and `main`."""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators import _kit
from emulators.onoffice.actions import run_action
from emulators.onoffice.control import control
from emulators.onoffice.envelope import top_error
from emulators.onoffice.state import (
    DEFAULT_SECRET,
    DEFAULT_TOKEN,
    LOGGED_KEYS,
    Fault,
    OnOfficeState,
    ReadHook,
)
from emulators.onoffice_data import generate_address_book


def _actions(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("request"), dict):
        return body["request"].get("actions") or []
    return []


def _is_change_read(action: Any) -> bool:
    if not isinstance(action, dict) or not str(action.get("actionid", "")).endswith(":read"):
        return False
    criteria = (action.get("parameters") or {}).get("filter")
    return isinstance(criteria, dict) and "Aenderung" in criteria


async def _record(call: _kit.Call) -> None:
    """Count the request, parse it (malformed JSON is answered in-band later) and keep what it
    asked for: the recent actions and, per token, when it read by modification time."""
    state: OnOfficeState = call.state
    state.http_requests += 1
    try:
        call.body = json.loads(call.raw)
    except ValueError:
        call.body = None
    actions = _actions(call.body)
    kinds = {
        f"{str(a.get('actionid', '')).rsplit(':', 1)[-1]}:{a.get('resourcetype')}"
        for a in actions
        if isinstance(a, dict)
    }
    state.request_kinds["+".join(sorted(kinds)) or "none"] += 1
    if state.in_flight == 0:
        state.busy_since = time.monotonic()
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    call.cleanup.append(lambda: _done(state))
    state.recent_requests.append(
        {
            "at": time.time(),
            "actions": [{k: a.get(k) for k in LOGGED_KEYS} for a in actions if isinstance(a, dict)],
        }
    )
    if isinstance(call.body, dict) and any(_is_change_read(a) for a in actions):
        reader = str(call.body.get("token"))
        state.change_reads.setdefault(reader, deque(maxlen=200)).append(time.time())


def _done(state: OnOfficeState) -> None:
    state.in_flight -= 1
    if state.in_flight == 0:
        state.busy_s += time.monotonic() - state.busy_since


async def _fault_response(fault: Fault) -> Response:
    if fault.kind == "hang":
        await _kit.sleep_for(fault.seconds)
    return JSONResponse({"error": "injected fault"}, status_code=fault.status)


def _customer(call: _kit.Call) -> Any:
    """The API user the envelope names, or the top-level error onOffice answers."""
    body = call.body
    if not isinstance(body, dict):
        return top_error(4, "Malformed JSON")
    token = body.get("token")
    if not token or not isinstance(token, str):
        return top_error(13, "Missing element: token")
    customer = call.state.customers.get(token)
    if customer is None:
        return top_error(22, "Not authenticated")
    if not customer.active:
        return top_error(42, "Customer inactive")
    if not customer.ip_allowed:
        return top_error(158, "Access from this IP not allowed")
    if not isinstance(body.get("request"), dict):
        return top_error(14, "Missing element: request")
    actions = _actions(body)
    if not isinstance(actions, list) or not actions:
        return top_error(15, "Missing element: actions")
    return customer


PIPELINE = _kit.Pipeline(
    "onoffice",
    [
        _kit.read_body,
        _record,
        _kit.pause(lambda call: call.state.latency),
        *_kit.inject_fault(lambda fault, call: fault.kind in ("http", "hang"), _fault_response),
        _kit.authenticate(_customer),
    ],
)


def _take_read_hook(state: OnOfficeState, actions: list[Any], when: str) -> ReadHook | None:
    """The first armed hook for a filtered address read of this request (removed: once)."""
    for hook in state.read_hooks:
        if hook.when != when:
            continue
        for action in actions:
            if not isinstance(action, dict) or action.get("resourcetype") != "address":
                continue
            params = action.get("parameters") or {}
            if (
                str(action.get("actionid", "")).endswith(":read")
                and isinstance(params.get("filter"), dict)
                and hook.field in params["filter"]
                and str(params.get("listoffset", 0)) == str(hook.listoffset)
            ):
                state.read_hooks.remove(hook)
                state.seed(hook.addresses, replace=False)
                state.read_hooks_fired += 1
                return hook
    return None


async def _run_actions(call: _kit.Call) -> Response:
    state: OnOfficeState = call.state
    actions = _actions(call.body)
    before = _take_read_hook(state, actions, "before")
    results = [run_action(state, call.principal, action) for action in actions]
    after = _take_read_hook(state, actions, "after")
    for hook in (before, after):
        if hook is not None and hook.hold_seconds:
            await _kit.sleep_for(hook.hold_seconds)
    asked = [
        (str(a.get("actionid", "")).rsplit(":", 1)[-1], a.get("resourcetype"))
        for a in actions
        if isinstance(a, dict)
    ]
    lost = _kit.take_fault(
        state.faults,
        lambda f: (
            f.kind == "lost"
            and any(
                f.resourcetype in (None, kind) and f.verb in (None, verb) for verb, kind in asked
            )
        ),
    )
    if lost is not None:  # applied, but the answer never reaches the client
        await _kit.sleep_for(lost.seconds)
        return JSONResponse(
            {"error": "injected fault after the actions ran"}, status_code=lost.status
        )
    failed = any(r["status"]["errorcode"] for r in results)
    code = state.settings.action_error_code if failed else 0
    return JSONResponse(
        {
            "status": {
                "code": 200,
                "errorcode": code,
                "message": "Error in action" if code else "OK",
            },
            "response": {"results": results},
        }
    )


def create_app(state: OnOfficeState | None = None) -> Starlette:
    endpoint = PIPELINE.endpoint(_run_actions)
    routes = [
        Route("/api/stable/api.php", endpoint, methods=["POST"]),
        Route("/api/latest/api.php", endpoint, methods=["POST"]),
    ]
    return _kit.build_app("onoffice", state or OnOfficeState(), routes, control)


def main(argv: list[str] | None = None) -> None:
    parser = _kit.parser("onoffice", "onOffice API emulator", 8081)
    parser.add_argument("--seed-addresses", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    state = OnOfficeState()
    if args.seed_addresses:
        state.seed(generate_address_book(args.seed_addresses, args.seed))
    print(f"onOffice emulator: token={DEFAULT_TOKEN} secret={DEFAULT_SECRET}", flush=True)
    _kit.run(create_app(state), args)
