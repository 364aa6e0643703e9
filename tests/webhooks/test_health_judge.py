"""The webhook health verdict (pure): what is wrong with the provider's webhook and what
repairs it, for each provider's wanted setup."""

from __future__ import annotations

from app.webhooks.health import judge_webhook
from providers.base import WebhookSetup, WebhookState
from providers.brevo.setup import WEBHOOK_EVENTS
from providers.brevo.setup import webhook_setup as brevo_setup
from providers.mailchimp.audience import webhook_setup as mailchimp_setup

URL = "https://connector.example/webhooks/mailchimp/tok"
REQUIRED = {"subscribe", "unsubscribe", "profile", "cleaned", "upemail"}
SOURCES = {"user": True, "admin": True, "api": False}


def mailchimp(**kw: object) -> WebhookState:
    values: dict[str, object] = {
        "id": "h1",
        "url": URL,
        "events": frozenset(REQUIRED),
        "sources": dict(SOURCES),
    }
    return WebhookState.model_validate(values | kw)


def test_a_webhook_as_wanted_is_ok() -> None:
    wanted = mailchimp_setup(URL, {"delivered": False})
    verdict = judge_webhook(wanted, [mailchimp()], "h1")
    assert (verdict.action, verdict.webhook_id, verdict.problems) == ("ok", "h1", ())


def test_a_missing_webhook_is_registered_again() -> None:
    wanted = mailchimp_setup(URL, {})
    other = mailchimp(id="x", url="https://elsewhere.example/hook")
    verdict = judge_webhook(wanted, [other], "h1")
    assert (verdict.action, verdict.webhook_id) == ("register", None)
    assert verdict.problems == ("missing",)


def test_api_source_switched_on_is_switched_off_in_place() -> None:
    wanted = mailchimp_setup(URL, {})
    hook = mailchimp(sources={"user": True, "admin": False, "api": True})
    verdict = judge_webhook(wanted, [hook], "h1")
    assert verdict.action == "update" and verdict.webhook_id == "h1"
    assert verdict.problems == ("source_off:admin", "source_on:api")


def test_optional_events_follow_the_activity_settings() -> None:
    with_delivered = mailchimp_setup(URL, {"delivered": True})
    assert "campaign" in with_delivered.events
    verdict = judge_webhook(with_delivered, [mailchimp()], "h1")
    assert verdict.problems == ("event_off:campaign",)
    without = mailchimp_setup(URL, {"delivered": False})
    verdict = judge_webhook(without, [mailchimp(events=frozenset(REQUIRED | {"campaign"}))], "h1")
    assert verdict.problems == ("event_on:campaign",)


def test_a_required_event_switched_off_is_reported_by_name() -> None:
    hook = mailchimp(events=frozenset(REQUIRED - {"unsubscribe", "upemail"}))
    verdict = judge_webhook(mailchimp_setup(URL, {}), [hook], "h1")
    assert verdict.problems == ("event_off:unsubscribe", "event_off:upemail")


def test_the_stored_webhook_is_judged_among_several_with_our_url() -> None:
    broken = mailchimp(id="h0", sources={"user": True, "admin": True, "api": True})
    verdict = judge_webhook(mailchimp_setup(URL, {}), [broken, mailchimp()], "h1")
    assert (verdict.action, verdict.webhook_id) == ("ok", "h1")


def brevo(**kw: object) -> WebhookState:
    values: dict[str, object] = {
        "id": "7",
        "url": URL,
        "events": frozenset({"unsubscribed", "listAddition", "hardBounce", "contactUpdated"}),
        "token": "secret",
    }
    return WebhookState.model_validate(values | kw)


def brevo_wanted(**activities: bool) -> WebhookSetup:
    events = ("unsubscribed", "listAddition", "delivered", "opened", "click", "hardBounce")
    return brevo_setup(URL, "secret", (*events, "contactUpdated", "contactDeleted"), activities)


def test_brevo_contact_events_are_optional_and_activities_choose_the_rest() -> None:
    wanted = brevo_wanted(opened=True)
    assert wanted.events == {"unsubscribed", "listAddition", "hardBounce", "opened"}
    assert wanted.optional == {"contactUpdated", "contactDeleted"}
    assert wanted.off == {"delivered", "click"}
    verdict = judge_webhook(brevo_wanted(), [brevo()], "7")
    assert verdict.action == "ok"  # contactDeleted missing: the account may refuse it


def test_brevo_missing_event_is_patched_and_a_foreign_secret_replaced() -> None:
    hook = brevo(events=frozenset({"listAddition", "hardBounce", "click"}))
    verdict = judge_webhook(brevo_wanted(), [hook], "7")
    assert verdict.action == "update"
    assert verdict.problems == ("event_off:unsubscribed", "event_on:click")
    verdict = judge_webhook(brevo_wanted(), [brevo(token="someone-else")], "7")
    assert (verdict.action, verdict.webhook_id, verdict.problems) == ("register", "7", ("token",))
    verdict = judge_webhook(brevo_wanted(), [brevo(token=None)], "7")
    assert verdict.action == "ok"  # a provider that shows no auth: nothing to compare


def test_brevo_spam_is_a_required_event_and_a_webhook_without_it_is_patched() -> None:
    # A complaint is an opt-out (Brevo blacklists the contact): the webhook must send it.
    wanted = brevo_setup(URL, "secret", WEBHOOK_EVENTS, {})
    assert "spam" in wanted.events and "spam" not in wanted.optional | wanted.off
    before = brevo()  # registered before `spam` was asked for
    verdict = judge_webhook(wanted, [before], "7")
    assert (verdict.action, verdict.problems) == ("update", ("event_off:spam",))
    verdict = judge_webhook(wanted, [brevo(events=before.events | {"spam"})], "7")
    assert verdict.action == "ok"
