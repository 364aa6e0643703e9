"""onOffice address actions: read (filter, sort, paging, tenant ranges), modify (fields and
contact data changes, all or nothing) and create (with the duplicate check)."""

from __future__ import annotations

from typing import Any

from emulators.onoffice.envelope import ActionError, result
from emulators.onoffice.state import MAX_LIST_LIMIT, Customer, OnOfficeState
from emulators.onoffice.users import can_see, support_user_output
from emulators.onoffice_data import (
    CONTACT_TYPES,
    MULTISELECT_FIELDS,
    READABLE_FIELDS,
    SINGLESELECT_FIELDS,
    WRITABLE_FIELDS,
    EmuAddress,
    FilterError,
    output_elements,
)


def read_address(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    params = action["parameters"]
    data = params.get("data") or []
    if not isinstance(data, list):
        raise ActionError(75, "data must be an array of field names")
    for name in data:
        if name not in READABLE_FIELDS and name not in CONTACT_TYPES:
            raise ActionError(75, f"Unknown field: {name}")
        if name == "Aenderung" and not state.settings.modified_readable:
            raise ActionError(75, "Unknown field: Aenderung")
    sortby = params.get("sortby") or None
    if sortby is not None and (
        sortby not in READABLE_FIELDS
        or sortby in MULTISELECT_FIELDS
        or sortby in state.settings.unsortable_fields
    ):
        raise ActionError(212, f"Unknown sort field: {sortby}")
    descending = str(params.get("sortorder", "ASC")).upper() == "DESC"
    try:
        limit = min(int(params.get("listlimit", 20)), MAX_LIST_LIMIT)
        offset = max(int(params.get("listoffset", 0)), 0)
    except (TypeError, ValueError):
        raise ActionError(257, "listlimit and listoffset must be integers") from None
    criteria = params.get("filter")
    filters_support_user = isinstance(criteria, dict) and "Benutzer" in criteria
    if filters_support_user and not state.settings.support_user_filterable:
        raise ActionError(141, "Unknown field in filter: Benutzer")
    try:
        ids = state.query(criteria, sortby, descending, customer.address_range)
    except FilterError as exc:
        raise ActionError(exc.errorcode, exc.message) from None
    if state.acting_user is not None:
        ids = [i for i in ids if can_see(state, state.addresses[i])]
    recordids = params.get("recordids")
    if action.get("resourceid") not in ("", None):
        recordids = [action["resourceid"]]
    if recordids is not None:
        if not isinstance(recordids, list):
            raise ActionError(257, "recordids must be an array")
        if len(recordids) > MAX_LIST_LIMIT:
            raise ActionError(302, "This action support only up to 500 Ids")
        wanted = {int(i) for i in recordids}
        ids = [i for i in ids if i in wanted]
    formatoutput = bool(params.get("formatoutput", False))
    records = [
        {
            "id": address_id,
            "type": "address",
            "elements": output_elements(
                state.addresses[address_id], data, formatoutput=formatoutput
            ),
        }
        for address_id in ids[offset : offset + limit]
    ]
    for record in records:
        state.log_access("read", int(record["id"]))
    if "Benutzer" in data:
        for record in records:
            elements = record["elements"]
            elements["Benutzer"] = support_user_output(state, elements["Benutzer"])
    return result(action, records, len(ids))


def _apply_fields(state: OnOfficeState, address: EmuAddress, params: dict[str, Any]) -> None:
    """Plain and multiselect fields of a modify/create; validated like the API would."""
    for name, value in params.items():
        if name not in WRITABLE_FIELDS:
            continue
        if name in MULTISELECT_FIELDS:
            if not isinstance(value, list) or any("|" in str(v) for v in value):
                raise ActionError(76, f"Invalid multiselect value for {name}")
            unknown = [v for v in value if str(v) not in MULTISELECT_FIELDS[name]]
            if unknown:
                raise ActionError(76, f"Invalid multiselect key for {name}: {unknown[0]}")
            keys = list(dict.fromkeys(str(v) for v in value))
            if name == "NewsletterTag":
                address.tags = keys
            else:
                address.origin = keys
        elif name in SINGLESELECT_FIELDS:
            key = str(value)
            if key and key not in SINGLESELECT_FIELDS[name]:
                raise ActionError(77, f"Invalid singleselect key for {name}: {key}")
            if name == "Anrede":
                address.anrede = key
            elif name == "newsletter_aktiv":
                address.newsletter = key or "4"
            elif name == "SpracheKontakt":
                address.language = key
            else:
                address.status = int(key or 1)
        elif name == "Titel":
            address.titel = str(value)
        elif name == "Vorname":
            address.vorname = str(value)
        elif name == "Name":
            address.name = str(value)
        elif name == "Benutzer":
            address.benutzer = str(value)


def _check_fields(params: dict[str, Any], extra: set[str]) -> None:
    allowed = WRITABLE_FIELDS | extra | {"extendedclaim"}
    for name in params:
        if name not in allowed:
            raise ActionError(75, f"Unknown field: {name}")


def _modify_contact(address: EmuAddress, change: Any) -> None:
    if not isinstance(change, dict) or change.get("action") not in ("add", "modify", "delete"):
        raise ActionError(88, "Entry could not be modified: invalid contact data change")
    kind = change["action"]
    emails = address.emails
    if kind in ("modify", "delete"):
        old = str(change.get("oldvalue", ""))
        positions = [i for i, e in enumerate(emails) if e == old]
        if len(positions) != 1:
            raise ActionError(88, f"Entry could not be modified: oldvalue {old!r} not unique")
        emails.pop(positions[0])
        if kind == "delete":
            return
        index = positions[0]
    else:
        index = len(emails)
    new = str(change.get("newvalue", "")).strip()
    if not new:
        raise ActionError(88, "Entry could not be modified: newvalue is empty")
    if change.get("default") in (True, 1, "1", "true"):
        index = 0
    emails.insert(index, new)


def modify_address(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    try:
        address = state.addresses[int(action.get("resourceid") or 0)]
    except (KeyError, TypeError, ValueError):
        raise ActionError(80, f"Unknown record: {action.get('resourceid')}") from None
    if not can_see(state, address):
        raise ActionError(174, "Missing permission to modify this record")
    params = action["parameters"]
    _check_fields(params, {"email"})
    # Validate into a copy so a failing action changes nothing.
    draft = EmuAddress(**{s: getattr(address, s) for s in EmuAddress.__slots__})
    draft.emails, draft.tags, draft.origin = (
        list(address.emails),
        list(address.tags),
        list(address.origin),
    )
    _apply_fields(state, draft, params)
    if "email" in params:
        _modify_contact(draft, params["email"])
    for slot in EmuAddress.__slots__:
        setattr(address, slot, getattr(draft, slot))
    state.log_access("modify", address.id)
    state.touch(address)
    return result(action, [{"id": 0, "type": "address", "elements": {"success": "success"}}], None)


def create_address(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    params = action["parameters"]
    contact_keys = CONTACT_TYPES | {"default_email", "checkDuplicate", "noOverrideByDuplicate"}
    _check_fields(params, contact_keys)
    emails = [str(params[k]).strip() for k in sorted(CONTACT_TYPES) if params.get(k)]
    default = str(params.get("default_email") or "").strip()
    if default and default not in emails:
        raise ActionError(78, "Entry could not be created: default_email is not one of the emails")
    if default:
        emails.remove(default)
        emails.insert(0, default)
    if params.get("checkDuplicate") and emails:
        wanted = {e.casefold() for e in emails}
        duplicates = sorted(
            a.id
            for a in state.addresses.values()
            if any(e.strip().casefold() in wanted for e in a.emails)
        )
        if duplicates:
            existing = state.addresses[duplicates[0]]
            if not params.get("noOverrideByDuplicate"):
                _apply_fields(state, existing, params)
                state.log_access("modify", existing.id)
                state.touch(existing)
            record_id = existing.id if state.settings.duplicate_id == "existing" else 0
            return result(action, [{"id": record_id, "type": "address", "elements": []}], None)
    address = EmuAddress(id=0, kdnr=0, emails=emails)
    _apply_fields(state, address, params)
    state.add(address)
    state.log_access("create", address.id)
    return result(action, [{"id": address.id, "type": "address", "elements": []}], None)
