"""The one transport both provider clients send through.

It sends a request, passes it through the provider's gate (Mailchimp: a slot of the shared
connection limiter; Brevo: the shared `/contacts` pacer), turns httpx failures into the
provider's transient error, turns an error answer into the provider's taxonomy
(`errors.from_response`), applies the retry policy and redacts the API key from every message.
`parse_retry_after` is the one reading of Retry-After style headers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from email.utils import parsedate_to_datetime
from typing import Any, Self

import httpx

from providers._retry import RetryPolicy
from providers.base import ProviderError, ProviderTransientError

# endpoint label -> gate entered around the request
Gate = Callable[[str], AbstractAsyncContextManager[None]]
# (response, endpoint label, redact) -> the provider's error for that answer
ErrorMapper = Callable[[httpx.Response, str, Callable[[str], str]], ProviderError]
# (message, endpoint label) -> the provider's transient error
TransientFactory = Callable[[str, str], ProviderTransientError]


@contextlib.asynccontextmanager
async def _open_gate(_: str) -> AsyncIterator[None]:
    yield


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After value: delta-seconds or an HTTP date; None when absent or
    unreadable. Never negative."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_after_from(response: httpx.Response, headers: Sequence[str]) -> float | None:
    """The first readable wait among `headers` (in that order)."""
    for header in headers:
        seconds = parse_retry_after(response.headers.get(header))
        if seconds is not None:
            return seconds
    return None


class HttpOwner:
    """`aclose` and `async with` for a client that made its own httpx client (a shared one,
    passed in, is left open for its owner)."""

    _http: httpx.AsyncClient
    _owns_http: bool

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Transport:
    """`await transport.request(...)` returns the successful `httpx.Response` or raises the
    provider's error after the retry policy gave up (permanent errors at once)."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        http: httpx.AsyncClient,
        timeout: httpx.Timeout | float,
        retry: RetryPolicy,
        secrets: Sequence[str],
        error_from_response: ErrorMapper,
        transient: TransientFactory,
        gate: Gate | None = None,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._timeout = timeout
        self._retry = retry
        self._secrets = [s for s in secrets if s]
        self._error_from_response = error_from_response
        self._transient = transient
        self._gate = gate or _open_gate
        self._auth = auth
        self._headers = dict(headers or {})

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def request(
        self,
        method: str,
        path: str,
        *,
        label: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        """One API call with retries (`retry=False`: one try; the caller retries)."""
        endpoint = label or path
        if not retry:
            return await self._send(method, path, endpoint, params, json, content, headers)
        return await self._retry.call(
            lambda: self._send(method, path, endpoint, params, json, content, headers)
        )

    async def json(self, method: str, path: str, **options: Any) -> Any:
        """`request` (same options), decoded: the JSON body, or {} when there is none. An
        unreadable success body is a transient error (a truncated answer)."""
        response = await self.request(method, path, **options)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            endpoint = options.get("label") or path
            raise self._transient(
                f"{self.provider} sent an unreadable answer to {endpoint}.", endpoint
            ) from exc

    async def _send(
        self,
        method: str,
        path: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        try:
            async with self._gate(path):
                response = await self._http.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=json,
                    content=content,
                    headers={**self._headers, **(headers or {})},
                    auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                    timeout=self._timeout,
                )
        except httpx.TimeoutException as exc:
            raise self._transient(
                f"{self.provider} did not answer {endpoint} in time ({type(exc).__name__}).",
                endpoint,
            ) from exc
        except httpx.TransportError as exc:
            raise self._transient(
                f"{self.provider} could not be reached for {endpoint} ({type(exc).__name__}).",
                endpoint,
            ) from exc
        except TimeoutError as exc:  # the gate found no free slot in time
            raise self._transient(
                f"Too many requests to {self.provider} are in progress; try again later.",
                endpoint,
            ) from exc
        if response.is_success:
            return response
        raise self._error_from_response(response, endpoint, self.redact)
