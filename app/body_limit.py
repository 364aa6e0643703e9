"""A cap on every request body, before anything parses it (413 above the cap).

Plain ASGI: the declared `Content-Length` is checked first, then the streamed body is counted
chunk by chunk, so a 100 MB body to an unauthenticated route costs at most the cap in memory
and never reaches a JSON parser. Each path prefix has its own cap (the longest matching prefix
wins); the webhook routes keep their own, larger `WEBHOOK_MAX_BODY_BYTES` check on top.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised inside `receive` when the streamed body passes the cap. An HTTPException, so a
    route reading its body answers 413 through the app's handler (FastAPI would turn any other
    error of the body read into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def _answer(limit: int) -> tuple[Message, Message]:
    body = json.dumps(
        {
            "error": "payload_too_large",
            "message": f"the request body is larger than {limit} bytes",
        }
    ).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """`limits`: (path prefix, bytes) pairs; `default` for paths no prefix matches."""

    def __init__(self, app: ASGIApp, *, limits: Sequence[tuple[str, int]], default: int) -> None:
        self.app = app
        self.limits = sorted(limits, key=lambda pair: len(pair[0]), reverse=True)
        self.default = default

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _reject(send, limit)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _reject(send, limit)


async def _reject(send: Send, limit: int) -> None:
    start, body = _answer(limit)
    await send(start)
    await send(body)
