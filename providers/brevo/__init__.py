"""Brevo (ex-Sendinblue) provider: API client and webhook parser."""

from providers.brevo.client import BrevoClient
from providers.brevo.errors import (
    BrevoAuthError,
    BrevoLimitError,
    BrevoRequestError,
    BrevoTransientError,
)
from providers.brevo.webhooks import parse_webhook

__all__ = [
    "BrevoAuthError",
    "BrevoClient",
    "BrevoLimitError",
    "BrevoRequestError",
    "BrevoTransientError",
    "parse_webhook",
]
