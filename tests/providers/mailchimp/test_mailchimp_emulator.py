"""The Mailchimp emulator itself: limits, faults, spec checks, control API, speed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from emulators.mailchimp import DEFAULT_API_KEY, MailchimpState, create_app, subscriber_hash


@pytest.fixture
async def raw(state: MailchimpState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://mc.test", auth=("x", DEFAULT_API_KEY)
    ) as client:
        yield client


async def test_more_than_ten_simultaneous_requests_get_429(
    raw: httpx.AsyncClient, state: MailchimpState
) -> None:
    state.latency_s = 0.2
    responses = await asyncio.gather(*(raw.get("/3.0/ping") for _ in range(14)))
    limited = [r for r in responses if r.status_code == 429]
    assert len(limited) == 4
    assert limited[0].headers["content-type"] == "application/problem+json"
    assert limited[0].json()["title"] == "Too Many Requests"
    assert state.concurrency_rejections == 4 and state.max_concurrency > 10


async def test_unknown_key_is_401(raw: httpx.AsyncClient) -> None:
    response = await raw.get("/3.0/ping", auth=("x", "nope-us1"))
    assert response.status_code == 401
    assert response.json()["title"] == "API Key Invalid"


async def test_injected_faults_in_order(raw: httpx.AsyncClient) -> None:
    await raw.post("/_control/faults", json={"status": 403, "bodiless": True})
    await raw.post("/_control/faults", json={"status": 429, "retry_after": 2})
    first = await raw.get("/3.0/ping")
    assert (first.status_code, first.content) == (403, b"")
    second = await raw.get("/3.0/ping")
    assert second.status_code == 429 and second.headers["Retry-After"] == "2"
    assert (await raw.get("/3.0/ping")).status_code == 200


async def test_non_conforming_body_is_400_and_counted(
    raw: httpx.AsyncClient, state: MailchimpState
) -> None:
    lst = state.create_list("onoffice")
    response = await raw.put(
        f"/3.0/lists/{lst.id}/members/{subscriber_hash('a@example.com')}",
        json={"email_address": "a@example.com"},  # status_if_new is required
    )
    assert response.status_code == 400
    stats = (await raw.get("/_control/stats")).json()
    assert stats["spec_violations"] == 1
    assert "status_if_new" in stats["spec_violation_samples"][0]
    state.spec_violations.clear()


async def test_batch_limits_and_paging_limits(
    raw: httpx.AsyncClient, state: MailchimpState
) -> None:
    lst = state.create_list("onoffice")
    members = [{"email_address": f"a{n}@example.com", "status": "subscribed"} for n in range(501)]
    assert (await raw.post(f"/3.0/lists/{lst.id}", json={"members": members})).status_code == 400
    page = await raw.get(f"/3.0/lists/{lst.id}/members", params={"count": 1001})
    assert page.status_code == 400


async def test_fields_filter_and_control_seeding(raw: httpx.AsyncClient) -> None:
    created = (await raw.post("/_control/lists", json={"name": "onoffice"})).json()
    await raw.post(
        f"/_control/lists/{created['id']}/members",
        json={"members": [{"email": "a@example.com", "tags": ["T"], "status": "cleaned"}]},
    )
    page = await raw.get(
        f"/3.0/lists/{created['id']}/members",
        params={"fields": "members.email_address,members.tags.name,total_items"},
    )
    assert page.json() == {
        "members": [{"email_address": "a@example.com", "tags": [{"name": "T"}]}],
        "total_items": 1,
    }
    seen = (await raw.get(f"/_control/lists/{created['id']}/members")).json()["members"]
    assert seen == [
        {"email": "a@example.com", "status": "cleaned", "merge_fields": {}, "tags": ["T"]}
    ]


async def test_cleaned_member_cannot_be_resubscribed(
    raw: httpx.AsyncClient, state: MailchimpState
) -> None:
    lst = state.create_list("onoffice")
    state.seed_member(lst.id, "c@example.com", status="cleaned")
    response = await raw.patch(
        f"/3.0/lists/{lst.id}/members/{subscriber_hash('c@example.com')}",
        json={"status": "subscribed"},
    )
    assert response.json()["title"] == "Member In Compliance State"


async def test_a_hundred_thousand_members_page_through_completely(
    raw: httpx.AsyncClient, state: MailchimpState
) -> None:
    lst = state.create_list("onoffice")
    for start in range(0, 20_000, 500):
        members = [
            {
                "email_address": f"m{n}@example.com",
                "status": "subscribed",
                "merge_fields": {"FNAME": "A"},
            }
            for n in range(start, start + 500)
        ]
        response = await raw.post(f"/3.0/lists/{lst.id}", json={"members": members})
        assert response.json()["total_created"] == 500
    for n in range(20_000, 100_000):
        state.seed_member(lst.id, f"m{n}@example.com")
    offset, seen = 0, 0
    while True:
        page = (
            await raw.get(
                f"/3.0/lists/{lst.id}/members",
                params={
                    "count": 1000,
                    "offset": offset,
                    "fields": "members.email_address,total_items",
                },
            )
        ).json()
        seen += len(page["members"])
        offset += 1000
        if offset >= page["total_items"]:
            break
    assert seen == 100_000


async def test_static_segments_are_the_member_tags(
    raw: httpx.AsyncClient, state: MailchimpState
) -> None:
    lst = state.create_list("onoffice")
    for email in ("a@example.com", "b@example.com"):
        state.seed_member(lst.id, email)
    state.seed_member(lst.id, "gone@example.com", status="archived")
    base = f"/3.0/lists/{lst.id}/segments"
    kunde = await raw.post(base, json={"name": "Kunde", "static_segment": ["a@example.com"]})
    kunde_id = kunde.json()["id"]
    assert (kunde.json()["type"], kunde.json()["member_count"]) == ("static", 1)
    duplicate = await raw.post(base, json={"name": "Kunde", "static_segment": []})
    assert duplicate.status_code == 400
    # a tag set through the member tags endpoint is a segment too
    await raw.post(
        f"/3.0/lists/{lst.id}/members/{subscriber_hash('b@example.com')}/tags",
        json={"tags": [{"name": "Neu", "status": "active"}]},
    )
    listed = await raw.get(
        base,
        params={"type": "static", "count": 1, "offset": 1, "fields": "segments.name,total_items"},
    )
    assert listed.json() == {"segments": [{"name": "Neu"}], "total_items": 2}
    assert (await raw.get(base, params={"type": "saved"})).json()["total_items"] == 0

    answer = await raw.post(
        f"{base}/{kunde_id}",
        json={
            "members_to_add": ["B@example.com", "gone@example.com", "nobody@example.com"],
            "members_to_remove": ["a@example.com"],
        },
    )
    body = answer.json()
    assert [m["email_address"] for m in body["members_added"]] == ["b@example.com"]
    assert [m["email_address"] for m in body["members_removed"]] == ["a@example.com"]
    assert body["errors"] == [
        {
            "email_addresses": ["gone@example.com", "nobody@example.com"],
            "error": "Email addresses are not list members.",
        }
    ]
    assert (body["total_added"], body["total_removed"], body["error_count"]) == (1, 1, 2)
    seen = {m["email"]: m["tags"] for m in state_members(state, lst.id)}
    assert seen == {"a@example.com": [], "b@example.com": ["Neu", "Kunde"], "gone@example.com": []}
    one = (await raw.get(f"{base}/{kunde_id}", params={"fields": "name,member_count"})).json()
    assert one == {"name": "Kunde", "member_count": 1}

    assert (await raw.get(f"{base}/999999")).status_code == 404
    too_many = [f"x{n}@example.com" for n in range(501)]
    assert (
        await raw.post(f"{base}/{kunde_id}", json={"members_to_add": too_many})
    ).status_code == 400
    assert state.spec_violations == []


def state_members(state: MailchimpState, list_id: str) -> list[dict[str, object]]:
    return [{"email": m.email, "tags": list(m.tags)} for m in state.lists[list_id].members.values()]
