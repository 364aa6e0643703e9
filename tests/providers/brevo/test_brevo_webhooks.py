import json
from datetime import UTC, datetime

import pytest

from providers.base import ProviderEventType as T
from providers.brevo import parse_webhook

CAMPAIGN = {"id": 123, "camp_id": 45, "email": "Example@Domain.com",
            "campaign name": "My First Campaign", "date_sent": "2020-10-09 00:00:00",
            "date_event": "2020-10-09 00:00:00", "tag": "", "ts_sent": 1604933619,
            "ts_event": 1604933737, "ts": 1604937337}  # fmt: skip
CONTACT = {"id": 123, "email": "example@domain.com", "key": "xxxxxxxxxxxxxxxxxx",
           "date": "2020-10-09 00:00:00", "ts": 1604937111}  # fmt: skip


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("unsubscribed", T.unsubscribe), ("unsubscribe", T.unsubscribe),
        ("spam", T.unsubscribe),
        ("hard_bounce", T.hard_bounce), ("hardBounce", T.hard_bounce),
        ("hard_bounced", T.hard_bounce),
        ("click", T.clicked), ("clicked", T.clicked),
        ("opened", T.opened), ("unique_opened", T.opened), ("uniqueOpened", T.opened),
        ("delivered", T.delivered),
        ("soft_bounce", T.ignored), ("softBounce", T.ignored), ("something_new", T.ignored),
    ],
)  # fmt: skip
def test_campaign_event_spellings(spelling: str, expected: T) -> None:
    [event] = parse_webhook({**CAMPAIGN, "event": spelling})
    assert event.type is expected
    assert event.raw_type == spelling
    assert event.email == "example@domain.com"
    assert event.occurred_at == datetime.fromtimestamp(1604933737, UTC)
    assert event.campaign == "My First Campaign"


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [("list_addition", T.subscribe), ("listAddition", T.subscribe),
     ("contact_deleted", T.deleted), ("contactDeleted", T.deleted),
     ("contact_updated", T.profile), ("contactUpdated", T.profile)],
)  # fmt: skip
def test_contact_event_spellings(spelling: str, expected: T) -> None:
    [event] = parse_webhook({**CONTACT, "event": spelling})
    assert event.type is expected
    assert event.occurred_at == datetime.fromtimestamp(1604937111, UTC)


def test_unsubscribe_yields_one_event_per_list() -> None:
    events = parse_webhook({**CAMPAIGN, "event": "unsubscribed", "list_id": [3, 42]})
    assert [e.list_id for e in events] == ["3", "42"]
    assert len({e.dedupe_key for e in events}) == 2


def test_click_carries_url_and_bounce_reason() -> None:
    [click] = parse_webhook({**CAMPAIGN, "event": "click", "URL": "https://x.test/a"})
    [bounce] = parse_webhook({**CAMPAIGN, "event": "hard_bounce", "reason": "no mailbox"})
    assert click.url == "https://x.test/a"
    assert bounce.reason == "no mailbox"


@pytest.mark.parametrize(
    "content",
    [{"VORNAME": "Max", "NACHNAME": "Muster"}, [{"VORNAME": "Max"}, {"NACHNAME": "Muster"}]],
)
def test_contact_updated_content_as_dict_or_list(content: object) -> None:
    [event] = parse_webhook({**CONTACT, "event": "contact_updated", "content": content})
    assert (event.first_name, event.last_name) == ("Max", "Muster")


@pytest.mark.parametrize(
    "content", [{"EMAIL": "New@Domain.com", "VORNAME": "Max"}, [{"email": "new@domain.com"}]]
)
def test_contact_updated_with_another_email_is_an_email_change(content: object) -> None:
    [event] = parse_webhook({**CONTACT, "event": "contact_updated", "content": content})
    assert (event.type, event.email, event.new_email) == (
        T.email_changed, "example@domain.com", "new@domain.com"
    )  # fmt: skip
    same = {"EMAIL": "Example@Domain.com", "VORNAME": "Max"}  # the same address: a profile change
    [profile] = parse_webhook({**CONTACT, "event": "contact_updated", "content": same})
    assert (profile.type, profile.new_email) == (T.profile, None)
    [deleted] = parse_webhook({**CONTACT, "event": "contact_deleted", "content": content})
    assert (deleted.type, deleted.new_email) == (T.deleted, None)


def test_batched_array_and_raw_bytes() -> None:
    batch = [{**CAMPAIGN, "event": "opened"}, {**CONTACT, "event": "list_addition",
             "list_id": [7]}, "garbage", {"event": "opened"}]  # fmt: skip
    events = parse_webhook(json.dumps(batch).encode())
    assert [e.type for e in events] == [T.opened, T.subscribe]
    assert events[1].list_id == "7"


def test_dedupe_keys_are_stable_and_distinguish_events() -> None:
    opened = {**CAMPAIGN, "event": "opened"}
    assert parse_webhook(opened)[0].dedupe_key == parse_webhook(dict(opened))[0].dedupe_key
    later = parse_webhook({**opened, "ts_event": 1604933800})[0].dedupe_key
    other_url = parse_webhook({**CAMPAIGN, "event": "click", "URL": "https://b"})[0].dedupe_key
    click = parse_webhook({**CAMPAIGN, "event": "click", "URL": "https://a"})[0].dedupe_key
    assert len({parse_webhook(opened)[0].dedupe_key, later, other_url, click}) == 4
    # the same event spelled differently by another Brevo generation is still the same event
    hb1 = parse_webhook({**CAMPAIGN, "event": "hard_bounce"})[0].dedupe_key
    hb2 = parse_webhook({**CAMPAIGN, "event": "hardBounce"})[0].dedupe_key
    assert hb1 == hb2


def test_event_id_field_is_preferred() -> None:
    a = parse_webhook({**CAMPAIGN, "event": "opened", "uuid": "u-1"})[0].dedupe_key
    b = parse_webhook({**CAMPAIGN, "event": "opened", "uuid": "u-1", "ts": 1})[0].dedupe_key
    c = parse_webhook({**CAMPAIGN, "event": "opened", "uuid": "u-2"})[0].dedupe_key
    assert a == b != c


def test_api_key_name_becomes_source() -> None:
    [ours] = parse_webhook({**CONTACT, "event": "contact_updated", "api_key_name": "crm-sync"})
    [ui] = parse_webhook({**CONTACT, "event": "list_addition", "api_key_name": ""})
    [old] = parse_webhook({**CONTACT, "event": "list_addition"})
    assert (ours.source, ui.source, old.source) == ("api:crm-sync", "ui", None)
