"""One retry exit: no job outside app/worker/ builds arq's `Retry` itself.

A transient failure goes through `app.worker.context.retry_or_fail` (backoff, at least the
server's Retry-After, the last try falls through to the caller); a job that waits for a busy
resource says so with `retry_later`. A bare `raise Retry(...)` elsewhere ignored Retry-After.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BARE = re.compile(r"(?<![\w.])(arq\.worker\.)?Retry\(")


def test_no_bare_retry_outside_the_worker() -> None:
    offenders = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("app/worker/"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if BARE.search(code):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "Retry built outside app/worker/:\n" + "\n".join(offenders)


def test_the_rule_sees_a_bare_retry() -> None:
    assert BARE.search("raise Retry(defer=5) from exc")
    assert BARE.search("        raise Retry(defer=compute_backoff(job_try, cap=120))")
    assert not BARE.search("retry_or_fail(exc, transient=True, job_try=1, max_tries=3)")
    assert not BARE.search("class ShouldRetry(Exception):")
