"""Mailchimp's HTTP surface as the client's modules use it: one JSON call with retries, offset
paging, and the key's parts (data centre, subscriber hash)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

from providers._http import Transport
from providers._paging import offset_items
from providers.base import normalise_email
from providers.mailchimp.errors import MailchimpAuthError

PAGE_SIZE = 1000  # Mailchimp's maximum `count`
_KEY_RE = re.compile(r"(?P<secret>[0-9A-Za-z]+)-(?P<dc>[a-z]+[0-9]+)")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address."""
    return hashlib.md5(normalise_email(email).encode("utf-8"), usedforsecurity=False).hexdigest()


def parse_api_key(api_key: str) -> str:
    """Return the data centre of `<key>-<dc>`; it goes into a host name, so it is strict."""
    match = _KEY_RE.fullmatch(api_key)
    if match is None:
        raise MailchimpAuthError(
            "This is not a valid Mailchimp API key. A key looks like "
            "'0123456789abcdef0123456789abcdef-us21': letters and digits, a hyphen, then the "
            "data centre. Copy the whole key from Mailchimp (Profile > Extras > API keys)."
        )
    return match.group("dc")


class MailchimpApi:
    def __init__(self, transport: Transport, *, page_size: int = PAGE_SIZE) -> None:
        self.transport = transport
        self.page_size = max(1, min(page_size, PAGE_SIZE))

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        retry: bool = True,
    ) -> Any:
        """One API call with retries (`retry=False`: one try); returns the decoded JSON body
        ({} when there is none)."""
        return await self.transport.json(method, path, params=params, json=json, retry=retry)

    def paginate(
        self,
        path: str,
        items_key: str,
        *,
        fields: str,
        params: dict[str, Any] | None = None,
        start: int = 0,
    ) -> AsyncIterator[dict[str, Any]]:
        async def fetch(offset: int) -> tuple[list[dict[str, Any]], int | None]:
            page = await self.request(
                "GET",
                path,
                params={
                    **(params or {}),
                    "count": self.page_size,
                    "offset": offset,
                    "fields": f"{fields},total_items",
                },
            )
            return list(page.get(items_key) or []), int(page.get("total_items") or 0)

        return offset_items(fetch, page_size=self.page_size, start=start)
