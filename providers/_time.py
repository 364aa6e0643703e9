"""Timestamps as providers send them."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso_timestamp(value: object) -> datetime | None:
    """An ISO 8601 string (`Z` or an offset; naive taken as UTC) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
