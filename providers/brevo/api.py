"""Brevo's HTTP surface as the client's modules use it: JSON calls, offset paging, and the
`/contacts` pacer (Brevo's 10 requests/s per account) in front of every request there."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from providers._http import Gate, Transport
from providers._paging import offset_items
from providers.limits import RatePacer


def paced_gate(pacer: RatePacer, api_key: str) -> Gate:
    """The transport gate: Brevo's 10/s budget covers `/contacts`, other endpoints are not
    paced."""

    @contextlib.asynccontextmanager
    async def gate(path: str) -> AsyncIterator[None]:
        if path.startswith("/contacts"):
            await pacer.wait(api_key)
        yield

    return gate


class BrevoApi:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def request(
        self,
        method: str,
        path: str,
        *,
        label: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        content = None
        headers = {}
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["content-type"] = "application/json"
        return await self.transport.request(
            method, path, label=label, params=params, content=content, headers=headers
        )

    async def json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """`request` (same options), decoded; a JSON array comes back as `{"items": [...]}`."""
        response = await self.request(method, path, **options)
        if not response.content:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {"items": data}

    def paged(
        self,
        path: str,
        key: str,
        limit: int,
        *,
        start: int = 0,
        params: Mapping[str, Any] | None = None,
        label: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        async def fetch(offset: int) -> tuple[list[dict[str, Any]], int | None]:
            query = {**(params or {}), "limit": limit, "offset": offset, "sort": "asc"}
            page = await self.json("GET", path, params=query, label=label or f"GET {path}")
            total = page.get("count")
            return list(page.get(key) or []), total if isinstance(total, int) else None

        return offset_items(fetch, page_size=limit, start=start)
