"""onOffice enterprise API emulator: a real ASGI app for tests and benchmarks.

Serves `POST /api/stable/api.php` and `/api/latest/api.php` the way the documented API
behaves (token + HMAC v2, ±120 s timestamps, marketplace `extendedclaim`, in-band error
envelopes), and a JSON control API under `/_control/` to seed data, add customers, inject
faults and read back everything the client did. A customer added with `address_range` reads
only the addresses with ids in that range (many tenants in one emulator), and
`GET /_control/change-reads` lists, per token, when it read addresses by `Aenderung`;
`GET /_control/activity-log` lists when each activity was created (wall clock).

Run standalone: `python -m emulators.onoffice --port 8081 --seed-addresses 1000`.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from emulators.onoffice_data import (
    CONTACT_TYPES,
    DATETIME_FORMAT,
    DEFAULT_ACTION_KINDS,
    MULTISELECT_FIELDS,
    READABLE_FIELDS,
    SINGLESELECT_FIELDS,
    WRITABLE_FIELDS,
    EmuAddress,
    FilterError,
    compile_filter,
    field_config,
    generate_address_book,
    output_elements,
    sort_key,
)
from onoffice_client.signature import hmac_v2

DEFAULT_TOKEN = "emulatortoken0000000000000000001"
DEFAULT_SECRET = "emulator-secret-" + "0" * 48
TIMESTAMP_WINDOW = 120
MAX_LIST_LIMIT = 500
ALL_RIGHTS = frozenset({"read", "modify", "create", "agentslog"})
_URN = "urn:onoffice-de-ns:smart:2.5:smartml:action:"
_LOGGED_KEYS = ("actionid", "resourcetype", "resourceid", "timestamp", "hmac")


class ActionError(Exception):
    def __init__(self, errorcode: int, message: str) -> None:
        super().__init__(message)
        self.errorcode = errorcode
        self.message = message


@dataclass
class Customer:
    token: str
    secret: str
    # Marketplace customers must send their current apiClaim as `extendedclaim`; None means
    # an ordinary API user without claims.
    claim: str | None = None
    outdated_claims: set[str] = field(default_factory=set)
    active: bool = True
    ip_allowed: bool = True
    rights: set[str] = field(default_factory=lambda: set(ALL_RIGHTS))
    unlocked: bool = False
    # Inclusive range of address ids this customer's reads see; None = every address. Lets one
    # emulator host many customers with their own address books (bench/tenants.py).
    address_range: tuple[int, int] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "claim": self.claim,
            "active": self.active,
            "ip_allowed": self.ip_allowed,
            "rights": sorted(self.rights),
            "unlocked": self.unlocked,
        }


@dataclass
class Fault:
    kind: str  # "http" | "hang" | "inband"
    remaining: int
    status: int = 503
    seconds: float = 30.0
    errorcode: int = 0
    message: str = ""
    resourcetype: str | None = None


@dataclass
class Settings:
    modified_readable: bool = True  # may `Aenderung` be requested in `data`?
    unsortable_fields: set[str] = field(default_factory=set)
    duplicate_id: str = "existing"  # create with a duplicate hit returns "existing" id or "zero"
    action_error_code: int = 97  # top-level errorcode when an action failed (0 also seen)
    timezone: str = "Europe/Berlin"


class OnOfficeState:
    """Everything the emulator knows; tests may also inspect it directly."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.addresses: dict[int, EmuAddress] = {}
        self.activities: list[dict[str, Any]] = []
        self.activity_times: list[float] = []  # wall clock of each activity's creation
        self.customers: dict[str, Customer] = {
            DEFAULT_TOKEN: Customer(token=DEFAULT_TOKEN, secret=DEFAULT_SECRET)
        }
        self.parameter_caches: dict[str, str] = {}  # parameterCacheId -> activation apiClaim
        self.action_kinds: list[dict[str, Any]] = [dict(k) for k in DEFAULT_ACTION_KINDS]
        self.faults: list[Fault] = []
        self.latency = 0.0
        self.clock_offset = 0.0
        self.settings = Settings()
        self.http_requests = 0
        self.request_counts: Counter[str] = Counter()
        self.recent_requests: deque[dict[str, Any]] = deque(maxlen=500)
        # token -> times of reads filtered by modification time (incremental polls), for bench/
        self.change_reads: dict[str, deque[float]] = {}
        self._next_id = 1
        self._next_activity_id = 1
        self._version = 0
        self._query_cache: dict[tuple[Any, ...], list[int]] = {}

    # -- time --------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def now_text(self) -> str:
        tz = ZoneInfo(self.settings.timezone)
        return datetime.fromtimestamp(self.now(), tz).strftime(DATETIME_FORMAT)

    # -- addresses ---------------------------------------------------------------------------

    def seed(self, records: list[dict[str, Any]], *, replace: bool = True) -> list[int]:
        if replace:
            self.addresses.clear()
            self._next_id = 1
        now = self.now_text()
        ids = []
        for data in records:
            address_id = int(data.get("id") or self._next_id)
            self._next_id = max(self._next_id, address_id + 1)
            self.addresses[address_id] = EmuAddress.from_dict(data, id=address_id, modified=now)
            ids.append(address_id)
        self.changed()
        return ids

    def add(self, address: EmuAddress) -> None:
        """Store a new address under the next free id."""
        address.id = address.kdnr = self._next_id
        self._next_id += 1
        self.addresses[address.id] = address
        self.touch(address)

    def touch(self, address: EmuAddress) -> None:
        address.modified = self.now_text()
        self.changed()

    def changed(self) -> None:
        self._version += 1
        self._query_cache.clear()

    def query(
        self,
        filter_spec: Any,
        sortby: str | None,
        descending: bool,
        id_range: tuple[int, int] | None = None,
    ) -> list[int]:
        """Matching ids (within `id_range`, a customer's own addresses) in order; cached until
        the next write so paging is O(page). A small range is looked up id by id, so one
        tenant's read costs its own addresses, not the whole emulator's (many-tenant runs)."""
        key = (json.dumps(filter_spec, sort_keys=True, default=str), sortby, descending, id_range)
        cached = self._query_cache.get(key)
        if cached is not None:
            return cached
        predicates = compile_filter(filter_spec)
        candidates: Any = self.addresses.values()
        if id_range is not None:
            low, high = id_range
            if high - low < len(self.addresses):
                found = (self.addresses.get(i) for i in range(low, high + 1))
                candidates = [a for a in found if a is not None]
            else:
                candidates = [a for a in candidates if low <= a.id <= high]
        matches = [a for a in candidates if all(p(a) for p in predicates)]
        matches.sort(key=sort_key(sortby or "id"), reverse=descending)
        ids = [a.id for a in matches]
        if len(self._query_cache) >= 16:
            self._query_cache.clear()
        self._query_cache[key] = ids
        return ids

    def next_activity_id(self) -> int:
        self._next_activity_id += 1
        return self._next_activity_id - 1

    def snapshot(self, *, with_addresses: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "activities": self.activities,
            "customers": [c.public() for c in self.customers.values()],
            "http_requests": self.http_requests,
            "request_counts": dict(self.request_counts),
            "recent_requests": list(self.recent_requests),
            "address_count": len(self.addresses),
        }
        if with_addresses:
            out["addresses"] = [a.to_dict() for a in self.addresses.values()]
        return out


# ---------------------------------------------------------------------------------------------
# Envelopes
# ---------------------------------------------------------------------------------------------


def _top_error(errorcode: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "status": {"code": 400, "errorcode": errorcode, "message": message},
            "response": {"results": []},
        }
    )


def _result(
    action: dict[str, Any], records: list[dict[str, Any]], cnt: int | None
) -> dict[str, Any]:
    verb = str(action.get("actionid", "")).rsplit(":", 1)[-1]
    return {
        "actionid": action.get("actionid"),
        "resourceid": action.get("resourceid", ""),
        "resourcetype": action.get("resourcetype"),
        "cacheable": verb in ("read", "get"),
        "identifier": action.get("identifier", ""),
        "data": {"meta": {"cntabsolute": cnt}, "records": records},
        "status": {"errorcode": 0, "message": "OK"},
    }


def _error_result(action: Any, errorcode: int, message: str) -> dict[str, Any]:
    action = action if isinstance(action, dict) else {}
    result = _result(action, [], None)
    result["status"] = {"errorcode": errorcode, "message": message}
    return result


# ---------------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------------


def _check_action(state: OnOfficeState, customer: Customer, action: Any) -> None:
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
    if customer.claim is None or action["resourcetype"] == "unlockProvider":
        return
    claim = action["parameters"].get("extendedclaim")
    if not claim or not isinstance(claim, str):
        raise ActionError(193, "Parameter extendedclaim is required, but missing, empty or invalid")
    if claim in customer.outdated_claims:
        raise ActionError(201, 'Parameter "extendedclaim" is outdated')
    if claim != customer.claim:
        raise ActionError(248, "No matching extendedclaim")


def _read_address(
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
    try:
        ids = state.query(params.get("filter"), sortby, descending, customer.address_range)
    except FilterError as exc:
        raise ActionError(exc.errorcode, exc.message) from None
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
    return _result(action, records, len(ids))


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


def _modify_address(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    try:
        address = state.addresses[int(action.get("resourceid") or 0)]
    except (KeyError, TypeError, ValueError):
        raise ActionError(80, f"Unknown record: {action.get('resourceid')}") from None
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
    state.touch(address)
    return _result(action, [{"id": 0, "type": "address", "elements": {"success": "success"}}], None)


def _create_address(
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
                state.touch(existing)
            record_id = existing.id if state.settings.duplicate_id == "existing" else 0
            return _result(action, [{"id": record_id, "type": "address", "elements": []}], None)
    address = EmuAddress(id=0, kdnr=0, emails=emails)
    _apply_fields(state, address, params)
    state.add(address)
    return _result(action, [{"id": address.id, "type": "address", "elements": []}], None)


def _create_activity(
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
    return _result(action, [{"id": first_id, "type": "agentsLog", "elements": []}], None)


def _get_fields(state: OnOfficeState, customer: Customer, action: dict[str, Any]) -> dict[str, Any]:
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
    return _result(action, records, len(records))


def _get_action_kinds(
    state: OnOfficeState, customer: Customer, action: dict[str, Any]
) -> dict[str, Any]:
    records = [
        {"id": index, "type": "", "elements": dict(kind)}
        for index, kind in enumerate(state.action_kinds)
    ]
    return _result(action, records, len(records))


def _unlock_provider(
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
    return _result(action, [{"id": 0, "type": "", "elements": {"success": "success"}}], None)


HANDLERS = {
    ("read", "address"): _read_address,
    ("modify", "address"): _modify_address,
    ("create", "address"): _create_address,
    ("create", "agentslog"): _create_activity,
    ("get", "fields"): _get_fields,
    ("get", "actionkindtypes"): _get_action_kinds,
    ("do", "unlockProvider"): _unlock_provider,
}


# (verb, resourcetype) -> (right, errorcode, message) when the API user lacks it.
REQUIRED_RIGHTS = {
    ("read", "address"): ("read", 235, "Missing rights to read these records"),
    ("modify", "address"): ("modify", 174, "Missing permission to modify this record"),
    ("create", "address"): ("create", 131, "Address creation without proper user rights"),
    ("create", "agentslog"): ("agentslog", 261, "Missing write right for address ids"),
}


def _run_action(state: OnOfficeState, customer: Customer, action: Any) -> dict[str, Any]:
    try:
        _check_action(state, customer, action)
        verb = str(action["actionid"])
        if not verb.startswith(_URN):
            raise ActionError(19, f"Unknown actionid: {verb}")
        key = (verb.removeprefix(_URN), str(action["resourcetype"]))
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
        for fault in state.faults:
            if fault.kind == "inband" and fault.resourcetype in (None, key[1]):
                fault.remaining -= 1
                raise ActionError(fault.errorcode, fault.message)
        return handler(state, customer, action)
    except ActionError as exc:
        return _error_result(action, exc.errorcode, exc.message)
    finally:
        state.faults = [f for f in state.faults if f.remaining > 0]


def _is_change_read(action: Any) -> bool:
    if not isinstance(action, dict) or not str(action.get("actionid", "")).endswith(":read"):
        return False
    criteria = (action.get("parameters") or {}).get("filter")
    return isinstance(criteria, dict) and "Aenderung" in criteria


async def _api(state: OnOfficeState, request: Request) -> JSONResponse:
    state.http_requests += 1
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    actions: list[Any] = []
    if isinstance(body, dict) and isinstance(body.get("request"), dict):
        actions = body["request"].get("actions") or []
    state.recent_requests.append(
        {
            "at": time.time(),
            "actions": [
                {
                    k: a.get(k)
                    for k in ("actionid", "resourcetype", "resourceid", "timestamp", "hmac")
                }
                for a in actions
                if isinstance(a, dict)
            ],
        }
    )
    if isinstance(body, dict) and any(_is_change_read(a) for a in actions):
        reader = str(body.get("token"))
        state.change_reads.setdefault(reader, deque(maxlen=200)).append(time.time())
    if state.latency:
        await asyncio.sleep(state.latency)
    for fault in state.faults:
        if fault.kind in ("http", "hang"):
            fault.remaining -= 1
            state.faults = [f for f in state.faults if f.remaining > 0]
            if fault.kind == "hang":
                await asyncio.sleep(fault.seconds)
            return JSONResponse({"error": "injected fault"}, status_code=fault.status)
    if not isinstance(body, dict):
        return _top_error(4, "Malformed JSON")
    token = body.get("token")
    if not token or not isinstance(token, str):
        return _top_error(13, "Missing element: token")
    customer = state.customers.get(token)
    if customer is None:
        return _top_error(22, "Not authenticated")
    if not customer.active:
        return _top_error(42, "Customer inactive")
    if not customer.ip_allowed:
        return _top_error(158, "Access from this IP not allowed")
    if not isinstance(body.get("request"), dict):
        return _top_error(14, "Missing element: request")
    if not isinstance(actions, list) or not actions:
        return _top_error(15, "Missing element: actions")
    results = [_run_action(state, customer, action) for action in actions]
    failed = any(r["status"]["errorcode"] for r in results)
    code = state.settings.action_error_code if failed else 0
    return JSONResponse(
        {
            "status": {
                "code": 200,
                "errorcode": code,
                "message": "Error in action" if code else "OK",
            },
            "response": {"results": results},
        }
    )


# ---------------------------------------------------------------------------------------------
# App and control API
# ---------------------------------------------------------------------------------------------


def create_app(state: OnOfficeState | None = None) -> FastAPI:
    state = state or OnOfficeState()
    app = FastAPI(title="onOffice emulator")
    app.state.onoffice = state

    @app.post("/api/stable/api.php")
    @app.post("/api/latest/api.php")
    async def api(request: Request) -> JSONResponse:
        return await _api(state, request)

    @app.post("/_control/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"ok": True}

    @app.post("/_control/addresses")
    async def seed(payload: dict[str, Any]) -> dict[str, Any]:
        """`{"addresses": [...], "replace": true}` or `{"generate": N, "seed": S}`."""
        if "generate" in payload:
            records = generate_address_book(int(payload["generate"]), int(payload.get("seed", 0)))
        else:
            records = list(payload.get("addresses", []))
        ids = state.seed(records, replace=bool(payload.get("replace", True)))
        return {"ids": ids, "count": len(state.addresses)}

    @app.get("/_control/state")
    async def read_state(addresses: bool = True) -> dict[str, Any]:
        return state.snapshot(with_addresses=addresses)

    @app.get("/_control/activity-log")
    async def activity_log(after: int = 0) -> dict[str, Any]:
        """Activities from position `after` on: `[address id, wall-clock creation time]` each,
        and the position to ask from next (cheap to poll, unlike the whole state)."""
        entries = [
            [state.activities[i]["address_id"], state.activity_times[i]]
            for i in range(after, len(state.activities))
        ]
        return {"next": len(state.activities), "entries": entries}

    @app.get("/_control/change-reads")
    async def change_reads(since: float = 0.0) -> dict[str, list[float]]:
        """Per customer token: when it read addresses by modification time (wall clock), from
        `since` on."""
        return {
            token: [t for t in times if t >= since] for token, times in state.change_reads.items()
        }

    @app.post("/_control/customers")
    async def add_customer(payload: dict[str, Any]) -> dict[str, Any]:
        customer = Customer(
            token=str(payload["token"]),
            secret=str(payload["secret"]),
            claim=payload.get("claim"),
            active=bool(payload.get("active", True)),
            ip_allowed=bool(payload.get("ip_allowed", True)),
            rights=set(payload.get("rights", ALL_RIGHTS)),
            address_range=(
                (int(payload["address_range"][0]), int(payload["address_range"][1]))
                if payload.get("address_range")
                else None
            ),
        )
        state.customers[customer.token] = customer
        return customer.public()

    @app.post("/_control/customers/{token}/claim")
    async def rotate_claim(token: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A user opened the service again: the new apiClaim replaces the old one."""
        customer = state.customers[token]
        if customer.claim:
            customer.outdated_claims.add(customer.claim)
        customer.claim = str(payload["claim"])
        return customer.public()

    @app.post("/_control/parameter-caches")
    async def add_parameter_cache(payload: dict[str, Any]) -> dict[str, Any]:
        state.parameter_caches[str(payload["id"])] = str(payload["claim"])
        return {"ok": True}

    @app.put("/_control/action-kinds")
    async def set_action_kinds(payload: list[dict[str, Any]]) -> dict[str, Any]:
        state.action_kinds = payload
        return {"count": len(payload)}

    @app.post("/_control/faults")
    async def add_fault(payload: dict[str, Any]) -> dict[str, Any]:
        """`{"http_status": 503}`, `{"hang_seconds": 5}` or `{"errorcode": 88, "message": ..}`,
        each with optional `count` (default 1); in-band faults may name a `resourcetype`."""
        count = int(payload.get("count", 1))
        if "http_status" in payload:
            fault = Fault("http", count, status=int(payload["http_status"]))
        elif "hang_seconds" in payload:
            fault = Fault("hang", count, status=504, seconds=float(payload["hang_seconds"]))
        else:
            fault = Fault(
                "inband",
                count,
                errorcode=int(payload["errorcode"]),
                message=str(payload.get("message", "Injected error")),
                resourcetype=payload.get("resourcetype"),
            )
        state.faults.append(fault)
        return {"faults": len(state.faults)}

    @app.post("/_control/latency")
    async def set_latency(payload: dict[str, Any]) -> dict[str, Any]:
        state.latency = float(payload.get("seconds", 0))
        return {"latency": state.latency}

    @app.post("/_control/clock")
    async def set_clock(payload: dict[str, Any]) -> dict[str, Any]:
        state.clock_offset = float(payload.get("offset_seconds", 0))
        return {"offset_seconds": state.clock_offset}

    @app.post("/_control/settings")
    async def set_settings(payload: dict[str, Any]) -> dict[str, Any]:
        settings = state.settings
        if "modified_readable" in payload:
            settings.modified_readable = bool(payload["modified_readable"])
        if "unsortable_fields" in payload:
            settings.unsortable_fields = set(payload["unsortable_fields"])
        if "duplicate_id" in payload:
            settings.duplicate_id = str(payload["duplicate_id"])
        if "action_error_code" in payload:
            settings.action_error_code = int(payload["action_error_code"])
        return {
            "modified_readable": settings.modified_readable,
            "unsortable_fields": sorted(settings.unsortable_fields),
            "duplicate_id": settings.duplicate_id,
            "action_error_code": settings.action_error_code,
        }

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="onOffice API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--seed-addresses", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    state = OnOfficeState()
    if args.seed_addresses:
        state.seed(generate_address_book(args.seed_addresses, args.seed))
    print(f"onOffice emulator: token={DEFAULT_TOKEN} secret={DEFAULT_SECRET}", flush=True)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
