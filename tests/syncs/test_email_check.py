"""The fast path of `check_email` agrees with the validator on every case it takes."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from app.contacts.values import check_email

CASES = [
    "anna@example.de",
    "a.b-c+d_e@sub.example.co.uk",
    "x@localhost",
    "x@example",
    "x@example.invalid",
    "x@example.test",
    "x@-example.de",
    "x@example-.de",
    "x@exa..mple.de",
    "x@.example.de",
    "x@example.de.",
    "x@123.123.123.123",
    "x@example.123",
    ".x@example.de",
    "x.@example.de",
    "x..y@example.de",
    "a" * 64 + "@example.de",
    "a" * 65 + "@example.de",
    "x@" + "a" * 63 + ".de",
    "x@" + "a" * 64 + ".de",
    "x@" + ".".join(["a" * 60] * 4) + ".de",
    "o'brien@example.ie",
    "{weird}|~#@example.de",
    "müller@example.de",
    "x@müller.de",
    "max.mustermann@",
    "kein email",
    "a@b",
    "@example.de",
    "x@ex_ample.de",
    "x@example.d",
    "x@example.onion",
    "x@xn--mller-kva.de",
    "x@xn--zz.de",
]


def _validator(email: str) -> bool:
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@pytest.mark.parametrize("email", CASES)
def test_the_fast_path_agrees_with_the_validator(email: str) -> None:
    assert (check_email(email).problem is None) == _validator(email.strip().lower())


def test_a_problem_keeps_the_validators_reason() -> None:
    check = check_email("x@example.invalid")
    assert check.problem == "invalid_email" and check.reason
