"""Turning onOffice's loosely typed output into the records of `onoffice_client.models`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from onoffice_client.models import Address, NewsletterStatus

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_multiselect(value: Any) -> list[str]:
    """`"|a||b|"`, `"a"`, `["a", "b"]`, `None` or `""` -> `["a", "b"]` (order kept, no blanks)."""
    if value is None:
        return []
    items = [str(v) for v in value] if isinstance(value, list | tuple) else str(value).split("|")
    return [item for item in (i.strip() for i in items) if item]


def parse_newsletter(value: Any) -> NewsletterStatus:
    """A `newsletter_aktiv` key as str or int; anything unexpected becomes `unknown`."""
    if value is None or value == "":
        return NewsletterStatus.not_specified
    try:
        return NewsletterStatus(int(str(value).strip()))
    except ValueError:
        return NewsletterStatus.unknown


def parse_int(value: Any) -> int:
    return int(str(value).strip())


def parse_active(value: Any) -> bool:
    """`Status`: 1 active, 0 archived. Missing means active (the field may be hidden)."""
    if value is None or value == "":
        return True
    try:
        return int(str(value).strip()) != 0
    except ValueError:
        return True


def parse_datetime(value: Any, tz: tzinfo) -> datetime | None:
    """`Aenderung` in onOffice's `Y-m-d H:i:s` (server local time); unreadable -> None."""
    if not value or not isinstance(value, str) or value.startswith("0000-00-00"):
        return None
    try:
        return datetime.strptime(value.strip(), DATETIME_FORMAT).replace(tzinfo=tz)
    except ValueError:
        return None


def format_datetime(value: datetime, tz: tzinfo) -> str:
    """Aware datetimes are converted to the server zone; naive ones are taken as server time."""
    if value.tzinfo is not None:
        value = value.astimezone(tz)
    return value.strftime(DATETIME_FORMAT)


def _text(elements: Mapping[str, Any], key: str) -> str:
    value = elements.get(key)
    return "" if value is None else str(value)


def parse_address(
    record: Mapping[str, Any], tz: tzinfo, extra_fields: Sequence[str] = ()
) -> Address:
    """One `records[]` entry of `read address` (formatoutput=false); `extra_fields` land in
    `Address.extra`."""
    raw_elements = record.get("elements")
    elements: Mapping[str, Any] = raw_elements if isinstance(raw_elements, Mapping) else {}
    raw_id = elements.get("id", record.get("id"))
    language = elements.get("SpracheKontakt")
    return Address(
        id=parse_int(raw_id),
        salutation=_text(elements, "Anrede"),
        title=_text(elements, "Titel"),
        first_name=_text(elements, "Vorname"),
        last_name=_text(elements, "Name"),
        email=_text(elements, "Email"),
        newsletter=parse_newsletter(elements.get("newsletter_aktiv")),
        tags=parse_multiselect(elements.get("NewsletterTag")),
        active=parse_active(elements.get("Status")),
        modified_at=parse_datetime(elements.get("Aenderung"), tz),
        language=str(language) if language else None,
        extra={name: parse_multiselect(elements.get(name)) for name in extra_fields},
    )


def parse_permitted_values(value: Any) -> dict[str, str]:
    """`permittedvalues` is key -> label with `labels: true`, a plain key list otherwise."""
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(k): str(k) for k in value}
    return {}
