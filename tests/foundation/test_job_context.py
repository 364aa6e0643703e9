"""The typed job context and the one retry-or-fail decision."""

from __future__ import annotations

import pytest
from arq.worker import Retry

from app.resources import Resources
from app.worker.context import JobContext, retry_later, retry_or_fail
from providers.base import ProviderTransientError


async def test_the_context_reads_resources_try_and_the_limit(resources: Resources) -> None:
    job = JobContext.of({**resources.job_context(), "job_try": 3})
    assert job.resources is resources
    assert job.tries == {"job_try": 3, "max_tries": resources.settings.WORKER_MAX_TRIES}
    assert JobContext.of(resources.job_context()).job_try == 1  # in-process first run


def test_a_transient_failure_is_retried_while_tries_are_left() -> None:
    error = RuntimeError("busy")
    with pytest.raises(Retry) as caught:
        retry_or_fail(error, transient=True, job_try=1, max_tries=3, retry_after=42.0)
    assert caught.value.defer_score is not None and caught.value.defer_score >= 42_000
    assert caught.value.__cause__ is error


def test_the_last_try_and_permanent_failures_fall_through_to_the_caller() -> None:
    retry_or_fail(RuntimeError("busy"), transient=True, job_try=3, max_tries=3)
    retry_or_fail(RuntimeError("refused"), transient=False, job_try=1, max_tries=3)


def test_the_servers_retry_after_is_read_from_the_failure_itself() -> None:
    """Every transient failure leaves through `retry_or_fail`, which waits at least the
    Retry-After the provider sent (carried by the exception) without the caller passing it."""
    error = ProviderTransientError("429", retry_after=90.0)
    with pytest.raises(Retry) as caught:
        retry_or_fail(error, transient=True, job_try=1, max_tries=3, cap=1.0)
    assert caught.value.defer_score is not None and caught.value.defer_score >= 90_000


def test_waiting_for_a_busy_resource_is_a_retry_not_a_failure() -> None:
    with pytest.raises(Retry) as caught:
        retry_later(0.5)
    assert caught.value.defer_score == 500
