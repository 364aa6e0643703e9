"""The retry loop both provider clients wrap around one HTTP call.

Only `ProviderTransientError` is retried (429, 5xx, network); permanent errors propagate at
once. The wait is the provider's jittered exponential backoff, or the server's Retry-After
when it sent one, capped at `max_wait` (plus `retry_after_jitter` so clients that were told the
same instant do not return together).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base

from providers.base import ProviderTransientError

T = TypeVar("T")


class RetryPolicy:
    """`await policy.call(fn)` runs `fn` up to `max_retries + 1` times.

    `log_extra(error)` adds provider-specific fields to the `<log_event>` warning logged before
    each sleep (with `attempt` and `delay`).
    """

    def __init__(
        self,
        *,
        max_retries: int,
        backoff: wait_base,
        max_wait: float,
        logger: logging.Logger,
        log_event: str,
        log_extra: Callable[[BaseException | None], dict[str, Any]],
        retry_after_jitter: float = 0.0,
    ) -> None:
        self.max_retries = max(0, max_retries)
        self._backoff = backoff
        self._max_wait = max_wait
        self._retry_after_jitter = retry_after_jitter
        self._logger = logger
        self._log_event = log_event
        self._log_extra = log_extra

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ProviderTransientError),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            before_sleep=self._log,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await fn()
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProviderTransientError) and error.retry_after is not None:
            delay = min(error.retry_after, self._max_wait)
            if self._retry_after_jitter:
                delay += random.uniform(0, self._retry_after_jitter)
            return delay
        return float(self._backoff(state))

    def _log(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self._logger.warning(
            self._log_event,
            extra={
                "attempt": state.attempt_number,
                "delay": state.next_action.sleep if state.next_action else None,
                **self._log_extra(error),
            },
        )
