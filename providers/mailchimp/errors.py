"""Mailchimp's branch of the provider error taxonomy (see `providers.base`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from providers._http import parse_retry_after
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


def reworded(
    exc: MailchimpRequestError, message: str, cls: type[MailchimpRequestError] | None = None
) -> MailchimpRequestError:
    """The same refusal (status, endpoint, body) with a message that says what to do."""
    return (cls or type(exc))(
        message, status_code=exc.status_code, endpoint=exc.endpoint, error_body=exc.error_body
    )


RETRYABLE_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})


def from_response(
    response: httpx.Response, path: str, redact: Callable[[str], str] = str
) -> MailchimpError:
    """The error for one of Mailchimp's error answers (problem+json), its message safe to show."""
    status = response.status_code
    problem = _problem(response)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    kw: dict[str, Any] = {"status_code": status, "endpoint": path, "error_body": problem}
    if status in RETRYABLE_STATUS_CODES or status >= 500:
        text = describe(problem) or f"HTTP {status}"
        return MailchimpTransientError(
            redact(f"Mailchimp is busy or unavailable ({text}); will retry."),
            retry_after=retry_after,
            **kw,
        )
    if status == 403 and problem is None:
        # Mailchimp's throttling at very high volume: a 403 without a JSON body.
        return MailchimpTransientError(
            "Mailchimp is throttling requests (403 without details); will retry.",
            retry_after=retry_after,
            **kw,
        )
    text = redact(describe(problem) or f"HTTP {status}")
    if status == 401:
        return MailchimpAuthError(
            f"Mailchimp rejected the API key ({text}). Check that you copied the complete "
            f"key including its '-usX' ending and that it has not been revoked in Mailchimp "
            f"(Profile > Extras > API keys).",
            **kw,
        )
    if status == 403:
        return MailchimpAuthError(
            f"Mailchimp does not allow this operation for this account or key ({text}).",
            **kw,
        )
    if status == 404:
        return MailchimpNotFoundError(f"Mailchimp could not find {path} ({text}).", **kw)
    title = str((problem or {}).get("title", ""))
    if title in ("Member In Compliance State", "Forgotten Email Not Subscribed"):
        return MailchimpContactBlockedError(blocked_reason(title, text), **kw)
    return MailchimpRequestError(f"Mailchimp rejected the request: {text}", **kw)


def transient(message: str, endpoint: str) -> MailchimpTransientError:
    return MailchimpTransientError(message, endpoint=endpoint)


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    if not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def describe(problem: dict[str, Any] | None) -> str:
    """`title: detail (field: message; ...) [request id]` from a problem+json body."""
    if not problem:
        return ""
    text = ": ".join(str(problem[k]) for k in ("title", "detail") if problem.get(k))
    fields = [
        f"{item.get('field') or 'request'}: {item.get('message')}"
        for item in problem.get("errors") or []
        if isinstance(item, dict)
    ]
    if fields:
        text += " (" + "; ".join(fields) + ")"
    if problem.get("instance"):
        text += f" [Mailchimp request id {problem['instance']}]"
    return text


def blocked_reason(title: str, text: str) -> str:
    if title == "Forgotten Email Not Subscribed" or "permanently deleted" in text:
        return (
            "The contact was permanently deleted in Mailchimp and cannot be imported again; "
            f"they must sign up again through a Mailchimp form. ({text})"
        )
    return (
        "Mailchimp will not re-subscribe this contact: they unsubscribed themselves, bounced or "
        f"are under compliance review. They must sign up again themselves. ({text})"
    )
