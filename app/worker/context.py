"""The typed view of what a job receives, and the one retry-or-fail decision.

arq hands a job a `ctx` dict (the in-process queue builds the same one: `Resources.job_context`
plus `job_try`). Jobs read it through `JobContext.of(ctx)` instead of string keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from arq.worker import Retry

from app.worker.queue import compute_backoff

if TYPE_CHECKING:
    from app.resources import Resources


@dataclass(frozen=True)
class JobContext:
    resources: Resources
    job_try: int
    max_tries: int

    @classmethod
    def of(cls, ctx: Mapping[str, Any]) -> JobContext:
        resources: Resources = ctx["resources"]
        return cls(
            resources=resources,
            job_try=int(ctx.get("job_try") or 1),
            max_tries=int(resources.settings.WORKER_MAX_TRIES),
        )

    @property
    def tries(self) -> dict[str, int]:
        """`job_try` and `max_tries` as keyword arguments of a job core."""
        return {"job_try": self.job_try, "max_tries": self.max_tries}


def retry_or_fail(
    exc: BaseException,
    *,
    transient: bool,
    job_try: int,
    max_tries: int,
    retry_after: float | None = None,
    cap: float = 300.0,
) -> None:
    """The one retry exit for a failure: raise arq's `Retry` for a transient failure while tries
    are left (with backoff, and at least the server's Retry-After: `retry_after`, else the
    exception's own); return otherwise, and the caller records the failure or re-raises."""
    if retry_after is None:
        retry_after = getattr(exc, "retry_after", None)
    if transient and job_try < max_tries:
        raise Retry(defer=max(compute_backoff(job_try, cap=cap), retry_after or 0.0)) from exc


def retry_later(defer_s: float) -> NoReturn:
    """Not a failure: the job runs again in `defer_s` seconds, because what it needs is busy
    (a lock another job holds, rows an earlier job still writes)."""
    raise Retry(defer=defer_s)
