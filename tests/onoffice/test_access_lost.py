"""How the client recognises onOffice refusing the API user as such (the provider locked, the
customer or the API user gone), in each reading onOffice's answer may take, and that it tells
its owner (`on_access_lost`) exactly then (issue 21)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from onoffice_client.client import OnOfficeClient
from onoffice_client.models import (
    ActivityCreate,
    OnOfficeAccessLost,
    OnOfficeAuthError,
    OnOfficeError,
    OnOfficeNotFoundError,
)
from onoffice_client.transport import RequestsFailed


def answer(top: dict[str, Any], codes: list[int] | None = None) -> httpx.MockTransport:
    """onOffice (faked at the HTTP edge) answering every request with `top` as its status and,
    per action, the given errorcode (0 = OK)."""

    def handler(request: httpx.Request) -> httpx.Response:
        actions = json.loads(request.content)["request"]["actions"]
        results = [
            {
                "actionid": a["actionid"],
                "resourceid": a["resourceid"],
                "resourcetype": a["resourcetype"],
                "data": {"meta": {"cntabsolute": None}, "records": []},
                "status": {"errorcode": (codes or [0] * len(actions))[i], "message": "refused"},
            }
            for i, a in enumerate(actions)
        ]
        return httpx.Response(200, json={"status": top, "response": {"results": results}})

    return httpx.MockTransport(handler)


def client(transport: httpx.MockTransport, seen: list[OnOfficeError]) -> OnOfficeClient:
    c = OnOfficeClient(
        api_url="http://onoffice.test/api.php",
        token="t" * 32,
        secret="s" * 64,
        http=httpx.AsyncClient(transport=transport),
        max_retries=0,
    )

    async def told(exc: OnOfficeError) -> None:
        seen.append(exc)

    c.on_access_lost = told
    return c


@pytest.mark.parametrize(
    ("top", "codes"),
    [
        ({"code": 400, "errorcode": 0, "message": "not authenticated"}, None),  # no code at all
        ({"code": 400, "errorcode": 22, "message": "Not authenticated"}, None),
        ({"code": 400, "errorcode": 42, "message": "Customer inactive"}, None),
        ({"code": 200, "errorcode": 97, "message": "Error in action"}, [41]),
        ({"code": 200, "errorcode": 97, "message": "Error in action"}, [43]),
        ({"code": 200, "errorcode": 0, "message": "OK"}, [104]),
    ],
)
async def test_each_reading_of_a_refusal_is_access_lost_and_told(
    top: dict[str, Any], codes: list[int] | None
) -> None:
    seen: list[OnOfficeError] = []
    with pytest.raises(OnOfficeAccessLost):
        await client(answer(top, codes), seen).get_fields(["newsletter_aktiv"])
    assert len(seen) == 1 and isinstance(seen[0], OnOfficeAccessLost)


async def test_a_bad_hmac_is_an_auth_error_but_not_a_lost_access() -> None:
    seen: list[OnOfficeError] = []
    top = {"code": 200, "errorcode": 97, "message": "Error in action"}
    with pytest.raises(OnOfficeAuthError) as info:
        await client(answer(top, [137]), seen).get_fields(["newsletter_aktiv"])
    assert not isinstance(info.value, OnOfficeAccessLost) and seen == []


async def test_grouped_writes_tell_only_when_every_action_was_refused() -> None:
    top = {"code": 200, "errorcode": 97, "message": "Error in action"}
    items = [
        ActivityCreate(address_ids=[1], kind="Newsletter"),
        ActivityCreate(address_ids=[2], kind="Newsletter"),
    ]
    seen: list[OnOfficeError] = []
    c = client(answer(top, [104, 104]), seen)
    outcomes = await c.run_each([c.activity_action(i) for i in items])
    assert all(isinstance(o, OnOfficeAccessLost) for o in outcomes) and len(seen) == 1
    # One action refused for its own reason (an unknown address), the other fine: no report.
    seen.clear()
    c = client(answer(top, [292, 0]), seen)
    outcomes = await c.run_each([c.activity_action(i) for i in items])
    assert isinstance(outcomes[0], OnOfficeNotFoundError) and seen == []
    # The request refused as a whole (top level): reported, and raised as before.
    c = client(answer({"code": 400, "errorcode": 22, "message": "Not authenticated"}), seen)
    with pytest.raises(RequestsFailed):
        await c.run_each([c.activity_action(i) for i in items])
    assert len(seen) == 1
