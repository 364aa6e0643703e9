"""Mailchimp's branch of the provider error taxonomy (see `providers.base`)."""

from __future__ import annotations

from providers.base import (
    ProviderAuthError,
    ProviderError,
    ProviderLimitError,
    ProviderRequestError,
    ProviderTransientError,
)


class MailchimpError(ProviderError):
    """Base of every Mailchimp failure; `message` is safe to show to a user."""


class MailchimpTransientError(MailchimpError, ProviderTransientError):
    """429, 5xx, network failure or the bodiless 403 Mailchimp sends when throttling."""


class MailchimpRequestError(MailchimpError, ProviderRequestError):
    """A permanent 4xx; `title`, `detail` and `instance` come from Mailchimp's problem+json."""


class MailchimpAuthError(MailchimpRequestError, ProviderAuthError):
    """The key is malformed, invalid, revoked or lacks permission."""


class MailchimpLimitError(MailchimpRequestError, ProviderLimitError):
    """An account limit (e.g. the free plan's single audience) blocks the operation."""


class MailchimpContactBlockedError(MailchimpRequestError):
    """Mailchimp refuses to (re-)subscribe this address: compliance state or forgotten email."""


class MailchimpNotFoundError(MailchimpRequestError):
    """404: the list, member or webhook does not exist (or is no longer visible)."""
