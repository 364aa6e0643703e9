"""The shared provider transport: Retry-After reading, retries, error mapping, redaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx
from tenacity import wait_none

from providers._http import Transport, parse_retry_after
from providers._retry import RetryPolicy
from providers.base import ProviderAuthError, ProviderTransientError
from providers.brevo import errors as brevo_errors
from providers.mailchimp import errors as mailchimp_errors

SECRET = "0123456789abcdef0123456789abcdef-us21"


def transport(http: httpx.AsyncClient, *, brevo: bool = False, retries: int = 2) -> Transport:
    module = brevo_errors if brevo else mailchimp_errors
    return Transport(
        provider="Brevo" if brevo else "Mailchimp",
        base_url="https://api.test/3.0",
        http=http,
        timeout=5.0,
        retry=RetryPolicy(
            max_retries=retries,
            backoff=wait_none(),
            max_wait=0.0,
            logger=logging.getLogger("test"),
            log_event="test.retry",
            log_extra=lambda _e: {},
        ),
        secrets=[SECRET],
        error_from_response=module.from_response,
        transient=module.transient,
    )


class TestRetryAfter:
    def test_seconds_dates_and_garbage(self) -> None:
        assert parse_retry_after("12") == 12.0
        assert parse_retry_after(" 1.5 ") == 1.5
        assert parse_retry_after("-3") == 0.0
        soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
        waited = parse_retry_after(soon)
        assert waited is not None and 25 <= waited <= 31
        assert parse_retry_after("soon-ish") is None
        assert parse_retry_after(None) is None


class TestTransport:
    @respx.mock
    async def test_a_5xx_is_retried_then_the_answer_is_returned(self) -> None:
        route = respx.get("https://api.test/3.0/ping").mock(
            side_effect=[
                httpx.Response(503, json={"title": "busy"}),
                httpx.Response(200, json={"ok": 1}),
            ]
        )
        async with httpx.AsyncClient() as http:
            assert await transport(http).json("GET", "/ping") == {"ok": 1}
        assert route.call_count == 2

    @respx.mock
    async def test_a_permanent_error_is_not_retried_and_the_key_is_redacted(self) -> None:
        route = respx.get("https://api.test/3.0/ping").mock(
            return_value=httpx.Response(
                401, json={"title": "API Key Invalid", "detail": f"Your key {SECRET} is invalid"}
            )
        )
        async with httpx.AsyncClient() as http:
            with pytest.raises(ProviderAuthError) as caught:
                await transport(http).json("GET", "/ping")
        assert route.call_count == 1
        assert SECRET not in caught.value.message
        assert "***" in caught.value.message

    @respx.mock
    async def test_a_timeout_becomes_the_providers_transient_error_naming_the_endpoint(
        self,
    ) -> None:
        respx.get("https://api.test/3.0/contacts").mock(side_effect=httpx.ReadTimeout("slow"))
        async with httpx.AsyncClient() as http:
            with pytest.raises(brevo_errors.BrevoTransientError) as caught:
                await transport(http, brevo=True, retries=0).request(
                    "GET", "/contacts", label="GET /contacts"
                )
        assert "GET /contacts" in caught.value.message
        assert isinstance(caught.value, ProviderTransientError)

    @respx.mock
    async def test_brevo_reset_header_is_the_retry_after(self) -> None:
        respx.get("https://api.test/3.0/contacts").mock(
            return_value=httpx.Response(
                429,
                json={"code": "too_many_requests", "message": "slow down"},
                headers={"x-sib-ratelimit-reset": "7"},
            )
        )
        async with httpx.AsyncClient() as http:
            with pytest.raises(brevo_errors.BrevoTransientError) as caught:
                await transport(http, brevo=True, retries=0).request("GET", "/contacts")
        assert caught.value.retry_after == 7.0
