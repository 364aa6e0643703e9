"""Mailchimp's words mapped onto the boundary's codes (`providers.codes`), as tables.

A refusal of one member comes either as a problem+json body (a single write: its `title`, and
the `errors[]` fields) or as an entry of the batch subscribe's `errors` array, whose
`error_code` is `ERROR_GENERIC` for nearly everything: there, the phrase of Mailchimp's own
message tells the reason. Mailchimp's text itself is kept as the detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from providers.codes import ProviderState, RejectReason
from providers.mailchimp.errors import MailchimpRequestError, describe

_R = RejectReason
_S = ProviderState

# Member `status` values (`GET /lists/{id}/members`, webhooks' `data[status]`).
MEMBER_STATES: Final[Mapping[str, ProviderState]] = {
    "subscribed": _S.subscribed,
    "unsubscribed": _S.unsubscribed,
    "cleaned": _S.cleaned,
    "pending": _S.pending,
    "transactional": _S.transactional,
    "archived": _S.archived,
}

# problem+json `title` of a refused single write.
TITLES: Final[Mapping[str, RejectReason]] = {
    "Member In Compliance State": _R.compliance,
    "Forgotten Email Not Subscribed": _R.forgotten,
    "Member Exists": _R.duplicate,
}

# Batch subscribe `error_code` (`ERROR_GENERIC` says nothing: the phrases decide).
ERROR_CODES: Final[Mapping[str, RejectReason]] = {
    "ERROR_CONTACT_EXISTS": _R.duplicate,
}

# Phrases of Mailchimp's messages, the first found decides (lower case).
PHRASES: Final[tuple[tuple[str, RejectReason], ...]] = (
    ("compliance state", _R.compliance),
    ("permanently deleted", _R.forgotten),
    ("forgotten email", _R.forgotten),
    ("looks fake or invalid", _R.invalid_email),
    ("enter a real email address", _R.invalid_email),
    ("valid email", _R.invalid_email),
    ("signed up to a lot of lists", _R.rate_limited),
    ("merge field", _R.merge_field),
    ("appears more than once", _R.duplicate),
    ("already a list member", _R.duplicate),
)

# `errors[].field` of a validation failure: the address itself; any other field is a merge
# field (its tag).
EMAIL_FIELD: Final = "email_address"


def member_state(status: object) -> ProviderState | None:
    """The state of a member's `status` (None when the answer carries none)."""
    if status is None:
        return None
    return MEMBER_STATES.get(str(status), _S.unknown)


def by_phrase(text: str, default: RejectReason = _R.unknown) -> RejectReason:
    lowered = text.lower()
    return next((reason for phrase, reason in PHRASES if phrase in lowered), default)


def batch_rejection(error: Mapping[str, Any]) -> tuple[RejectReason, str]:
    """(code, Mailchimp's words) of one entry of the batch subscribe's `errors`."""
    message = str(error.get("error") or "")
    field_message = str(error.get("field_message") or "")
    detail = message
    if field_message and field_message not in message:
        detail += f" ({error.get('field') or 'field'}: {field_message})"
    coded = ERROR_CODES.get(str(error.get("error_code") or ""))
    if coded is not None:
        return coded, detail
    reason = by_phrase(detail)
    if reason is _R.unknown and field_message:
        reason = _R.invalid_email if error.get("field") == EMAIL_FIELD else _R.merge_field
    return reason, detail


def refusal(exc: MailchimpRequestError) -> tuple[RejectReason, str]:
    """(code, Mailchimp's words) of a refused single write."""
    problem = exc.error_body if isinstance(exc.error_body, dict) else {}
    detail = describe(problem) or exc.message
    coded = TITLES.get(str(problem.get("title") or ""))
    if coded is not None:
        return coded, detail
    fields = [item for item in problem.get("errors") or [] if isinstance(item, dict)]
    reason = by_phrase(detail, _R.invalid_request)
    if reason is _R.invalid_request and fields:
        email = any(item.get("field") == EMAIL_FIELD for item in fields)
        reason = _R.invalid_email if email else _R.merge_field
    return reason, detail


def tags_refused(exc: MailchimpRequestError) -> str:
    """Mailchimp's words when it refused a member's tags."""
    problem = exc.error_body if isinstance(exc.error_body, dict) else None
    return describe(problem) or exc.message
