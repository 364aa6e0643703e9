"""Error mapping and retries of the client, against the emulator (and respx for HTTP shapes)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import respx

from emulators.onoffice import Customer, Fault, OnOfficeState
from onoffice_client.client import OnOfficeClient
from onoffice_client.errors import error_for
from onoffice_client.models import (
    ActivityCreate,
    AddressCreate,
    AddressUpdate,
    OnOfficeAuthError,
    OnOfficeClaimError,
    OnOfficeClockError,
    OnOfficeError,
    OnOfficeIPError,
    OnOfficeNotFoundError,
    OnOfficePermissionError,
    OnOfficeTransientError,
)
from onoffice_client.signature import hmac_v2
from tests.onoffice.conftest import API_URL, ClientFactory

MARKET_TOKEN = "markettoken000000000000000000001"
MARKET_SECRET = "m" * 64
SECRET = "never-sent-secret-7f3a"


@pytest.fixture
def marketplace(state: OnOfficeState) -> Customer:
    customer = Customer(token=MARKET_TOKEN, secret=MARKET_SECRET, claim="claim-2")
    customer.outdated_claims.add("claim-1")
    state.customers[MARKET_TOKEN] = customer
    return customer


async def _read(client: OnOfficeClient) -> None:
    await client.get_addresses([1])


class TestAuthErrors:
    async def test_unknown_token(self, make_client: ClientFactory) -> None:
        with pytest.raises(OnOfficeAuthError) as info:
            await _read(make_client(token="x" * 32))
        assert info.value.errorcode == 22
        assert "token" in str(info.value)

    async def test_wrong_secret_is_bad_hmac(self, make_client: ClientFactory) -> None:
        secret = "wrong-secret-" + "9" * 51
        with pytest.raises(OnOfficeAuthError) as info:
            await _read(make_client(secret=secret))
        assert info.value.errorcode == 137
        assert secret not in str(info.value)

    async def test_inactive_customer(self, state: OnOfficeState, client: OnOfficeClient) -> None:
        for customer in state.customers.values():
            customer.active = False
        with pytest.raises(OnOfficeAuthError):
            await _read(client)

    async def test_clock_skew(self, state: OnOfficeState, client: OnOfficeClient) -> None:
        state.clock_offset = 300
        with pytest.raises(OnOfficeClockError) as info:
            await _read(client)
        assert info.value.errorcode == 136

    async def test_ip_not_allowed(self, state: OnOfficeState, client: OnOfficeClient) -> None:
        for customer in state.customers.values():
            customer.ip_allowed = False
        with pytest.raises(OnOfficeIPError) as info:
            await _read(client)
        assert info.value.errorcode == 158


class TestClaims:
    async def test_current_claim_works_on_every_action(
        self, state: OnOfficeState, make_client: ClientFactory, marketplace: Customer
    ) -> None:
        client = make_client(token=MARKET_TOKEN, secret=MARKET_SECRET, claim="claim-2")
        (address_id,) = state.seed([{"Name": "x"}])
        await client.modify_address(address_id, AddressUpdate(first_name="y"))
        assert [a.first_name for a in await client.get_addresses([address_id])] == ["y"]

    @pytest.mark.parametrize(("claim", "code"), [(None, 193), ("claim-1", 201), ("other", 248)])
    async def test_missing_outdated_or_foreign_claim(
        self, make_client: ClientFactory, marketplace: Customer, claim: str | None, code: int
    ) -> None:
        client = make_client(token=MARKET_TOKEN, secret=MARKET_SECRET, claim=claim)
        with pytest.raises(OnOfficeClaimError) as info:
            await _read(client)
        assert info.value.errorcode == code
        assert "open the connector" in str(info.value)


class TestPermissionsAndNotFound:
    @pytest.mark.parametrize(("right", "code"), [("modify", 174), ("read", 235)])
    async def test_missing_right(
        self, state: OnOfficeState, client: OnOfficeClient, right: str, code: int
    ) -> None:
        (address_id,) = state.seed([{"Name": "x"}])
        for customer in state.customers.values():
            customer.rights.discard(right)
        error = OnOfficeNotFoundError if code == 235 else OnOfficePermissionError
        with pytest.raises(error) as info:
            if right == "read":
                await _read(client)
            else:
                await client.modify_address(address_id, AddressUpdate(first_name="y"))
        assert info.value.errorcode == code

    async def test_create_without_right(self, state: OnOfficeState, client: OnOfficeClient) -> None:
        for customer in state.customers.values():
            customer.rights.discard("create")
        with pytest.raises(OnOfficePermissionError) as info:
            await client.create_address(AddressCreate(email="a@example.de"))
        assert info.value.errorcode == 131

    async def test_marketplace_forbidden_resource(self) -> None:
        assert isinstance(
            error_for(240, "Call for Marketplace Api-Users not allowed"), OnOfficePermissionError
        )
        assert isinstance(error_for(292, "x"), OnOfficeNotFoundError)
        assert type(error_for(88, "Entry could not be modified")) is OnOfficeError


class TestRetries:
    async def test_5xx_retried_with_fresh_signature(
        self, state: OnOfficeState, make_client: ClientFactory
    ) -> None:
        state.seed([{"Name": "x"}])
        client = make_client(backoff_initial=1.05, backoff_max=1.1)
        await client.modify_address(1, AddressUpdate(first_name="warm-up"))
        state.recent_requests.clear()
        state.faults.append(Fault("http", 1, status=503))

        await client.modify_address(1, AddressUpdate(first_name="y"))

        first, second = (r["actions"][0] for r in state.recent_requests)
        assert second["timestamp"] > first["timestamp"]
        assert second["hmac"] != first["hmac"]
        assert state.addresses[1].vorname == "y"

    async def test_gives_up_as_transient(
        self, state: OnOfficeState, make_client: ClientFactory
    ) -> None:
        state.faults.append(Fault("http", 10, status=502))
        with pytest.raises(OnOfficeTransientError):
            await _read(make_client(max_retries=2))
        assert state.http_requests == 3

    async def test_hang_times_out_and_retries(
        self, state: OnOfficeState, make_client: ClientFactory
    ) -> None:
        state.faults.append(Fault("hang", 1, seconds=30))
        started = time.monotonic()
        assert await make_client(timeout=0.3).get_addresses([1]) == []
        assert time.monotonic() - started < 10
        assert state.http_requests == 2

    async def test_in_band_error_not_retried(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        state.faults.append(Fault("inband", 5, errorcode=500, message="Internal error"))
        with pytest.raises(OnOfficeError) as info:
            await _read(client)
        assert info.value.errorcode == 500
        assert state.http_requests == 1

    async def test_a_create_whose_answer_is_lost_is_not_sent_again(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        state.faults.append(Fault("lost", 1, status=504, seconds=0, resourcetype="address"))
        with pytest.raises(OnOfficeTransientError) as info:
            await client.create_address(AddressCreate(email="neu@example.de", last_name="Neu"))
        assert info.value.maybe_applied
        assert state.http_requests == 1
        assert [a.emails for a in state.addresses.values()] == [["neu@example.de"]]

    async def test_a_create_that_timed_out_is_not_sent_again(
        self, state: OnOfficeState, make_client: ClientFactory
    ) -> None:
        (address_id,) = state.seed([{"Name": "x"}])
        state.faults.append(Fault("lost", 1, seconds=30, resourcetype="agentslog"))
        item = ActivityCreate(address_ids=[address_id], kind="Newsletter", note="n")
        with pytest.raises(OnOfficeTransientError) as info:
            await make_client(timeout=0.3).create_activities([item])
        assert info.value.maybe_applied
        assert state.http_requests == 1 and len(state.activities) == 1

    async def test_a_create_refused_before_it_ran_is_sent_again(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        state.faults.append(Fault("http", 1, status=503))
        await client.create_address(AddressCreate(email="neu@example.de", last_name="Neu"))
        assert state.http_requests == 2 and len(state.addresses) == 1

    async def test_a_modify_whose_answer_is_lost_is_sent_again(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        (address_id,) = state.seed([{"Name": "x"}])
        state.faults.append(Fault("lost", 1, status=504, seconds=0))
        await client.modify_address(address_id, AddressUpdate(first_name="y"))
        assert state.http_requests == 2 and state.addresses[address_id].vorname == "y"

    @pytest.mark.parametrize(
        ("failure", "calls"),
        [(httpx.ConnectError("refused"), 2), (httpx.ReadTimeout("no answer"), 1)],
    )
    async def test_a_create_is_sent_again_only_when_it_cannot_have_arrived(
        self, failure: Exception, calls: int
    ) -> None:
        created = {"id": 7, "type": "address", "elements": []}
        with respx.mock(assert_all_called=True) as router:
            route = router.post(API_URL).mock(
                side_effect=[failure, httpx.Response(200, json=_ok([created]))]
            )
            async with OnOfficeClient(
                api_url=API_URL, token="t", secret="s", backoff_initial=0.01
            ) as client:
                create = client.create_address(AddressCreate(email="a@example.de"))
                if calls == 2:
                    assert await create == 7
                else:
                    with pytest.raises(OnOfficeTransientError) as info:
                        await create
                    assert info.value.maybe_applied
        assert route.call_count == calls

    async def test_network_error_retried(self) -> None:
        with respx.mock(assert_all_called=True) as router:
            route = router.post(API_URL).mock(
                side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=_ok([]))]
            )
            async with OnOfficeClient(
                api_url=API_URL, token="t", secret="s", backoff_initial=0.01
            ) as client:
                assert await client.get_addresses([1]) == []
        assert route.call_count == 2


def _ok(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "status": {"code": 200, "errorcode": 0, "message": "OK"},
        "response": {
            "results": [
                {
                    "data": {"meta": {"cntabsolute": len(records)}, "records": records},
                    "status": {"errorcode": 0, "message": "OK"},
                }
            ]
        },
    }


class TestResponseShapes:
    """Shapes the docs leave open, served by respx."""

    @pytest.mark.parametrize("top", [{"code": 200, "errorcode": 0}, {"code": 200, "errorcode": 97}])
    async def test_action_error_with_either_top_level(self, top: dict[str, int]) -> None:
        body = {
            "status": top | {"message": ""},
            "response": {
                "results": [
                    {"data": {}, "status": {"errorcode": 137, "message": "The HMAC is invalid"}}
                ]
            },
        }
        with respx.mock() as router:
            router.post(API_URL).mock(return_value=httpx.Response(200, json=body))
            async with OnOfficeClient(api_url=API_URL, token="t", secret="s") as client:
                with pytest.raises(OnOfficeAuthError, match="The HMAC is invalid"):
                    await _read(client)

    @pytest.mark.parametrize("http_status", [200, 400])
    async def test_top_level_400(self, http_status: int) -> None:
        body = {
            "status": {"code": 400, "errorcode": 22, "message": "Not authenticated"},
            "response": [],
        }
        with respx.mock() as router:
            router.post(API_URL).mock(return_value=httpx.Response(http_status, json=body))
            async with OnOfficeClient(api_url=API_URL, token="t", secret="s") as client:
                with pytest.raises(OnOfficeAuthError, match="Not authenticated"):
                    await _read(client)

    async def test_string_ids_and_list_elements(self) -> None:
        record = {
            "id": "17",
            "type": "address",
            "elements": {"id": "17", "NewsletterTag": "", "newsletter_aktiv": 1, "Status": 1},
        }
        with respx.mock() as router:
            router.post(API_URL).mock(return_value=httpx.Response(200, json=_ok([record])))
            async with OnOfficeClient(api_url=API_URL, token="t", secret="s") as client:
                (address,) = await client.get_addresses([17])
        assert address.id == 17 and address.tags == [] and address.active

    async def test_non_json_is_permanent_error(self) -> None:
        with respx.mock() as router:
            router.post(API_URL).mock(return_value=httpx.Response(200, text="<html>"))
            async with OnOfficeClient(api_url=API_URL, token="t", secret="s") as client:
                with pytest.raises(OnOfficeError) as info:
                    await _read(client)
        assert not isinstance(info.value, OnOfficeTransientError)

    async def test_request_envelope(self) -> None:
        with respx.mock() as router:
            route = router.post(API_URL).mock(return_value=httpx.Response(200, json=_ok([])))
            async with OnOfficeClient(
                api_url=API_URL, token="tok", secret=SECRET, claim="c1"
            ) as client:
                await client.get_addresses([5])
        body = json.loads(route.calls.last.request.content)
        (action,) = body["request"]["actions"]
        assert body["token"] == "tok"
        assert action["hmac_version"] == "2" and isinstance(action["timestamp"], int)
        assert action["hmac"] == hmac_v2(
            "tok", SECRET, action["timestamp"], "address", action["actionid"]
        )
        assert action["parameters"]["extendedclaim"] == "c1"
        assert list(action["parameters"]) == sorted(action["parameters"])
        assert SECRET not in route.calls.last.request.content.decode()


class TestPaging:
    async def test_follows_cntabsolute_when_server_returns_less(self) -> None:
        def page(request: httpx.Request) -> httpx.Response:
            (action,) = json.loads(request.content)["request"]["actions"]
            offset = action["parameters"]["listoffset"]
            records = [
                {"id": i, "type": "address", "elements": {"id": i}}
                for i in range(offset + 1, min(offset + 2, 5) + 1)
            ]
            body = _ok(records)
            body["response"]["results"][0]["data"]["meta"]["cntabsolute"] = 5
            return httpx.Response(200, json=body)

        with respx.mock() as router:
            route = router.post(API_URL).mock(side_effect=page)
            async with OnOfficeClient(api_url=API_URL, token="t", secret="s") as client:
                ids = [a.id async for p in client.iter_newsletter_addresses() for a in p]
        assert ids == [1, 2, 3, 4, 5]
        assert route.call_count == 3
