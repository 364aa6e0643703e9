"""Parsing Mailchimp's form-encoded list webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import pytest

from providers.base import ProviderEventType
from providers.mailchimp import parse_webhook

SUBSCRIBE = [
    ("type", "subscribe"),
    ("fired_at", "2009-03-26 21:35:57"),
    ("data[id]", "8a25ff1d98"),
    ("data[list_id]", "a6b5da1054"),
    ("data[email]", "API@mailchimp.com"),
    ("data[email_type]", "html"),
    ("data[merges][EMAIL]", "api@mailchimp.com"),
    ("data[merges][FNAME]", "Mailchimp"),
    ("data[merges][LNAME]", "API"),
    ("data[merges][INTERESTS]", "Group1,Group2"),
    ("data[merges][ADDRESS][city]", "Berlin"),
    ("data[ip_opt]", "10.20.10.30"),
]


def unsubscribe(action: str | None, reason: str = "manual") -> list[tuple[str, str]]:
    form = [
        ("type", "unsubscribe"),
        ("fired_at", "2009-03-26 21:40:57"),
        ("data[reason]", reason),
        ("data[id]", "8a25ff1d98"),
        ("data[list_id]", "a6b5da1054"),
        ("data[email]", "api+unsub@mailchimp.com"),
        ("data[merges][FNAME]", "Mailchimp"),
        ("data[campaign_id]", "cb398d21d2"),
    ]
    if action is not None:
        form.insert(2, ("data[action]", action))
    return form


def test_subscribe() -> None:
    [event] = parse_webhook(SUBSCRIBE)
    assert event.type == ProviderEventType.subscribe
    assert event.email == "api@mailchimp.com"
    assert (event.first_name, event.last_name) == ("Mailchimp", "API")
    assert (event.list_id, event.provider_id) == ("a6b5da1054", "8a25ff1d98")
    assert event.occurred_at == datetime(2009, 3, 26, 21, 35, 57, tzinfo=UTC)
    assert event.raw_type == "subscribe"


def test_accepts_a_mapping_and_a_decoded_request_body() -> None:
    body = urlencode(SUBSCRIBE)
    from_pairs = parse_webhook(parse_qsl(body))
    from_mapping = parse_webhook(dict(SUBSCRIBE))
    assert from_pairs == from_mapping


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("unsub", ProviderEventType.unsubscribe),
        (None, ProviderEventType.unsubscribe),  # action is sometimes missing
        ("delete", ProviderEventType.deleted),
        ("archive", ProviderEventType.ignored),  # "Archive All" must not touch CRM consent
        ("something-new", ProviderEventType.deleted),
    ],
)
def test_unsubscribe_actions(action: str | None, expected: ProviderEventType) -> None:
    [event] = parse_webhook(unsubscribe(action))
    assert event.type == expected
    assert event.email == "api+unsub@mailchimp.com"
    assert event.campaign == "cb398d21d2"


def test_unsubscribe_reason_abuse() -> None:
    [event] = parse_webhook(unsubscribe("unsub", reason="abuse"))
    assert (event.type, event.reason) == (ProviderEventType.unsubscribe, "abuse")


def test_archive_reading_is_configurable() -> None:
    # If Mailchimp turns out to report archives as action=delete, treat delete as archive too.
    [event] = parse_webhook(unsubscribe("delete"), archive_actions={"archive", "delete"})
    assert event.type == ProviderEventType.ignored
    [event] = parse_webhook(unsubscribe("archive"), archive_event=ProviderEventType.deleted)
    assert event.type == ProviderEventType.deleted


def test_profile() -> None:
    form = [(k, v) for k, v in SUBSCRIBE if k != "type"] + [("type", "profile")]
    [event] = parse_webhook(form)
    assert event.type == ProviderEventType.profile
    assert event.first_name == "Mailchimp"


def test_upemail() -> None:
    [event] = parse_webhook(
        {
            "type": "upemail",
            "fired_at": "2009-03-26 22:15:09",
            "data[list_id]": "a6b5da1054",
            "data[new_id]": "51da8c3259",
            "data[new_email]": "API+new@mailchimp.com",
            "data[old_email]": "api+old@mailchimp.com",
        }
    )
    assert event.type == ProviderEventType.email_changed
    assert (event.email, event.new_email) == ("api+old@mailchimp.com", "api+new@mailchimp.com")
    assert event.provider_id == "51da8c3259"


def test_cleaned() -> None:
    [event] = parse_webhook(
        {
            "type": "cleaned",
            "fired_at": "2009-03-26 22:01:00",
            "data[list_id]": "a6b5da1054",
            "data[campaign_id]": "4fjk2ma9xd",
            "data[reason]": "hard",
            "data[email]": "api+cleaned@mailchimp.com",
        }
    )
    assert event.type == ProviderEventType.cleaned
    assert (event.reason, event.campaign) == ("hard", "4fjk2ma9xd")


def test_campaign_is_a_cue_not_a_contact_event() -> None:
    [event] = parse_webhook(
        {
            "type": "campaign",
            "fired_at": "2009-03-26 21:31:21",
            "data[id]": "5aa2102003",
            "data[subject]": "Test Campaign Subject",
            "data[status]": "sent",
            "data[reason]": "",
            "data[list_id]": "a6b5da1054",
        }
    )
    assert event.type == ProviderEventType.ignored
    assert (event.raw_type, event.campaign, event.reason) == ("campaign", "5aa2102003", "sent")
    assert event.email == ""


def test_unknown_type_is_ignored_and_empty_body_has_no_events() -> None:
    [event] = parse_webhook({"type": "sms_subscribe", "data[email]": "x@example.com"})
    assert event.type == ProviderEventType.ignored
    assert parse_webhook({}) == []


class TestDedupeKey:
    def test_stable_across_redelivery_and_field_order(self) -> None:
        [a] = parse_webhook(SUBSCRIBE)
        [b] = parse_webhook(list(reversed(SUBSCRIBE)))
        assert a.dedupe_key == b.dedupe_key

    def test_differs_when_content_differs(self) -> None:
        keys = {
            parse_webhook(form)[0].dedupe_key
            for form in (
                SUBSCRIBE,
                [(k, "2009-03-26 21:35:58" if k == "fired_at" else v) for k, v in SUBSCRIBE],
                [(k, "Other" if k == "data[merges][FNAME]" else v) for k, v in SUBSCRIBE],
                unsubscribe("unsub"),
                unsubscribe("delete"),
            )
        }
        assert len(keys) == 5
