"""Brevo's words mapped onto the boundary's codes (`providers.codes`), as tables.

Brevo answers a refused contact write with `{"code": ..., "message": ...}`: its `code` tells
the reason, its `message` is kept as the detail. A contact's state comes from flags, not a
status word (`values.to_contact`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from providers.brevo.errors import BrevoKeptBlacklistedError, BrevoRequestError
from providers.codes import RejectReason

_R = RejectReason

# Brevo's error `code` of a refused contact write.
ERROR_CODES: Final[Mapping[str, RejectReason]] = {
    "duplicate_parameter": _R.duplicate,
    "invalid_parameter": _R.invalid_request,
    "missing_parameter": _R.invalid_request,
    "out_of_range": _R.invalid_request,
    "bad_request": _R.invalid_request,
    "unprocessable_entity": _R.invalid_request,
    "not_acceptable": _R.invalid_request,
}


def refusal(exc: BrevoRequestError) -> tuple[RejectReason, str]:
    """(code, Brevo's words) of a refused contact write."""
    if isinstance(exc, BrevoKeptBlacklistedError):
        return _R.blacklisted, exc.message
    body = exc.error_body if isinstance(exc.error_body, dict) else {}
    detail = str(body.get("message") or exc.message)
    return ERROR_CODES.get(exc.code or "", _R.unknown), detail
