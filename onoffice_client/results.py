"""Reading the parts of onOffice's action results the client needs, and the parameters of an
address update."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from onoffice_client.models import AddressUpdate
from onoffice_client.normalize import parse_int
from onoffice_client.transport import as_int


def result_records(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = result.get("data")
    records = data.get("records") if isinstance(data, Mapping) else None
    return [r for r in records if isinstance(r, Mapping)] if isinstance(records, list) else []


def cntabsolute(result: Mapping[str, Any]) -> int | None:
    data = result.get("data")
    meta = data.get("meta") if isinstance(data, Mapping) else None
    total = meta.get("cntabsolute") if isinstance(meta, Mapping) else None
    return as_int(total) if total is not None else None


def created_id(result: Mapping[str, Any]) -> int:
    for record in result_records(result):
        elements = record.get("elements")
        element_id = elements.get("id") if isinstance(elements, Mapping) else None
        for raw in (record.get("id"), element_id):
            try:
                if raw is not None and (value := parse_int(raw)) > 0:
                    return value
            except ValueError:
                continue
    return 0


def update_parameters(update: AddressUpdate) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if update.salutation is not None:
        params["Anrede"] = update.salutation
    if update.first_name is not None:
        params["Vorname"] = update.first_name
    if update.last_name is not None:
        params["Name"] = update.last_name
    if update.newsletter is not None:
        params["newsletter_aktiv"] = str(int(update.newsletter))
    if update.tags is not None:
        # Multiselects are replaced, not merged: always the full set, without pipes.
        params["NewsletterTag"] = list(dict.fromkeys(update.tags))
    return params
