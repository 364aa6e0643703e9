"""Mailchimp's words onto the boundary's codes: every row of its tables maps, and the texts its
API (and our emulator of it) really sends land on the right code with Mailchimp's words kept as
the detail."""

from __future__ import annotations

from typing import Any

import pytest

from emulators.mailchimp.common import compliance_error, forgotten_error, invalid_email_error
from providers.base import ProviderState, RejectReason
from providers.mailchimp import codes
from providers.mailchimp.errors import MailchimpRequestError
from providers.mailchimp.reads import status_of


def refused(problem: dict[str, Any]) -> MailchimpRequestError:
    return MailchimpRequestError(
        "Mailchimp rejected the request", status_code=400, error_body=problem
    )


@pytest.mark.parametrize(("raw", "state"), sorted(codes.MEMBER_STATES.items()))
def test_each_member_status_maps_to_its_state(raw: str, state: ProviderState) -> None:
    contact = status_of({"email_address": "a@example.de", "status": raw})
    assert contact.status is state
    assert contact.status == raw  # a StrEnum: the stored string stays the same
    assert contact.subscribed is (state is ProviderState.subscribed)


def test_a_status_no_table_knows_is_unknown_and_none_stays_none() -> None:
    assert codes.member_state("frozen") is ProviderState.unknown
    assert status_of({"email_address": "a@example.de"}).status is None


@pytest.mark.parametrize(("title", "reason"), sorted(codes.TITLES.items()))
def test_each_problem_title_maps(title: str, reason: RejectReason) -> None:
    code, detail = codes.refusal(refused({"title": title, "detail": "x@example.de: words"}))
    assert code is reason
    assert detail == f"{title}: x@example.de: words"


@pytest.mark.parametrize(("error_code", "reason"), sorted(codes.ERROR_CODES.items()))
def test_each_batch_error_code_maps(error_code: str, reason: RejectReason) -> None:
    error = {"email_address": "x@example.de", "error": "some words", "error_code": error_code}
    assert codes.batch_rejection(error) == (reason, "some words")


@pytest.mark.parametrize(("phrase", "reason"), codes.PHRASES)
def test_each_phrase_of_a_generic_batch_error_maps(phrase: str, reason: RejectReason) -> None:
    text = f"x@example.de {phrase.capitalize()}, so no."
    error = {"email_address": "x@example.de", "error": text, "error_code": "ERROR_GENERIC"}
    assert codes.batch_rejection(error) == (reason, text)


def test_field_errors_tell_the_address_from_a_merge_field() -> None:
    bad_email = {"error": "Bad.", "field": "email_address", "field_message": "Nope"}
    bad_field = {"error": "Bad.", "field": "FNAME", "field_message": "Too long"}
    assert codes.batch_rejection(bad_email) == (
        RejectReason.invalid_email,
        "Bad. (email_address: Nope)",
    )
    assert codes.batch_rejection(bad_field) == (RejectReason.merge_field, "Bad. (FNAME: Too long)")
    assert codes.batch_rejection({"error": "Something new"}) == (
        RejectReason.unknown,
        "Something new",
    )


@pytest.mark.parametrize(
    ("error", "reason", "words"),
    [
        (compliance_error("a@example.de"), RejectReason.compliance, "in a compliance state"),
        (forgotten_error("a@example.de"), RejectReason.forgotten, "permanently deleted"),
        (invalid_email_error("a@example.de"), RejectReason.invalid_email, "looks fake or invalid"),
    ],
)
def test_the_answers_mailchimp_sends_map_with_their_words(
    error: Any, reason: RejectReason, words: str
) -> None:
    problem = {"title": error.title, "status": 400, "detail": error.detail, "errors": error.errors}
    code, detail = codes.refusal(refused(problem))
    assert code is reason and words in detail
    # The same refusal inside a batch answer: a generic error with the message only.
    message = (error.errors or [{}])[0].get("message") or error.detail
    assert codes.batch_rejection({"error": message, "error_code": "ERROR_GENERIC"})[0] is reason


def test_another_invalid_resource_is_an_invalid_request() -> None:
    problem = {"title": "Invalid Resource", "detail": "The status field is required."}
    assert codes.refusal(refused(problem))[0] is RejectReason.invalid_request
