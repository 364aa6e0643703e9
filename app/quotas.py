"""Per-tenant fairness at the edge: a token bucket per key (a tenant's API calls, a
connection's webhook deliveries), kept in this API process. Over the rate a request is
answered 429 with `Retry-After`; one tenant's flood then costs the others nothing but the
refusals' CPU. Several API processes each keep their own buckets (the limit is per process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import AppError


class TooManyRequests(AppError, status=429, code="too_many_requests"):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("err.too_many_requests")
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`rate` tokens per second up to `burst`, per key; at most `max_keys` keys are kept (the
    least recently used go first: a forgotten key starts full again)."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[object, _Bucket] = OrderedDict()

    def take(self, key: object, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until a token is there."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def check(self, key: object) -> None:
        wait = self.take(key)
        if wait:
            raise TooManyRequests(wait)


class InFlight:
    """At most `limit` requests of one key at a time in this API process; more wait up to
    `wait_s` for a slot (waiting costs a coroutine, no database connection, no body read),
    then are refused. A tenant's flood then holds at most `limit` of the process's event loop
    turns and pooled database connections, whatever its rate: another tenant's request waits
    behind those few, not behind the whole flood. 0 = no limit."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self._slots: dict[object, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, key: object) -> AsyncIterator[bool]:
        """Yields True with a slot held, False when none came free within `wait_s`."""
        if self.limit <= 0:
            yield True
            return
        found = self._slots.get(key)
        if found is None:
            found = self._slots[key] = (asyncio.Semaphore(self.limit), [0])
        semaphore, users = found
        users[0] += 1
        try:
            try:
                await asyncio.wait_for(semaphore.acquire(), self.wait_s)
            except TimeoutError:
                yield False
                return
            try:
                yield True
            finally:
                semaphore.release()
        finally:
            users[0] -= 1
            if not users[0]:
                self._slots.pop(key, None)


RETRY_AFTER_S = 1


class FairShare:
    """ASGI middleware: the in-flight limits per tenant (`/api/v1`, by the bearer session's
    tenant) and per webhook address (`/webhooks/{provider}/{token}`). A request whose tenant
    cannot be told (no or an invalid session) is not limited here: the route refuses it. Too
    long a wait is answered 429 (a webhook: its provider's "deliver again" status) with
    Retry-After."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api: InFlight,
        webhooks: InFlight,
        retry_status: Mapping[str, int],
        tenant_of: Callable[[Scope, str], int | None],
    ) -> None:
        self.app = app
        self.api = api
        self.webhooks = webhooks
        self.retry_status = retry_status
        self.tenant_of = tenant_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key, limiter, status = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        async with limiter.slot(key) as held:
            if held:
                await self.app(scope, receive, send)
                return
        await _refuse(send, status)

    def _key(self, scope: Scope) -> tuple[object | None, InFlight, int]:
        if scope["type"] != "http":
            return None, self.api, 429
        path: str = scope.get("path", "")
        if path.startswith("/webhooks/") and scope.get("method") == "POST":
            parts = path.split("/", 3)  # "", "webhooks", provider, token
            if len(parts) == 4 and parts[3]:
                status = self.retry_status.get(parts[2], 429)
                return ("hook", parts[2], parts[3]), self.webhooks, status
            return None, self.api, 429
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/sessions"):
            return None, self.api, 429
        authorization = dict(scope.get("headers") or ()).get(b"authorization", b"")
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None, self.api, 429
        tenant_id = self.tenant_of(scope, credentials.strip())
        return (("tenant", tenant_id) if tenant_id is not None else None), self.api, 429


async def _refuse(send: Send, status: int) -> None:
    body = json.dumps(
        {"error": "too_many_requests", "message": "too many requests at once; try again later"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
