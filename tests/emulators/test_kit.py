"""The emulators' shared request pipeline (emulators/_kit.py): steps answer in order, clean-ups
run however a request ends, faults are used up one request at a time."""

from __future__ import annotations

import asyncio
import importlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators import _kit


@dataclass
class _Fault:
    status: int
    remaining: int = 1
    path: str = "/"


@dataclass
class _State:
    keys: set[str] = field(default_factory=lambda: {"k1"})
    request_counts: Counter[str] = field(default_factory=Counter)
    faults: list[_Fault] = field(default_factory=list)
    active: Counter[str] = field(default_factory=Counter)
    max_concurrency: int = 0
    max_connections: int = 2
    concurrency_rejections: int = 0
    waiting: int = 0
    both_in: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def _key(call: _kit.Call) -> Any:
    key = call.request.headers.get("x-key", "")
    return key if key in call.state.keys else JSONResponse({"error": "key"}, status_code=401)


async def _fault(fault: _Fault) -> Response:
    return JSONResponse({"error": "fault"}, status_code=fault.status)


async def _handler(call: _kit.Call) -> Response:
    if call.body and call.body.get("wait"):
        call.state.waiting += 1
        if call.state.waiting == 2:
            call.state.both_in.set()
        await call.state.release.wait()
    return JSONResponse({"body": call.body, "key": call.principal})


def _app(state: _State) -> Any:
    pipeline = _kit.Pipeline(
        "test",
        [
            _kit.count(lambda call: f"{call.method} {call.path}"),
            _kit.authenticate(_key),
            _kit.cap_connections(lambda limit: JSONResponse({"limit": limit}, status_code=429)),
            *_kit.inject_fault(lambda f, call: call.path.startswith(f.path), _fault),
            _kit.read_body,
            _kit.parse_json(invalid=lambda: JSONResponse({"error": "json"}, status_code=400)),
        ],
    )
    routes = [Route("/api/{rest:path}", pipeline.endpoint(_handler), methods=["POST"])]
    return _kit.build_app("test", state, routes, _kit.Control("test"))


async def test_steps_answer_in_order_and_slots_are_released_however_a_request_ends() -> None:
    state = _State()
    state.faults.append(_Fault(503, remaining=2, path="/api/x"))
    transport = httpx.ASGITransport(app=_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://emu") as client:
        assert (await client.post("/api/x", content=b"{}")).status_code == 401  # no key
        ok = {"x-key": "k1"}
        # the fault is used up one request at a time, only on its path
        assert (await client.post("/api/y", headers=ok, json={"a": 1})).json()["body"] == {"a": 1}
        assert (await client.post("/api/x", headers=ok, json={})).status_code == 503
        assert (await client.post("/api/x", headers=ok, json={})).status_code == 503
        assert state.faults == []
        assert (await client.post("/api/x", headers=ok, content=b"{no")).status_code == 400
        assert (await client.post("/api/x", headers=ok, json={})).json()["key"] == "k1"
        # two requests hold the two slots; a third is refused; all slots come back
        held = [
            asyncio.create_task(client.post("/api/x", headers=ok, json={"wait": True}))
            for _ in range(2)
        ]
        await state.both_in.wait()
        refused = await client.post("/api/x", headers=ok, json={})
        assert refused.status_code == 429 and refused.json() == {"limit": 2}
        state.release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
    assert sum(state.active.values()) == 0
    assert state.max_concurrency == 3 and state.concurrency_rejections == 1
    assert state.request_counts == Counter({"POST /api/x": 8, "POST /api/y": 1})


def test_take_fault_skips_spent_and_unmatched_faults() -> None:
    faults = [_Fault(500, remaining=0), _Fault(502, path="/a"), _Fault(503, remaining=2)]
    first = _kit.take_fault(faults, lambda f: f.path == "/")
    second = _kit.take_fault(faults, lambda f: f.path == "/a")
    assert first is not None and first.status == 503
    assert second is not None and second.status == 502
    assert [f.status for f in faults] == [500, 503]
    assert _kit.take_fault(faults, lambda f: f.path == "/a") is None


@pytest.mark.parametrize(
    ("make", "good"),
    [
        ("onoffice", {"http_status": 503}),
        ("mailchimp", {"status": 503}),
        ("brevo", {"status": 503}),
    ],
)
async def test_a_malformed_control_call_is_422_and_a_fault_needs_a_count(
    make: str, good: dict[str, Any]
) -> None:
    module = importlib.import_module(f"emulators.{make}")
    app = module.create_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://emulator.test"
    ) as client:
        missing = await client.post("/_control/faults", json={"count": 2})
        assert missing.status_code == 422, missing.text
        assert "malformed control call" in missing.json()["error"]
        never = await client.post("/_control/faults", json=good | {"count": 0})
        assert never.status_code == 422 and "count must be at least 1" in never.text
        assert (await client.post("/_control/faults", json=good)).is_success
