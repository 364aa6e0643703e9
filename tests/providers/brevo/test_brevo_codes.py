"""Brevo's words onto the boundary's codes: every row of its error table maps with Brevo's
message kept as the detail, and a contact's flags give its state."""

from __future__ import annotations

import pytest

from providers.base import FieldMapping, ProviderState, RejectReason
from providers.brevo import codes
from providers.brevo.errors import BrevoKeptBlacklistedError, BrevoRequestError
from providers.brevo.values import email_problem, to_contact


def refused(code: str | None, message: str = "Brevo's own words") -> BrevoRequestError:
    body = {"code": code, "message": message}
    return BrevoRequestError(
        f"Brevo refused POST /contacts (400 {code}): {message}",
        code=code,
        status_code=400,
        error_body=body,
    )


@pytest.mark.parametrize(("code", "reason"), sorted(codes.ERROR_CODES.items()))
def test_each_error_code_maps_with_brevos_words(code: str, reason: RejectReason) -> None:
    assert codes.refusal(refused(code)) == (reason, "Brevo's own words")


def test_an_unknown_code_is_unknown_and_a_kept_blacklist_is_blacklisted() -> None:
    assert codes.refusal(refused("something_new"))[0] is RejectReason.unknown
    assert codes.refusal(refused(None))[0] is RejectReason.unknown
    kept = BrevoKeptBlacklistedError("Brevo kept a@example.de blacklisted.")
    assert codes.refusal(kept) == (RejectReason.blacklisted, "Brevo kept a@example.de blacklisted.")


def test_an_invalid_address_is_refused_with_the_validators_words() -> None:
    assert email_problem("a@example.de") is None
    assert "@" in (email_problem("not-an-email") or "")


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ({"emailBlacklisted": True, "listIds": [7]}, ProviderState.blacklisted),
        ({"listIds": [7], "listUnsubscribed": [7]}, ProviderState.unsubscribed),
        ({"listIds": [8]}, ProviderState.not_in_list),
        ({"listIds": [7]}, ProviderState.subscribed),
    ],
)
def test_the_flags_give_the_state(raw: dict[str, object], state: ProviderState) -> None:
    contact = to_contact({"email": "A@example.de", **raw}, 7, FieldMapping())
    assert contact.status is state
    assert contact.subscribed is (state is ProviderState.subscribed)
