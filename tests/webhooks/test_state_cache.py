"""The drain job's provider states (`app.webhooks.confirming.StateCache`): the listing cursor a
later batch goes on from, and the one a successor job takes over after a hand-over."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from app.webhooks.confirming import StateCache
from providers.base import ListingCursor

SINCE = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_a_later_read_goes_on_with_the_cursor_an_earlier_one_needs_a_new_one() -> None:
    cache = StateCache()
    cursor = cache.cursor_from(SINCE)
    cursor.offsets[0] = 3000
    # Events from later on: the listing since SINCE holds all they need.
    assert cache.cursor_from(SINCE + timedelta(minutes=1)) is cursor
    # An older event: the listing must start earlier, from the first page.
    older = cache.cursor_from(SINCE - timedelta(minutes=1))
    assert older is not cursor and older.offsets == {} and older.since < SINCE


def test_the_cursor_travels_to_the_successor_job() -> None:
    cache = StateCache()
    assert cache.hint([]) is None  # nothing listed yet: the successor starts afresh
    cursor = cache.cursor_from(SINCE)
    cursor.offsets.update({0: 29000, 1: 1000})
    # The listing read ahead of the drain: the next events' people were listed before 29000.
    cursor.positions.update({"a@x.de": (0, 27500), "b@x.de": (0, 28100), "c@x.de": (0, 100)})
    hint = json.loads(json.dumps(cache.hint(["b@x.de", "a@x.de", "new@x.de"])))  # job argument
    successor = StateCache()
    successor.take_hint(hint)
    assert successor.cursor == ListingCursor(SINCE, {0: 27500, 1: 1000})
    assert successor.cursor_from(SINCE + timedelta(seconds=5)).offsets == {0: 27500, 1: 1000}
    # A job that already listed keeps its own cursor; no hint changes nothing.
    successor.take_hint({"since": SINCE.isoformat(), "offsets": {"0": 5}})
    successor.take_hint(None)
    assert successor.cursor == ListingCursor(SINCE, {0: 27500, 1: 1000})


def test_a_kept_cursor_serves_its_own_list_only() -> None:
    """The cursor a drain job leaves for the connection's next job names its list: after a
    switch to another list the next job lists afresh."""
    cache = StateCache()
    cache.cursor_from(SINCE, "list-a").offsets[0] = 4000
    kept = json.loads(json.dumps(cache.hint([])))
    assert kept == {"since": SINCE.isoformat(), "offsets": {"0": 4000}, "list": "list-a"}
    same = StateCache()
    same.take_hint(kept)
    assert same.cursor_from(SINCE, "list-a").offsets == {0: 4000}
    other = StateCache()
    other.take_hint(kept)
    assert other.cursor_from(SINCE, "list-b").offsets == {}


def test_the_next_job_goes_on_after_the_last_person_wanted_not_where_the_listing_read_ahead() -> (
    None
):
    cache = StateCache()
    cursor = cache.cursor_from(SINCE, "list-a")
    # The last read wanted a and b; the listing read ahead to 5000 (its states die with the job).
    cursor.offsets.update({0: 5000, 1: 0})
    cursor.positions.update({"a@x.de": (0, 2100), "b@x.de": (0, 2450), "c@x.de": (0, 4800)})
    cache.last_wanted = ["a@x.de", "b@x.de"]
    assert cache.left_off() == {
        "since": SINCE.isoformat(),
        "offsets": {"0": 2451, "1": 0},
        "list": "list-a",
    }
