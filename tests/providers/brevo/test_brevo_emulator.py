"""The Brevo emulator's own contract: spec checks, rate limit headers, control API."""

from collections.abc import AsyncIterator

import httpx
import pytest

from emulators.brevo import BrevoConfig, BrevoState, create_app


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(BrevoState(BrevoConfig(contacts_rps=3)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://brevo") as client:
        yield client


async def test_control_api_seed_inspect_and_violations(http: httpx.AsyncClient) -> None:
    assert (
        await http.post("/_control/accounts", json={"api_key": "k", "language": "en"})
    ).is_success
    seed = [{"email": "A@x.de", "attributes": {"FIRSTNAME": "A"}, "listIds": [9],
             "emailBlacklisted": True}]  # fmt: skip
    assert (await http.post("/_control/accounts/k/contacts", json=seed)).status_code == 201
    [contact] = (await http.get("/_control/accounts/k/contacts")).json()
    assert contact["email"] == "a@x.de" and contact["emailBlacklisted"] is True
    bad = await http.post("/v3/contacts", headers={"api-key": "k"}, json={"listIds": ["x"]})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_parameter"
    unauth = await http.get("/v3/account", headers={"api-key": "nope"})
    assert unauth.status_code == 401 and unauth.json() == {"code": "unauthorized",
                                                           "message": "Key not found"}  # fmt: skip
    state = (await http.get("/_control/state")).json()
    assert state["spec_violations"] == 1
    assert state["accounts"]["k"]["attributes"] == ["FIRSTNAME", "LASTNAME", "SMS"]


async def test_rate_limit_and_fault_injection(http: httpx.AsyncClient) -> None:
    await http.post("/_control/accounts", json={"api_key": "k"})
    statuses = []
    for _ in range(5):
        response = await http.get("/v3/contacts/attributes", headers={"api-key": "k"})
        statuses.append(response.status_code)
    assert statuses[:3] == [200, 200, 200] and 429 in statuses
    limited = response if response.status_code == 429 else None
    assert limited is not None
    assert limited.headers["x-sib-ratelimit-limit"] == "3"
    assert float(limited.headers["x-sib-ratelimit-reset"]) <= 1.0
    # /account is not in the /contacts bucket
    assert (await http.get("/v3/account", headers={"api-key": "k"})).status_code == 200
    await http.post("/_control/faults", json={"path_prefix": "/account", "status": 500})
    assert (await http.get("/v3/account", headers={"api-key": "k"})).status_code == 500
    assert (await http.get("/v3/account", headers={"api-key": "k"})).status_code == 200
    config = (await http.post("/_control/config", json={"latency": 0.01})).json()
    assert config["latency"] == 0.01
