"""Per-tenant fairness at the edge: a token bucket per key (a tenant's API calls, a
connection's webhook deliveries), kept in this API process. Over the rate a request is
answered 429 with `Retry-After`; one tenant's flood then costs the others nothing but the
refusals' CPU. Several API processes each keep their own buckets (the limit is per process)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

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
