"""Issue 20, item 6: a problem's detail is only ever the newsletter service's own message,
labelled as the original; the connector's own English wording of a reason is never shown next
to the translated reason, in either language. Issue 23, item 4: a rejection arrives as a code
(the provider's table) plus the provider's words, and only the code is rendered."""

from __future__ import annotations

import re

import pytest

from app.i18n import reasons
from providers.base import RejectReason, UpsertOutcome, UpsertResult
from providers.mailchimp.codes import batch_rejection

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
# Words that give English away (none of them is a German word; "in", "Bounce" and
# "Newsletter" are).
ENGLISH = {
    "the", "is", "of", "and", "to", "be", "by", "this", "was", "not", "could", "cannot",
    "contact", "rejected", "service", "address", "email", "state", "due", "or", "review",
    "message", "original", "subscribed", "unsubscribe",
}  # fmt: skip


def english_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-zäöüß]+", text.lower()) if w in ENGLISH}


@pytest.mark.parametrize(("kind", "code", "text"), OWN_WORDING)
@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_connectors_own_wording_is_never_the_detail(
    kind: str, code: str, text: str, lang: str
) -> None:
    assert reasons.problem_detail(kind, code, text, lang) == ""


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_services_own_message_is_the_labelled_original_without_our_note(lang: str) -> None:
    text = "Member In Compliance State: a@b.de is in a compliance state"
    code = reasons.rejection_code(RejectReason.compliance)
    label = {"de": "Originalmeldung von Mailchimp: ", "en": "Original message of Mailchimp: "}
    params = {"provider": "Mailchimp"}
    assert reasons.problem_detail("rejected", code, text, lang, params) == label[lang] + text
    repeated = text + " (unchanged since the last attempt)"  # stored before `reason.repeat`
    assert reasons.problem_detail("rejected", code, repeated, lang, params) == label[lang] + text
    assert reasons.problem_detail("rejected", code, "", lang, params) == ""


MAILCHIMP_BATCH_ERRORS = [
    "a@b.de is in a compliance state due to unsubscribe, bounce, or compliance review and "
    "cannot be subscribed.",
    "a@b.de was permanently deleted and cannot be re-imported.",
    "a@b.de looks fake or invalid, please enter a real email address.",
    "a@b.de has signed up to a lot of lists very recently; we're not allowing more signups",
    "Your merge fields were invalid.",
    "Something Mailchimp never said before.",
]


@pytest.mark.parametrize("message", MAILCHIMP_BATCH_ERRORS)
def test_a_rejected_batch_entry_reads_german_but_for_the_labelled_original(message: str) -> None:
    code, detail = batch_rejection({"email_address": "a@b.de", "error": message})
    result = UpsertResult(email="a@b.de", outcome=UpsertOutcome.rejected, code=code, detail=detail)
    row = reasons.rejection_problem(result.code, result.detail, "Mailchimp")
    reason = reasons.render_reason(
        "de", "rejected", row["reason_code"], row["reason_params"], row["reason"]
    )
    original = reasons.problem_detail(
        "rejected", row["reason_code"], row["reason"], "de", row["reason_params"]
    )
    assert not english_words(reason), reason
    label, _, words = original.partition(": ")
    assert label == "Originalmeldung von Mailchimp" and words == message
    # English readers get the English reason (the code is rendered, not the words).
    assert english_words(
        reasons.render_reason("en", "rejected", row["reason_code"], None, row["reason"])
    )


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_ledgers_rejection_keeps_its_code_and_old_prose_still_renders(lang: str) -> None:
    stored = reasons.stored_rejection(RejectReason.forgotten, "gone for good", "Brevo")
    assert reasons.read_rejection(stored) == (
        reasons.PROVIDER_FORGOTTEN,
        "gone for good",
        {"provider": "Brevo"},
    )
    shown = reasons.render_rejection(lang, stored)
    assert shown.startswith(reasons.render_reason(lang, "rejected", "provider_forgotten", {}, ""))
    assert shown.endswith("Brevo: gone for good")
    # A row written before codes existed: a plain rejection with its text as the original.
    old = "Mailchimp rejected the request: Invalid Resource"
    assert reasons.read_rejection(old) == (reasons.PROVIDER_REJECTED, old, {})
    assert reasons.render_rejection(lang, old).endswith(f": {old}")
    assert not english_words(reasons.render_rejection("de", old).split(":")[0])
