"""The onOffice emulator's state: addresses, activities, customers (API users, marketplace
claims, rights), injected faults, settings and what the client did."""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from emulators.onoffice.users import EmuGroup, EmuUser
from emulators.onoffice_data import (
    DATETIME_FORMAT,
    DEFAULT_ACTION_KINDS,
    EmuAddress,
    _norm,
    compile_filter,
    sort_key,
)

DEFAULT_TOKEN = "emulatortoken0000000000000000001"
DEFAULT_SECRET = "emulator-secret-" + "0" * 48
TIMESTAMP_WINDOW = 120
MAX_LIST_LIMIT = 500
ALL_RIGHTS = frozenset({"read", "modify", "create", "agentslog"})
URN = "urn:onoffice-de-ns:smart:2.5:smartml:action:"
LOGGED_KEYS = ("actionid", "resourcetype", "resourceid", "timestamp", "hmac")


@dataclass
class Customer:
    token: str
    secret: str
    # Marketplace customers must send their current apiClaim as `extendedclaim`; None means
    # an ordinary API user without claims.
    claim: str | None = None
    # Claims of individual users (apiClaim -> user id): a call with one runs with that user's
    # visibility (emulators.onoffice.users); `claim` above sees every address.
    user_claims: dict[str, int] = field(default_factory=dict)
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
            "user_claims": dict(self.user_claims),
            "active": self.active,
            "ip_allowed": self.ip_allowed,
            "rights": sorted(self.rights),
            "unlocked": self.unlocked,
        }


@dataclass
class Fault:
    kind: str  # "http" | "hang" | "inband" | "lost" (the actions run, the answer is lost)
    remaining: int
    status: int = 503
    seconds: float = 30.0  # "hang", and "lost" (0 for a lost answer with `status` at once)
    errorcode: int = 0
    message: str = ""
    resourcetype: str | None = None
    verb: str | None = None  # "lost" and "inband" faults: only actions of this verb


@dataclass
class ReadHook:
    """An agent saving addresses while a paged read is under way: when a filtered `read
    address` at `listoffset` arrives, `addresses` are saved (as `seed(replace=False)`), before
    the read is answered (`when="before"`: the page already shifts) or after its records were
    taken (`"after"`); the answer is then held for `hold_seconds`. Fires once."""

    listoffset: int
    addresses: list[dict[str, Any]]
    when: str = "before"
    hold_seconds: float = 0.0
    field: str = "newsletter_aktiv"  # only reads filtered on this field


@dataclass
class Settings:
    modified_readable: bool = True  # may `Aenderung` be requested in `data`?
    unsortable_fields: set[str] = field(default_factory=set)
    duplicate_id: str = "existing"  # create with a duplicate hit returns "existing" id or "zero"
    action_error_code: int = 97  # top-level errorcode when an action failed (0 also seen)
    timezone: str = "Europe/Berlin"
    # The two readings of the support user field where onOffice's docs are silent: may a read
    # filter on `Benutzer`, and does a read answer its user name (documented) or the user id?
    support_user_filterable: bool = True
    support_user_output: str = "name"  # "name" | "id"


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
        self.read_hooks: list[ReadHook] = []
        self.read_hooks_fired = 0
        self.latency = 0.0
        self.clock_offset = 0.0
        self.settings = Settings()
        self.http_requests = 0
        self.request_counts: Counter[str] = Counter()
        # HTTP requests by the kinds of their actions ("modify:address+create:agentslog"), and
        # how many were in flight at once at most (for bench/webhooks: onOffice one at a time).
        self.request_kinds: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        # Seconds with at least one request in flight, and since when (for bench/webhooks: the
        # share of a drain's time spent waiting for onOffice, its critical path).
        self.busy_s = 0.0
        self.busy_since = 0.0
        self.recent_requests: deque[dict[str, Any]] = deque(maxlen=500)
        # token -> times of reads filtered by modification time (incremental polls), for bench/
        self.change_reads: dict[str, deque[float]] = {}
        self.users: dict[int, EmuUser] = {}
        self.groups: dict[int, EmuGroup] = {}
        # The user whose claim the action being run carries (None: the customer's main claim).
        self.acting_user: EmuUser | None = None
        # Every action's extendedclaim: claim -> Counter of "verb:resourcetype".
        self.claims_used: dict[str, Counter[str]] = {}
        # The claim of the action being run, and (when a test sets a list here) every address
        # an action touched under it: (claim, "read" | "modify" | "create" | "activity", id).
        self.acting_claim: str | None = None
        self.access_log: list[tuple[str | None, str, int]] | None = None
        self._next_id = 1
        self._next_activity_id = 1
        self._version = 0
        self._query_cache: dict[tuple[Any, ...], list[int]] = {}
        # Address ids by compared email value, kept current address by address: a write marks
        # its address (`touch`), a bulk change (`seed`) rebuilds it all at the next read.
        self._email_index: dict[str, set[int]] = {}
        self._email_key: dict[int, str] = {}
        self._email_dirty: set[int] = set()
        self._email_rebuild = True

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
        self._email_dirty.add(address.id)
        self._bump()

    def changed(self) -> None:
        """Any address may have changed (a bulk seed)."""
        self._email_rebuild = True
        self._bump()

    def _bump(self) -> None:
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
        candidates: Any = self._by_email(filter_spec)
        if candidates is None:
            candidates = self.addresses.values()
        if id_range is not None and isinstance(candidates, list):
            low, high = id_range
            candidates = [a for a in candidates if low <= a.id <= high]
        elif id_range is not None:
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

    def _by_email(self, filter_spec: Any) -> list[EmuAddress] | None:
        """The only addresses an `Email` `=`/`in` condition can match (None: the filter has
        none), from an index by compared value rebuilt after a write: a read of a few hundred
        emails (the full sync's person reads) costs those, not a scan of the whole book, so the
        emulator's own CPU does not stand in for onOffice's latency. The filter's predicates
        are still applied to them."""
        conditions = filter_spec.get("Email") if isinstance(filter_spec, dict) else None
        for condition in conditions if isinstance(conditions, list) else []:
            op = str(condition.get("op", "")).strip().lower() if isinstance(condition, dict) else ""
            if op in ("=", "is", "in"):
                val = condition.get("val")
                values = val if isinstance(val, list) else [val]
                self._index_emails()
                found = {i for v in values for i in self._email_index.get(_norm(v, False), ())}
                return [self.addresses[i] for i in sorted(found)]
        return None

    def _index_emails(self) -> None:
        """Bring the email index up to date: the addresses written since the last read move to
        their new value (a rebuild after a bulk change). Rebuilding it on every write made each
        lookup after one scan the whole book (the many-tenants benchmark's drains interleave
        writes and lookups: the emulator, not the connector, was the bottleneck)."""
        if self._email_rebuild:
            self._email_index, self._email_key = {}, {}
            self._email_dirty = set(self.addresses)
            self._email_rebuild = False
        for address_id in self._email_dirty:
            old = self._email_key.pop(address_id, None)
            if old is not None:
                ids = self._email_index.get(old)
                if ids is not None:
                    ids.discard(address_id)
                    if not ids:
                        del self._email_index[old]
            address = self.addresses.get(address_id)
            if address is not None:
                key = _norm(address.email, False)
                self._email_key[address_id] = key
                self._email_index.setdefault(key, set()).add(address_id)
        self._email_dirty = set()

    def log_access(self, op: str, address_id: int) -> None:
        if self.access_log is not None:
            self.access_log.append((self.acting_claim, op, address_id))

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
            "claims_used": {c: dict(n) for c, n in self.claims_used.items()},
        }
        if with_addresses:
            out["addresses"] = [a.to_dict() for a in self.addresses.values()]
        return out
