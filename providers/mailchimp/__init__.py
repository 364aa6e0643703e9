"""Mailchimp Marketing API v3 provider."""

from providers.mailchimp.client import (
    MailchimpClient,
    MailchimpListDefaults,
    parse_api_key,
    subscriber_hash,
)
from providers.mailchimp.errors import (
    MailchimpAuthError,
    MailchimpContactBlockedError,
    MailchimpError,
    MailchimpLimitError,
    MailchimpNotFoundError,
    MailchimpRequestError,
    MailchimpTransientError,
)
from providers.mailchimp.webhooks import parse_webhook

__all__ = [
    "MailchimpAuthError",
    "MailchimpClient",
    "MailchimpContactBlockedError",
    "MailchimpError",
    "MailchimpLimitError",
    "MailchimpListDefaults",
    "MailchimpNotFoundError",
    "MailchimpRequestError",
    "MailchimpTransientError",
    "parse_api_key",
    "parse_webhook",
    "subscriber_hash",
]
