"""Reading the parts of onOffice's action results the client needs, and the parameters of an
address update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from onoffice_client.models import ActionKind, AddressUpdate
from onoffice_client.normalize import parse_int, parse_permitted_values
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


def address_fields(result: Mapping[str, Any], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The address fields of a `get fields` result (only `fields` when given), each with its
    `permittedvalues` normalised to key -> label."""
    out: dict[str, dict[str, Any]] = {}
    for record in result_records(result):
        if str(record.get("id", "address")) != "address":
            continue
        elements = record.get("elements")
        if not isinstance(elements, Mapping):
            continue
        for name, spec in elements.items():
            if not isinstance(spec, Mapping) or (fields and name not in fields):
                continue
            out[name] = dict(spec) | {
                "permittedvalues": parse_permitted_values(spec.get("permittedvalues"))
            }
    return out


def action_kinds(result: Mapping[str, Any]) -> list[ActionKind]:
    """The activity kinds (and their types) of an `actionkindtypes` result."""
    kinds = []
    for record in result_records(result):
        raw = record.get("elements")
        item: Mapping[str, Any] = raw if isinstance(raw, Mapping) and raw else record
        if not item.get("key"):
            continue
        # PHP encodes an empty map as [], so `types` may be a list.
        kinds.append(
            ActionKind(
                key=str(item["key"]),
                label=str(item.get("label") or item["key"]),
                types=parse_permitted_values(item.get("types")),
            )
        )
    return kinds


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
