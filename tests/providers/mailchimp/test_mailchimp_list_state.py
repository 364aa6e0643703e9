"""Reading the audience state in parallel pages, and segment ids shared by a process's clients
(request counts taken from the emulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from emulators.mailchimp import MailchimpState
from providers.base import ContactData, FieldMapping
from providers.limits import LocalConcurrencyLimiter
from providers.mailchimp import MailchimpClient
from providers.mailchimp.tags import SegmentCache

MEMBERS = "GET /3.0/lists/{list_id}/members"
LIST_SEGMENTS = "GET /3.0/lists/{list_id}/segments"
MAPPING = FieldMapping(first_name="FNAME", last_name="LNAME")


def seed(state: MailchimpState, n: int) -> str:
    list_id = state.create_list("onoffice").id
    for i in range(n):
        status = "unsubscribed" if i % 10 == 0 else "subscribed"
        state.seed_member(list_id, f"m{i}@example.com", status=status, tags=["Kunde"] * (i % 2))
    return list_id


async def read_all(client: MailchimpClient, list_id: str, **kw: int) -> list[list[str]]:
    pages = []
    async for page in client.iter_list_state(list_id, **kw):
        pages.append([c.email for c in page])
    return pages


async def test_every_member_once_with_status_tags_and_last_change(
    client: MailchimpClient, state: MailchimpState
) -> None:
    list_id = seed(state, 2500)
    seen = {}
    async for page in client.iter_list_state(list_id):
        for contact in page:
            assert contact.email not in seen
            seen[contact.email] = contact
    assert len(seen) == 2500
    assert state.request_counts[MEMBERS] == 3  # ceil(2500 / 1000): one read per page, once
    m0, m1 = seen["m0@example.com"], seen["m1@example.com"]
    assert (m0.status, m0.subscribed, m0.tags) == ("unsubscribed", False, [])
    assert (m1.status, m1.subscribed, m1.tags) == ("subscribed", True, ["Kunde"])
    assert m1.last_changed is not None and m1.last_changed.tzinfo is not None


async def test_pages_are_read_concurrently_up_to_the_given_limit(
    make_client: Callable[..., MailchimpClient], state: MailchimpState
) -> None:
    list_id = seed(state, 950)
    state.latency_s = 0.02
    client = make_client(page_size=100)
    pages = await read_all(client, list_id, concurrency=3)
    assert sorted(len(p) for p in pages) == [50] + [100] * 9
    assert state.request_counts[MEMBERS] == 10
    assert state.max_concurrency == 3


async def test_reading_leaves_connections_for_writes(
    make_client: Callable[..., MailchimpClient], state: MailchimpState
) -> None:
    """Reads and a batch share the key's limiter; the batch is not queued behind every page."""
    list_id = seed(state, 2000)
    state.latency_s = 0.05
    limiter = LocalConcurrencyLimiter(10)
    reader = make_client(page_size=100, limiter=limiter)
    writer = make_client(limiter=limiter)
    read = asyncio.ensure_future(read_all(reader, list_id, concurrency=4))
    await asyncio.sleep(0.01)
    await writer.upsert_contacts(list_id, [ContactData(email="new@example.com")], MAPPING)
    pages_before_the_write = state.request_counts[MEMBERS]
    reading = not read.done()
    await read
    # The batch went out while the 20 pages were still being read, not after all of them.
    assert reading and pages_before_the_write < 20
    assert state.max_concurrency <= 5 and state.concurrency_rejections == 0


async def test_a_fresh_client_per_job_reuses_the_process_segment_cache(
    make_client: Callable[..., MailchimpClient], state: MailchimpState
) -> None:
    list_id = state.create_list("onoffice").id
    cache = SegmentCache()
    for job in range(3):
        client = make_client(segment_cache=cache)
        contacts = [ContactData(email=f"j{job}-{i}@example.com", tags=["Kunde"]) for i in range(5)]
        await client.upsert_contacts(list_id, contacts, MAPPING)
    assert state.request_counts[LIST_SEGMENTS] == 1  # read once, then created once, cached


async def test_without_a_shared_cache_each_client_reads_the_segments(
    make_client: Callable[..., MailchimpClient], state: MailchimpState
) -> None:
    list_id = state.create_list("onoffice").id
    for job in range(3):
        contacts = [ContactData(email=f"j{job}-{i}@example.com", tags=["Kunde"]) for i in range(5)]
        await make_client().upsert_contacts(list_id, contacts, MAPPING)
    assert state.request_counts[LIST_SEGMENTS] == 3


async def test_cache_entries_expire_and_are_kept_per_api_key() -> None:
    cache = SegmentCache(ttl_s=0.0, max_lists=2)
    cache.put("key-a", "l1", {"Kunde": 1})
    assert cache.get("key-a", "l1") is None  # expired at once
    cache = SegmentCache(max_lists=2)
    cache.put("key-a", "l1", {"Kunde": 1})
    assert cache.get("key-b", "l1") is None
    cache.put("key-a", "l2", {})
    cache.put("key-a", "l3", {})
    assert cache.get("key-a", "l1") is None and cache.get("key-a", "l3") == {}
