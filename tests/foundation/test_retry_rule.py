"""One retry exit: no job outside app/worker/ builds arq's `Retry` itself.

A transient failure goes through `app.worker.context.retry_or_fail` (backoff, at least the
server's Retry-After, the last try falls through to the caller); a job that waits for a busy
resource says so with `retry_later`. A bare `raise Retry(...)` elsewhere ignored Retry-After.
"""

from __future__ import annotations

import re

from tests.foundation.scan import app_code_lines

BARE = re.compile(r"(?<![\w.])(arq\.worker\.)?Retry\(")


def test_no_bare_retry_outside_the_worker() -> None:
    offenders = [
        place
        for place, code in app_code_lines(lambda rel: rel.startswith("app/worker/"))
        if BARE.search(code)
    ]
    assert not offenders, "Retry built outside app/worker/:\n" + "\n".join(offenders)


def test_the_rule_sees_a_bare_retry() -> None:
    assert BARE.search("raise Retry(defer=5) from exc")
    assert BARE.search("        raise Retry(defer=compute_backoff(job_try, cap=120))")
    assert not BARE.search("retry_or_fail(exc, transient=True, job_try=1, max_tries=3)")
    assert not BARE.search("class ShouldRetry(Exception):")
