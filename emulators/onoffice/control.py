"""The onOffice emulator's control API (no auth) under `/_control/`: reset, seed addresses,
read the state back, customers and their claims, parameter caches, action kinds, faults,
latency, clock offset and behaviour settings."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from starlette.requests import Request

from emulators._kit import Control, fault_count, json_object, query_flag
from emulators.onoffice.state import ALL_RIGHTS, Customer, Fault, OnOfficeState, ReadHook
from emulators.onoffice.users import group_from, user_from
from emulators.onoffice_data import generate_address_book

control = Control("onoffice")


@control.route("/reset", "POST")
async def reset(state: OnOfficeState, request: Request) -> Any:
    state.reset()
    return {"ok": True}


@control.route("/addresses", "POST")
async def seed(state: OnOfficeState, request: Request) -> Any:
    """`{"addresses": [...], "replace": true}` or `{"generate": N, "seed": S}`."""
    payload = await json_object(request)
    if "generate" in payload:
        records = generate_address_book(int(payload["generate"]), int(payload.get("seed", 0)))
    else:
        records = list(payload.get("addresses", []))
    ids = state.seed(records, replace=bool(payload.get("replace", True)))
    return {"ids": ids, "count": len(state.addresses)}


@control.route("/state", "GET")
async def read_state(state: OnOfficeState, request: Request) -> Any:
    return state.snapshot(with_addresses=query_flag(request, "addresses", True))


@control.route("/activity-log", "GET")
async def activity_log(state: OnOfficeState, request: Request) -> Any:
    """Activities from position `after` on: `[address id, wall-clock creation time]` each,
    and the position to ask from next (cheap to poll, unlike the whole state)."""
    after = int(request.query_params.get("after", "0"))
    entries = [
        [state.activities[i]["address_id"], state.activity_times[i]]
        for i in range(after, len(state.activities))
    ]
    return {"next": len(state.activities), "entries": entries}


@control.route("/progress", "GET")
async def progress(state: OnOfficeState, request: Request) -> Any:
    """For the addresses `first`..`last`: how many no longer say newsletter Yes, and how many
    have more than one activity (cheap to poll during a benchmark, unlike the whole state)."""
    first, last = int(request.query_params["first"]), int(request.query_params["last"])
    not_yes = sum(
        1
        for address_id in range(first, last + 1)
        if (a := state.addresses.get(address_id)) is not None and str(a.newsletter) != "1"
    )
    per_address = Counter(
        a["address_id"] for a in state.activities if first <= a["address_id"] <= last
    )
    return {"not_yes": not_yes, "twice": sum(1 for n in per_address.values() if n > 1)}


@control.route("/change-reads", "GET")
async def change_reads(state: OnOfficeState, request: Request) -> Any:
    """Per customer token: when it read addresses by modification time (wall clock), from
    `since` on."""
    since = float(request.query_params.get("since", "0"))
    return {token: [t for t in times if t >= since] for token, times in state.change_reads.items()}


@control.route("/customers", "POST")
async def add_customer(state: OnOfficeState, request: Request) -> Any:
    payload = await json_object(request)
    customer = Customer(
        token=str(payload["token"]),
        secret=str(payload["secret"]),
        claim=payload.get("claim"),
        active=bool(payload.get("active", True)),
        ip_allowed=bool(payload.get("ip_allowed", True)),
        rights=set(payload.get("rights", ALL_RIGHTS)),
        address_range=(
            (int(payload["address_range"][0]), int(payload["address_range"][1]))
            if payload.get("address_range")
            else None
        ),
    )
    state.customers[customer.token] = customer
    return customer.public()


@control.route("/customers/{token}/claim", "POST")
async def rotate_claim(state: OnOfficeState, request: Request) -> Any:
    """A user opened the service again: the new apiClaim replaces the old one."""
    customer = state.customers[request.path_params["token"]]
    if customer.claim:
        customer.outdated_claims.add(customer.claim)
    customer.claim = str((await json_object(request))["claim"])
    return customer.public()


@control.route("/customers/{token}/user-claims", "POST")
async def add_user_claim(state: OnOfficeState, request: Request) -> Any:
    """`{"claim": "...", "user_id": 5}`: a user of the customer opened the service; calls with
    this claim see what that user sees. The user's previous claim becomes outdated."""
    customer = state.customers[request.path_params["token"]]
    payload = await json_object(request)
    user_id = int(payload["user_id"])
    for old, owner in list(customer.user_claims.items()):
        if owner == user_id:
            del customer.user_claims[old]
            customer.outdated_claims.add(old)
    customer.user_claims[str(payload["claim"])] = user_id
    return customer.public()


@control.route("/users", "POST")
async def set_users(state: OnOfficeState, request: Request) -> Any:
    """`{"users": [{"id", "name", "first", "last", "visibility"}], "groups": [{"id", "name",
    "abr", "user_ids"}]}`: the customer's users and groups (replaced)."""
    payload = await json_object(request)
    state.users = {u.id: u for u in map(user_from, payload.get("users", []))}
    state.groups = {g.id: g for g in map(group_from, payload.get("groups", []))}
    return {"users": len(state.users), "groups": len(state.groups)}


@control.route("/claims", "GET")
async def claims_used(state: OnOfficeState, request: Request) -> Any:
    """Every extendedclaim the client sent: claim -> {"verb:resourcetype": count}."""
    return {claim: dict(counts) for claim, counts in state.claims_used.items()}


@control.route("/parameter-caches", "POST")
async def add_parameter_cache(state: OnOfficeState, request: Request) -> Any:
    payload = await json_object(request)
    state.parameter_caches[str(payload["id"])] = str(payload["claim"])
    return {"ok": True}


@control.route("/action-kinds", "PUT")
async def set_action_kinds(state: OnOfficeState, request: Request) -> Any:
    kinds = json.loads(await request.body())
    state.action_kinds = kinds
    return {"count": len(kinds)}


@control.route("/faults", "POST")
async def add_fault(state: OnOfficeState, request: Request) -> Any:
    """`{"http_status": 503}`, `{"hang_seconds": 5}` or `{"errorcode": 88, "message": ..}`,
    each with optional `count` (default 1); in-band faults may name a `resourcetype`.
    `{"lost_status": 504}` or `{"lost_hang_seconds": 5}`: the actions run, then the answer is
    lost (that status, or no answer for that long); it may name a `resourcetype` and a `verb`
    ("create", ...) an action of the request must have."""
    payload = await json_object(request)
    count = fault_count(payload)
    if "lost_status" in payload or "lost_hang_seconds" in payload:
        fault = Fault(
            "lost",
            count,
            status=int(payload.get("lost_status", 504)),
            seconds=float(payload.get("lost_hang_seconds", 0)),
            resourcetype=payload.get("resourcetype"),
            verb=payload.get("verb"),
        )
    elif "http_status" in payload:
        fault = Fault("http", count, status=int(payload["http_status"]))
    elif "hang_seconds" in payload:
        fault = Fault("hang", count, status=504, seconds=float(payload["hang_seconds"]))
    else:
        fault = Fault(
            "inband",
            count,
            errorcode=int(payload["errorcode"]),
            message=str(payload.get("message", "Injected error")),
            resourcetype=payload.get("resourcetype"),
        )
    state.faults.append(fault)
    return {"faults": len(state.faults)}


@control.route("/read-hooks", "POST")
async def add_read_hook(state: OnOfficeState, request: Request) -> Any:
    """`{"listoffset": 2, "addresses": [...], "when": "before", "hold_seconds": 0, "field":
    "newsletter_aktiv"}`: save these addresses when the paged read at that offset, filtered on
    that field, arrives (an agent editing while a full sync pages through the address book);
    fires once."""
    payload = await json_object(request)
    state.read_hooks.append(
        ReadHook(
            listoffset=int(payload["listoffset"]),
            addresses=list(payload.get("addresses", [])),
            when=str(payload.get("when", "before")),
            hold_seconds=float(payload.get("hold_seconds", 0)),
            field=str(payload.get("field", "newsletter_aktiv")),
        )
    )
    return {"read_hooks": len(state.read_hooks), "fired": state.read_hooks_fired}


@control.route("/requests", "GET")
async def requests(state: OnOfficeState, request: Request) -> Any:
    """HTTP requests so far, by the kinds of their actions, the most in flight at once
    (`?reset_peak=1`: from now on), and the seconds with at least one in flight."""
    peak = state.max_in_flight
    if query_flag(request, "reset_peak", False):
        state.max_in_flight = state.in_flight
    busy = state.busy_s + (time.monotonic() - state.busy_since if state.in_flight else 0.0)
    return {
        "http_requests": state.http_requests,
        "kinds": dict(state.request_kinds),
        "max_in_flight": peak,
        "busy_s": busy,
    }


@control.route("/latency", "POST")
async def set_latency(state: OnOfficeState, request: Request) -> Any:
    state.latency = float((await json_object(request)).get("seconds", 0))
    return {"latency": state.latency}


@control.route("/clock", "POST")
async def set_clock(state: OnOfficeState, request: Request) -> Any:
    state.clock_offset = float((await json_object(request)).get("offset_seconds", 0))
    return {"offset_seconds": state.clock_offset}


@control.route("/settings", "POST")
async def set_settings(state: OnOfficeState, request: Request) -> Any:
    payload = await json_object(request)
    settings = state.settings
    if "modified_readable" in payload:
        settings.modified_readable = bool(payload["modified_readable"])
    if "unsortable_fields" in payload:
        settings.unsortable_fields = set(payload["unsortable_fields"])
    if "duplicate_id" in payload:
        settings.duplicate_id = str(payload["duplicate_id"])
    if "action_error_code" in payload:
        settings.action_error_code = int(payload["action_error_code"])
    if "support_user_filterable" in payload:
        settings.support_user_filterable = bool(payload["support_user_filterable"])
    if "support_user_output" in payload:
        settings.support_user_output = str(payload["support_user_output"])
    return {
        "modified_readable": settings.modified_readable,
        "unsortable_fields": sorted(settings.unsortable_fields),
        "duplicate_id": settings.duplicate_id,
        "action_error_code": settings.action_error_code,
        "support_user_filterable": settings.support_user_filterable,
        "support_user_output": settings.support_user_output,
    }
