"""Mailchimp Marketing API v3 provider."""

from providers.mailchimp.api import parse_api_key, subscriber_hash
from providers.mailchimp.audience import MailchimpListDefaults
from providers.mailchimp.client import MailchimpClient
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
