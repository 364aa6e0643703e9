"""Retry, rate-limit and error classification, with Brevo faked by respx."""

import time

import httpx
import pytest
import respx

from emulators.brevo import BrevoConfig, BrevoState, create_app
from providers.base import ProviderRequestError, ProviderTransientError
from providers.brevo import BrevoClient, BrevoLimitError, BrevoRequestError, BrevoTransientError

BASE = "https://api.brevo.com/v3"
KEY = "xkeysib-0123456789abcdef"
ACCOUNT = {"email": "o@example.de", "companyName": "X", "address": {"country": "Germany"}}


def client(**kw: float) -> BrevoClient:
    options = {"backoff_initial": 0.01, "max_retry_wait": 1.0, "max_retries": 3}
    options.update(kw)
    return BrevoClient(api_key=KEY, **options)  # type: ignore[arg-type]


def limited(reset: str) -> httpx.Response:
    headers = {"x-sib-ratelimit-limit": "10", "x-sib-ratelimit-remaining": "0",
               "x-sib-ratelimit-reset": reset}  # fmt: skip
    return httpx.Response(429, json={"code": "too_many_requests", "message": "slow"},
                          headers=headers)  # fmt: skip


@respx.mock
async def test_429_waits_for_ratelimit_reset() -> None:
    route = respx.get(f"{BASE}/account").mock(
        side_effect=[limited("0.3"), httpx.Response(200, json=ACCOUNT)]
    )
    started = time.monotonic()
    info = await client().check_key()
    assert info.language == "de"
    assert route.call_count == 2
    assert time.monotonic() - started >= 0.3
    assert route.calls[0].request.headers["api-key"] == KEY


@respx.mock
async def test_reset_is_capped() -> None:
    respx.get(f"{BASE}/account").mock(
        side_effect=[limited("3600"), httpx.Response(200, json=ACCOUNT)]
    )
    started = time.monotonic()
    await client(max_retry_wait=0.05).check_key()
    assert time.monotonic() - started < 5


@respx.mock
async def test_retry_after_header_is_honoured_without_sib_headers() -> None:
    route = respx.get(f"{BASE}/account").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0.2"}),
                     httpx.Response(200, json=ACCOUNT)]
    )  # fmt: skip
    started = time.monotonic()
    await client().check_key()
    assert route.call_count == 2 and time.monotonic() - started >= 0.2


@respx.mock
async def test_persistent_429_gives_up_as_transient() -> None:
    route = respx.get(f"{BASE}/account").mock(return_value=limited("0"))
    with pytest.raises(BrevoTransientError) as caught:
        await client(max_retries=2).check_key()
    assert route.call_count == 3
    assert caught.value.retry_after == 0
    assert isinstance(caught.value, ProviderTransientError)


@respx.mock
async def test_5xx_then_network_error_then_success() -> None:
    route = respx.get(f"{BASE}/account").mock(
        side_effect=[httpx.Response(503, text="<html>down</html>"),
                     httpx.ConnectError("refused"), httpx.Response(200, json=ACCOUNT)]
    )  # fmt: skip
    assert (await client().check_key()).email == "o@example.de"
    assert route.call_count == 3


@respx.mock
async def test_425_too_early_is_retried() -> None:
    route = respx.post(f"{BASE}/contacts").mock(
        side_effect=[httpx.Response(425, json={"code": "bad_request", "message": "too early"}),
                     httpx.Response(204)]
    )  # fmt: skip
    from providers.base import ContactData, FieldMapping

    result = await client().upsert_contact("7", ContactData(email="a@example.de"), FieldMapping())
    assert result.outcome == "updated" and route.call_count == 2


@respx.mock
async def test_400_is_not_retried_and_carries_brevo_code() -> None:
    route = respx.get(f"{BASE}/account").mock(
        return_value=httpx.Response(400, json={"code": "invalid_parameter", "message": "bad"},
                                    headers={"sib-request-id": "req-1"})
    )  # fmt: skip
    with pytest.raises(BrevoRequestError) as caught:
        await client().check_key()
    assert route.call_count == 1
    assert caught.value.code == "invalid_parameter"
    assert caught.value.status_code == 400
    assert "req-1" in caught.value.message
    assert KEY not in caught.value.message
    assert isinstance(caught.value, ProviderRequestError)


@respx.mock
async def test_402_is_a_limit_error() -> None:
    respx.get(f"{BASE}/account").mock(
        return_value=httpx.Response(402, json={"code": "not_enough_credits", "message": "no"})
    )
    with pytest.raises(BrevoLimitError):
        await client().check_key()


async def test_pacing_keeps_contacts_at_ten_per_second() -> None:
    state = BrevoState(BrevoConfig(contacts_rps=10))
    state.add_account("k", "de")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as http:
        brevo = BrevoClient(api_key="k", base_url="http://b/v3", http=http, backoff_initial=0.01)
        started = time.monotonic()
        for _ in range(16):
            await brevo.ensure_fields("1")
        elapsed = time.monotonic() - started
    times = [t for t, _, path in state.request_log if path.startswith("/contacts")]
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert busiest <= 10
    assert state.rate_limited == 0
    # at least 16 GETs (+ attribute creations) spaced by 0.1 s
    assert elapsed >= 1.4
    assert state.violations == []
