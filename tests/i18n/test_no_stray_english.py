"""Issue 20, item 6: a problem's detail is only ever the newsletter service's own message (the
labelled original); the connector's own English wording of a reason is never shown next to the
translated reason, in either language."""

from __future__ import annotations

import pytest

from app.i18n import reasons

OWN_WORDING = [
    ("opted_out", reasons.OPTED_OUT_PROVIDER, "unsubscribed at Mailchimp (2026-12-01 10:00 UTC)"),
    ("opted_out", reasons.HELD_BACK_UNSUBSCRIBED, "opted out at Mailchimp; the change is being"),
    ("opted_out", reasons.OPTED_OUT_ONOFFICE, "opted out in onOffice on address 7"),
    ("opted_out", reasons.OPTED_OUT_DURING_SYNC, "opted out at Brevo while the sync ran"),
    ("pending_optin", reasons.PENDING_OPTIN, "waiting for the double opt-in confirmation"),
    ("bounced", reasons.BOUNCED_PROVIDER, "cleaned at Mailchimp"),
    ("archived", reasons.ARCHIVED_PROVIDER, "archived at Mailchimp"),
    ("duplicate", reasons.DUPLICATE, "duplicate of address 3"),
]


@pytest.mark.parametrize(("kind", "code", "text"), OWN_WORDING)
@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_connectors_own_wording_is_never_the_detail(
    kind: str, code: str, text: str, lang: str
) -> None:
    assert reasons.problem_detail(kind, code, text, lang) == ""


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_services_own_message_is_the_original_without_our_note(lang: str) -> None:
    text = "Member In Compliance State: a@b.de is in a compliance state"
    code = reasons.provider_reason(text)
    assert reasons.problem_detail("rejected", code, text, lang) == text
    repeated = text + " (unchanged since the last attempt)"
    assert reasons.problem_detail("rejected", code, repeated, lang) == text
