"""The kicks of the webhook drain that stored write-backs enqueue (`enqueue_apply`)."""

from __future__ import annotations

import app.webhooks.tasks  # noqa: F401  (registers the drain task)
from app.webhooks.jobs import enqueue_apply, enqueue_release
from app.worker.queue import job_buffer


def test_the_write_backs_of_one_transaction_share_one_kick_per_connection() -> None:
    """A full sync's page stored hundreds of write-backs with one kick each: hundreds of
    interactive jobs, and the run's own next steps gave way to them (`give_way`). Committed
    together, they need one drain: the first event's kick."""
    with job_buffer() as jobs:
        for event_id in (10, 11, 13):
            enqueue_apply(1, event_id)
        enqueue_apply(12, 12)  # another connection (the id prefix "…:1:" is not "…:12:")
        enqueue_apply(1, 14)
    assert [job.job_id for job in jobs] == ["webhooks.apply:1:10", "webhooks.apply:12:12"]
    assert [job.kwargs for job in jobs] == [{"connection_id": 1}, {"connection_id": 12}]


def test_each_transaction_kicks_again() -> None:
    """A later transaction's events get a kick of their own (a drain that ran before their
    commit may have finished)."""
    for event_id in (20, 21):
        with job_buffer() as jobs:
            enqueue_apply(1, event_id)
        assert [job.job_id for job in jobs] == [f"webhooks.apply:1:{event_id}"]


def test_a_plain_kick_and_a_release_are_not_swallowed() -> None:
    with job_buffer() as jobs:
        enqueue_apply(1, 30)
        enqueue_apply(1)  # a kick without an event (a reconnect's adopted events)
        enqueue_release(1)
    names = [job.job_id or "" for job in jobs]
    assert names[:2] == ["webhooks.apply:1:30", "webhooks.apply:1"]
    assert names[2].startswith("webhooks.apply:1:release:")
