"""One onOffice action: its checks (HMAC v2, timestamp window, marketplace claim, rights,
in-band faults) and the handlers by (verb, resource type); addresses are in `addresses`."""

from __future__ import annotations

import hmac
import time
from collections import Counter
from datetime import datetime
from typing import Any

from emulators._kit import take_fault
from emulators.onoffice.addresses import create_address, modify_address, read_address
from emulators.onoffice.envelope import ActionError, error_result, result
from emulators.onoffice.state import TIMESTAMP_WINDOW, URN, Customer, OnOfficeState
from emulators.onoffice.users import get_groups, read_users
from emulators.onoffice_data import DATETIME_FORMAT, field_config
from onoffice_client.signature import hmac_v2


def check_action(state: OnOfficeState, customer: Customer, action: Any) -> None:
    if not isinstance(action, dict):
        raise ActionError(16, "Action is not an object")
    for key, code in (("actionid", 17), ("resourcetype", 18), ("parameters", 20)):
        if key not in action:
            raise ActionError(code, f"Missing element: {key}")
    if not isinstance(action["parameters"], dict):
        raise ActionError(20, "parameters must be an object")
    version = action.get("hmac_version")
    if str(version) != "2":
        raise ActionError(137, "The HMAC is invalid (only hmac_version 2 is emulated)")
    try:
        timestamp = int(action.get("timestamp"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ActionError(136, "Your timestamp is too old or your server time is wrong") from None
    expected = hmac_v2(
        customer.token,
        customer.secret,
        timestamp,
        str(action["resourcetype"]),
        str(action["actionid"]),
    )
    if not hmac.compare_digest(expected.encode(), str(action.get("hmac", "")).encode()):
        raise ActionError(137, "The HMAC is invalid")
    if abs(state.now() - timestamp) > TIMESTAMP_WINDOW:
        raise ActionError(136, "Your timestamp is too old or your server time is wrong")
    state.acting_user = None
    claim = action["parameters"].get("extendedclaim")
    state.acting_claim = claim if isinstance(claim, str) else None
    if isinstance(claim, str):
        key = f"{str(action['actionid']).rsplit(':', 1)[-1]}:{action['resourcetype']}"
        state.claims_used.setdefault(claim, Counter())[key] += 1
    if customer.claim is None or action["resourcetype"] == "unlockProvider":
        return
    if not claim or not isinstance(claim, str):
        raise ActionError(193, "Parameter extendedclaim is required, but missing, empty or invalid")
    if claim in customer.outdated_claims:
        raise ActionError(201, 'Parameter "extendedclaim" is outdated')
    if claim in customer.user_claims:
        state.acting_user = state.users.get(customer.user_claims[claim])
        return
    if claim != customer.claim:
        raise ActionError(248, "No matching extendedclaim")


def create_activity(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    params = action["parameters"]
    if "addressids" not in params and "estateid" not in params:
        raise ActionError(98, "Missing relation to address and/or estate record")
    ids = params.get("addressids", [])
    if not isinstance(ids, list):
        raise ActionError(99, "Address record ids not in array")
    for address_id in ids:
        if int(address_id) not in state.addresses:
            raise ActionError(292, f"Unknown address record id: {address_id}")
    kind = params.get("actionkind")
    kinds = {k["key"]: k for k in state.action_kinds}
    if kind is not None and kind not in kinds:
        raise ActionError(100, f"Unknown kind of action: {kind}")
    kind_type = params.get("actiontype")
    if kind_type is not None and (kind is None or kind_type not in (kinds[kind]["types"] or {})):
        raise ActionError(101, f"Unknown type of action: {kind_type}")
    when = params.get("datetime") or state.now_text()
    try:
        datetime.strptime(str(when), DATETIME_FORMAT)
    except ValueError:
        raise ActionError(257, f"Invalid datetime: {when}") from None
    first_id = 0
    for address_id in ids:
        state.log_access("activity", int(address_id))
        activity_id = state.next_activity_id()
        first_id = first_id or activity_id
        state.activity_times.append(time.time())
        state.activities.append(
            {
                "id": activity_id,
                "address_id": int(address_id),
                "actionkind": kind,
                "actiontype": kind_type,
                "note": str(params.get("note", "")),
                "datetime": str(when),
            }
        )
    return result(action, [{"id": first_id, "type": "agentsLog", "elements": []}], None)


# `read agentslog` fields -> the keys of a stored activity.
ACTIVITY_FIELDS = {
    "Aktionsart": "actionkind",
    "Aktionstyp": "actiontype",
    "Bemerkung": "note",
    "Datum": "datetime",
}


def read_activities(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    """The activities of `addressid` (singular on read), newest first, paged (at most 500)."""
    params = action["parameters"]
    ids = params.get("addressid")
    if not isinstance(ids, list) or not ids:
        raise ActionError(98, "Missing relation to address and/or estate record")
    data = params.get("data") or list(ACTIVITY_FIELDS)
    if not isinstance(data, list):
        raise ActionError(75, "data must be an array of field names")
    for name in data:
        if name not in ACTIVITY_FIELDS:
            raise ActionError(75, f"Unknown field: {name}")
    try:
        limit = min(int(params.get("listlimit", 20)), 500)
        offset = int(params.get("listoffset", 0))
    except (TypeError, ValueError):
        raise ActionError(257, "listlimit and listoffset must be integers") from None
    wanted = {int(i) for i in ids}
    matching = [a for a in reversed(state.activities) if a["address_id"] in wanted]
    records = [
        {
            "id": a["id"],
            "type": "agentslog",
            "elements": {name: a[ACTIVITY_FIELDS[name]] or "" for name in data},
        }
        for a in matching[offset : offset + limit]
    ]
    return result(action, records, len(matching))


def get_fields(state: OnOfficeState, customer: Customer, action: dict[str, Any]) -> dict[str, Any]:
    params = action["parameters"]
    modules = params.get("modules") or ["address"]
    wanted = params.get("fieldList") or None
    labels = bool(params.get("labels", False))
    records = []
    if "address" in modules:
        elements = {}
        for name, spec in field_config().items():
            if wanted is not None and name not in wanted:
                continue
            if not labels:
                spec["permittedvalues"] = list(spec["permittedvalues"])
            elements[name] = spec
        records.append({"id": "address", "type": "", "elements": elements})
    return result(action, records, len(records))


def get_action_kinds(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    records = [
        {"id": index, "type": "", "elements": dict(kind)}
        for index, kind in enumerate(state.action_kinds)
    ]
    return result(action, records, len(records))


def unlock_provider(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    params = action["parameters"]
    cache_id = str(params.get("parameterCacheId") or "")
    if cache_id not in state.parameter_caches:
        raise ActionError(177, "The parameter cache does not exist")
    claim = params.get("extendedclaim")
    if not claim:
        raise ActionError(193, "Parameter extendedclaim is required, but missing, empty or invalid")
    if claim != state.parameter_caches[cache_id]:
        raise ActionError(248, "No matching extendedclaim")
    del state.parameter_caches[cache_id]
    customer.unlocked = True
    return result(action, [{"id": 0, "type": "", "elements": {"success": "success"}}], None)


HANDLERS = {
    ("read", "address"): read_address,
    ("modify", "address"): modify_address,
    ("create", "address"): create_address,
    ("create", "agentslog"): create_activity,
    ("read", "agentslog"): read_activities,
    ("get", "fields"): get_fields,
    ("get", "actionkindtypes"): get_action_kinds,
    ("do", "unlockProvider"): unlock_provider,
    ("get", "groups"): get_groups,
    ("read", "user"): read_users,
}


# (verb, resourcetype) -> (right, errorcode, message) when the API user lacks it.
REQUIRED_RIGHTS = {
    ("read", "address"): ("read", 235, "Missing rights to read these records"),
    ("modify", "address"): ("modify", 174, "Missing permission to modify this record"),
    ("create", "address"): ("create", 131, "Address creation without proper user rights"),
    ("create", "agentslog"): ("agentslog", 261, "Missing write right for address ids"),
    ("read", "agentslog"): ("read", 235, "Missing rights to read these records"),
}


def run_action(state: OnOfficeState, customer: Customer, action: Any) -> dict[str, Any]:
    try:
        check_action(state, customer, action)
        verb = str(action["actionid"])
        if not verb.startswith(URN):
            raise ActionError(19, f"Unknown actionid: {verb}")
        key = (verb.removeprefix(URN), str(action["resourcetype"]))
        state.request_counts[":".join(key)] += 1
        if key[1] in ("log", "executeMarketplaceWebhooks") and customer.claim is not None:
            raise ActionError(240, "Call for Marketplace Api-Users not allowed")
        handler = HANDLERS.get(key)
        if handler is None:
            raise ActionError(20, f"Unknown resource type for {key[0]}: {key[1]}")
        if key in REQUIRED_RIGHTS:
            right, code, message = REQUIRED_RIGHTS[key]
            if right not in customer.rights:
                raise ActionError(code, message)
        fault = take_fault(
            state.faults,
            lambda f: (
                f.kind == "inband" and f.resourcetype in (None, key[1]) and f.verb in (None, key[0])
            ),
        )
        if fault is not None:
            raise ActionError(fault.errorcode, fault.message)
        return handler(state, customer, action)
    except ActionError as exc:
        return error_result(action, exc.errorcode, exc.message)
