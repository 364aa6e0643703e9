"""Bounded reading of provider webhook requests: size, content type, JSON depth, form keys.

Nothing here touches the database; the router checks the token first, then reads the body
through these helpers, so an unauthenticated or oversized request costs almost nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from app.errors import AppError

# Form fields of one Mailchimp POST (a profile update has a few dozen).
MAX_FORM_FIELDS = 1000


class PayloadTooLarge(AppError, status=413, code="payload_too_large"): ...


class UnsupportedMediaType(AppError, status=415, code="unsupported_media_type"): ...


class MalformedPayload(AppError, status=400, code="malformed_payload"): ...


def require_content_type(request: Request, *accepted: str) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in accepted:
        raise UnsupportedMediaType(
            f"the webhook body must be sent as {' or '.join(accepted)}, not {media_type!r}"
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it exceeds `limit` bytes (before reading it all)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the webhook body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the webhook body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes, *, max_depth: int) -> Any:
    """JSON (UTF-8) without NaN/Infinity and nested at most `max_depth` levels, else 400."""
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise MalformedPayload(f"the JSON body is nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise MalformedPayload(f"the body is not valid UTF-8 JSON: {exc}") from None
    if json_depth(value) > max_depth:
        raise MalformedPayload(f"the JSON body is nested deeper than {max_depth} levels")
    return value


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body (UTF-8), at most MAX_FORM_FIELDS fields."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text,
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            encoding="utf-8",
            errors="strict",
        )
    except ValueError as exc:  # UnicodeDecodeError, too many fields
        raise MalformedPayload(f"the form body cannot be read: {exc}") from None
