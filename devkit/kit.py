"""Small tools the demo, the tests, the benchmarks and the screenshot script share: a free
local port, and signed onOffice URLs (what onOffice appends to the iframe or activation URL).

A signed URL carries a timestamp; the service refuses the same signed URL twice (a replay). Two
openings of the same page within one second would sign the same URL, so `fresh_timestamp`
hands out the newest second that exact URL has not been signed with yet (a few seconds in the
past are well within the signature's tolerance), as a real reopening would carry a new one.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from onoffice_client.signature import sign_url_params

_SIGNED: set[tuple[str, tuple[tuple[str, str], ...], int]] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_timestamp(url: str, params: Mapping[str, str]) -> str:
    key = tuple(sorted((k, v) for k, v in params.items() if k != "timestamp"))
    stamp = int(time.time())
    while (url, key, stamp) in _SIGNED:
        stamp -= 1
    _SIGNED.add((url, key, stamp))
    return str(stamp)


def signed_params(url: str, params: Mapping[str, str], secret: str) -> dict[str, str]:
    """`params` with a timestamp (unless given) and onOffice's signature for `url`."""
    stamped = {"timestamp": fresh_timestamp(url, params), **params}
    return {**stamped, "signature": sign_url_params(url, stamped, secret)}


def signed_query(url: str, params: Mapping[str, str], secret: str) -> str:
    """The signed query string onOffice would append to `url`."""
    return urlencode(signed_params(url, params, secret), quote_via=quote)


async def activate(
    client: httpx.AsyncClient,
    *,
    api: str,
    onoffice: str,
    web_id: str,
    token: str,
    secret: str,
    claim: str,
    provider_secret: str,
    address_range: Sequence[int] | None = None,
) -> httpx.Response:
    """The marketplace activation over HTTP, as onOffice does it: the customer is registered
    in the onOffice emulator, onOffice's signed activation page is opened and its form sent.
    Returns the connector's answer ("active" on success)."""
    cache_id = f"cache-{web_id}"
    customer: dict[str, Any] = {"token": token, "secret": secret, "claim": claim}
    if address_range is not None:
        customer["address_range"] = list(address_range)
    await client.post(f"{onoffice}/_control/customers", json=customer)
    await client.post(
        f"{onoffice}/_control/parameter-caches",
        json={"id": cache_id, "claim": f"activation-{web_id}"},
    )
    params = {
        "apiToken": token,
        "apiClaim": f"activation-{web_id}",
        "customerName": f"Makler {web_id}",
        "customerWebId": web_id,
        "userId": "17",
        "parameterCacheId": cache_id,
    }
    query = signed_params(f"{api}/onoffice/activate", params, provider_secret)
    return await client.post(f"{api}/onoffice/activate", data={**query, "secret": secret})


async def open_session(
    client: httpx.AsyncClient,
    *,
    api: str,
    web_id: str,
    claim: str,
    provider_secret: str,
    **extra: str,
) -> httpx.Response:
    """`POST /api/v1/sessions` with the signed iframe URL onOffice would open (`extra`: more
    iframe parameters, e.g. groupId or UserLanguage)."""
    params = {
        "customerWebId": web_id,
        "customerName": f"Makler {web_id}",
        "userId": "17",
        "apiClaim": claim,
        **extra,
    }
    query = signed_query(f"{api}/onoffice/app", params, provider_secret)
    return await client.post(f"{api}/api/v1/sessions", json={"query": query})


# Waits between the tries of one webhook delivery (then it is given up): a provider retries.
DELIVERY_RETRY_S = (0.1, 0.2, 0.5, 1, 1, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5, 5)


async def deliver_until_acked(
    url: str, bodies: Sequence[bytes], senders: int, limit_s: float
) -> int:
    """POST each form body until it is acknowledged (200), from `senders` concurrent senders,
    as Mailchimp delivers a webhook again after a failure; how many were acknowledged."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    acked = 0
    deadline = time.monotonic() + limit_s
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    async def sender() -> None:
        nonlocal acked
        async with httpx.AsyncClient(timeout=30) as http:
            while not queue.empty() and time.monotonic() < deadline:
                body = queue.get_nowait()
                for delay in DELIVERY_RETRY_S:
                    try:
                        if (await http.post(url, content=body, headers=headers)).status_code == 200:
                            acked += 1
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(delay)

    await asyncio.gather(*(sender() for _ in range(senders)))
    return acked
