"""Checks of the URLs onOffice opens: signature, timestamp window and required parameters.

Pure functions (no I/O); replay protection needs the database and lives in the service.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import parse_qsl

from app.config import Settings
from app.errors import AppError, Unauthorized
from onoffice_client.signature import SIGNATURE_PARAM, verify_url_signature

# onOffice's clock may run slightly ahead of ours; anything further ahead is forged or broken.
FUTURE_SKEW_S = 30


class Purpose(StrEnum):
    """What a signed URL was used for; each URL is accepted once per purpose."""

    activation_page = "activation_page"
    activation_submit = "activation_submit"
    activation_attempt = (
        "activation_attempt"  # counted per signed URL (see MAX_ACTIVATION_ATTEMPTS)
    )
    iframe = "iframe"
    session = "session"
    webhook = "webhook"


class SignedUrlError(Unauthorized):
    """A signed onOffice URL was rejected; the message says why."""

    code = "invalid_signed_url"


class ProviderSecretMissing(AppError):
    status_code = 503
    code = "not_configured"


@dataclass(frozen=True)
class SignedParams:
    """The verified parameters of one signed onOffice URL (`signature` kept apart)."""

    params: dict[str, str]
    signature: str
    timestamp: int

    def get(self, name: str) -> str:
        return self.params.get(name, "")

    @property
    def signed_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)

    def expires_at(self, max_age_s: int) -> datetime:
        """After this instant the timestamp check rejects the URL, so its replay record can go."""
        return datetime.fromtimestamp(self.timestamp + max_age_s + 1, UTC)


def parse_query(query: str) -> list[tuple[str, str]]:
    """A raw query string (optionally with a leading `?`) as decoded pairs, blanks kept."""
    return parse_qsl(query.removeprefix("?"), keep_blank_values=True)


def verify_signed_params(
    pairs: Sequence[tuple[str, str]],
    *,
    settings: Settings,
    path: str,
    required: Sequence[str] = (),
    now: float | None = None,
) -> SignedParams:
    """Verify the signature over `PUBLIC_BASE_URL + path` and the timestamp window.

    Raises SignedUrlError (401) naming what is wrong: a missing parameter, a bad signature, a
    malformed, stale or future timestamp.
    """
    secret = settings.ONOFFICE_PROVIDER_SECRET
    if secret is None or not secret.get_secret_value():
        raise ProviderSecretMissing("err.secret_missing")
    params = dict(pairs)  # the last of repeated keys wins, as in PHP's parse_str
    for name in (SIGNATURE_PARAM, "timestamp"):
        if not params.get(name):
            raise SignedUrlError("err.url_param_missing", params={"param": name})
    base_url = settings.PUBLIC_BASE_URL.rstrip("/") + path
    if not verify_url_signature(base_url, pairs, secret.get_secret_value()):
        raise SignedUrlError("err.url_signature")
    try:
        timestamp = int(params["timestamp"])
    except ValueError:
        raise SignedUrlError("err.url_timestamp") from None
    current = time.time() if now is None else now
    if timestamp < current - settings.SIGNATURE_MAX_AGE_S:
        raise SignedUrlError("err.url_expired", params={"max_age": settings.SIGNATURE_MAX_AGE_S})
    if timestamp > current + FUTURE_SKEW_S:
        raise SignedUrlError("err.url_future")
    for name in required:
        if not params.get(name):
            raise SignedUrlError("err.url_param_missing", params={"param": name})
    signature = params.pop(SIGNATURE_PARAM).strip().lower()
    return SignedParams(params=params, signature=signature, timestamp=timestamp)
