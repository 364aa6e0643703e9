"""Fixtures: the Mailchimp emulator mounted in-process, and a client talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from emulators.mailchimp import DEFAULT_API_KEY, MailchimpState, create_app
from providers.mailchimp import MailchimpClient

BASE_URL_TEMPLATE = "http://mailchimp.test/3.0"


@pytest.fixture
def state() -> MailchimpState:
    return MailchimpState()


@pytest.fixture
async def http(state: MailchimpState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client
    # Every request the client made must have matched the Mailchimp spec.
    assert state.spec_violations == []


@pytest.fixture
def make_client(http: httpx.AsyncClient) -> Callable[..., MailchimpClient]:
    def make(**overrides: Any) -> MailchimpClient:
        options: dict[str, Any] = {
            "api_key": DEFAULT_API_KEY,
            "base_url_template": BASE_URL_TEMPLATE,
            "http": http,
            "backoff_base_s": 0.001,
            "max_backoff_s": 0.01,
        }
        return MailchimpClient(**(options | overrides))

    return make


@pytest.fixture
def client(make_client: Callable[..., MailchimpClient]) -> MailchimpClient:
    return make_client()
