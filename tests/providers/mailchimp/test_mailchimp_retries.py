"""Retry policy of MailchimpClient against scripted HTTP answers (respx)."""

from __future__ import annotations

import time

import httpx
import pytest
import respx

from providers.base import ProviderRequestError, ProviderTransientError
from providers.mailchimp import MailchimpClient, MailchimpTransientError

KEY = "0123456789abcdef0123456789abcdef-us7"
PING = "https://us7.api.mailchimp.com/3.0/ping"
OK = httpx.Response(200, json={"health_status": "Everything's Chimpy!"})


def problem(status: int, title: str, detail: str = "") -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "type": "https://mailchimp.com/developer/",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": "abc-123",
        },
        headers={"Content-Type": "application/problem+json"},
    )


def make(max_retries: int = 5) -> MailchimpClient:
    return MailchimpClient(
        api_key=KEY, max_retries=max_retries, backoff_base_s=0.001, max_backoff_s=2.0
    )


@respx.mock
async def test_retries_429_then_succeeds() -> None:
    route = respx.get(PING).mock(side_effect=[problem(429, "Too Many Requests")] * 2 + [OK])
    assert await make()._api.request("GET", "/ping") == {"health_status": "Everything's Chimpy!"}
    assert route.call_count == 3


@respx.mock
async def test_honours_retry_after() -> None:
    limited = problem(429, "Too Many Requests")
    limited.headers["Retry-After"] = "0.4"
    respx.get(PING).mock(side_effect=[limited, OK])
    started = time.monotonic()
    await make()._api.request("GET", "/ping")
    assert time.monotonic() - started >= 0.35


@respx.mock
async def test_retry_after_is_capped() -> None:
    limited = problem(429, "Too Many Requests")
    limited.headers["Retry-After"] = "3600"
    respx.get(PING).mock(side_effect=[limited, OK])
    client = MailchimpClient(api_key=KEY, backoff_base_s=0.001, max_backoff_s=0.05)
    started = time.monotonic()
    await client._api.request("GET", "/ping")
    assert time.monotonic() - started < 5


@respx.mock
async def test_bodiless_403_is_throttling_and_retried() -> None:
    route = respx.get(PING).mock(side_effect=[httpx.Response(403), httpx.Response(503), OK])
    await make()._api.request("GET", "/ping")
    assert route.call_count == 3


@respx.mock
async def test_network_errors_are_retried() -> None:
    route = respx.get(PING).mock(side_effect=[httpx.ConnectError("refused"), OK])
    await make()._api.request("GET", "/ping")
    assert route.call_count == 2


@respx.mock
async def test_gives_up_with_a_transient_error() -> None:
    route = respx.get(PING).mock(return_value=problem(500, "Internal Server Error"))
    with pytest.raises(ProviderTransientError) as caught:
        await make(max_retries=2)._api.request("GET", "/ping")
    assert isinstance(caught.value, MailchimpTransientError)
    assert caught.value.status_code == 500
    assert route.call_count == 3


@respx.mock
async def test_permanent_400_is_not_retried() -> None:
    route = respx.get(PING).mock(
        return_value=problem(400, "Invalid Resource", "The resource could not be validated.")
    )
    with pytest.raises(ProviderRequestError) as caught:
        await make()._api.request("GET", "/ping")
    assert route.call_count == 1
    assert not isinstance(caught.value, ProviderTransientError)
    assert "Invalid Resource" in caught.value.message
    assert "abc-123" in caught.value.message  # Mailchimp's request id, for support
    assert KEY not in caught.value.message


@respx.mock
async def test_403_with_body_is_permanent() -> None:
    route = respx.get(PING).mock(return_value=problem(403, "User action not permitted"))
    with pytest.raises(ProviderRequestError):
        await make()._api.request("GET", "/ping")
    assert route.call_count == 1


@respx.mock
async def test_sends_basic_auth_with_the_key_as_password() -> None:
    route = respx.get(PING).mock(return_value=OK)
    await make()._api.request("GET", "/ping")
    sent = route.calls.last.request.headers["Authorization"]
    assert sent.startswith("Basic ")
    import base64

    assert base64.b64decode(sent.split()[1]).decode().endswith(":" + KEY)
