"""Async client for the onOffice enterprise API (the parts the newsletter connector uses)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from onoffice_client.activities import ActivityLog
from onoffice_client.emails import MAX_LIST_LIMIT, EmailQuery, EmailReads
from onoffice_client.models import (
    ActionKind,
    Address,
    AddressCreate,
    AddressUpdate,
    OnOfficeError,
)
from onoffice_client.normalize import (
    format_datetime,
    parse_address,
)
from onoffice_client.results import (
    action_kinds,
    address_fields,
    cntabsolute,
    created_id,
    result_records,
    update_parameters,
)
from onoffice_client.scope import AddressScope
from onoffice_client.transport import (
    CREATE,
    DO,
    GET,
    MODIFY,
    READ,
    Action,
    chunks,
)

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.onoffice.de/api/stable/api.php"
ADDRESS_FIELDS = (
    "Anrede",
    "Titel",
    "Vorname",
    "Name",
    "Email",
    "newsletter_aktiv",
    "NewsletterTag",
    "Status",
    "SpracheKontakt",
)
MODIFIED_FIELD = "Aenderung"
UNKNOWN_FIELD_CODES = frozenset({75, 141, 143, 144, 145})
UNKNOWN_SORT_CODE = 212
# A filter onOffice refuses: unknown field in the filter, or the filter does not validate.
REJECTED_FILTER_CODES = frozenset({141, 142, 232, 257})


# Active addresses (Status 1) whose newsletter field is Yes (1).
NEWSLETTER_SUBSCRIBERS: Mapping[str, Any] = {
    "newsletter_aktiv": [{"op": "=", "val": 1}],
    "Status": [{"op": "=", "val": 1}],
}


class OnOfficeClient(EmailReads, ActivityLog):
    """One API user of one onOffice customer.

    `claim` is the marketplace `apiClaim` to send as `extendedclaim` with every action (the
    activation claim for `unlock_provider`, the latest iframe/webhook claim otherwise).
    `scope` limits every address read to the scope's addresses and marks created ones
    (onoffice_client/scope.py); None = whatever the claim may see.
    """

    def __init__(
        self,
        *,
        api_url: str = DEFAULT_API_URL,
        token: str,
        secret: str,
        claim: str | None = None,
        http: httpx.AsyncClient | None = None,
        max_retries: int = 3,
        page_size: int = MAX_LIST_LIMIT,
        actions_per_request: int = 50,
        sort_by: str | None = "KdNr",
        timeout: float = 60.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        server_timezone: str = "Europe/Berlin",
        scope: AddressScope | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_LIST_LIMIT:
            raise ValueError(f"page_size must be between 1 and {MAX_LIST_LIMIT}")
        super().__init__(
            api_url=api_url,
            token=token,
            secret=secret,
            claim=claim,
            http=http,
            max_retries=max_retries,
            actions_per_request=actions_per_request,
            timeout=timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self._page_size = page_size
        # Which sort field and whether `Aenderung` is readable differ per customer/API version;
        # both are learned on first use and then kept for the client's lifetime.
        self._sort_by = sort_by
        self._read_modified = True
        self._tz = ZoneInfo(server_timezone)
        self.use_scope(scope or AddressScope())

    def use_scope(self, scope: AddressScope) -> None:
        """Limit every address read to `scope` from now on (and mark created addresses)."""
        self.scope = scope
        # Whether the scope's criteria go into the filters (until onOffice refuses them).
        self._scope_criteria = bool(scope.criteria)

    # -----------------------------------------------------------------------------------------
    # Reading addresses
    # -----------------------------------------------------------------------------------------

    async def iter_newsletter_addresses(self) -> AsyncIterator[list[Address]]:
        """All active addresses with Newsletter = Yes, one page (<= page_size) at a time."""
        async for page in self._iter_addresses(NEWSLETTER_SUBSCRIBERS):
            yield page

    @property
    def page_size(self) -> int:
        return self._page_size

    async def read_newsletter_page(
        self, offset: int, queries: Sequence[EmailQuery] = ()
    ) -> tuple[list[Address], int | None, list[dict[str, list[Address]]]]:
        """One page of active Newsletter = Yes addresses from `offset` (resumable paging), its
        `cntabsolute`, and the answers to `queries` sent in the same request (`email_query`).
        A page shorter than `page_size` is the last one. The page is NOT checked against the
        scope's local check (paging counts what onOffice returned): the caller passes it
        through `in_scope`."""
        await self.ensure_ready()  # the scope's criteria go into the filter
        action = self._read_action(filter=NEWSLETTER_SUBSCRIBERS, offset=offset)
        extra = [a for q in queries for a in q.actions]
        result, *rest = await self._read_with_fallbacks([action, *extra])
        answers = await self.email_answers(queries, rest)
        return self._parsed(result), cntabsolute(result), answers

    def in_scope(self, addresses: Sequence[Address]) -> list[Address]:
        """The addresses the scope's local check accepts."""
        return [a for a in addresses if self.scope.accepts(a)]

    async def iter_changed_addresses(
        self, since: datetime, overlap: timedelta = timedelta(minutes=10)
    ) -> AsyncIterator[list[Address]]:
        """Addresses modified at or after `since - overlap`, whatever their newsletter status.

        The overlap absorbs clock and time-zone differences; callers must tolerate repeats.
        """
        watermark = format_datetime(since - overlap, self._tz)
        async for page in self._iter_addresses({MODIFIED_FIELD: [{"op": ">=", "val": watermark}]}):
            yield page

    async def get_addresses(self, ids: Sequence[int]) -> list[Address]:
        await self.ensure_ready()
        unique_ids = list(dict.fromkeys(int(i) for i in ids))
        actions = [self._ids_action(chunk) for chunk in chunks(unique_ids, MAX_LIST_LIMIT)]
        results = await self._read_with_fallbacks(actions)
        return [address for result in results for address in self._addresses_of(result)]

    async def _iter_addresses(self, criteria: Mapping[str, Any]) -> AsyncIterator[list[Address]]:
        await self.ensure_ready()
        seen: set[int] = set()
        offset = 0
        while True:
            action = self._read_action(filter=criteria, offset=offset)
            (result,) = await self._read_with_fallbacks([action])
            addresses = self._parsed(result)
            # Records edited between two pages can shift across page borders; never repeat one.
            page = [a for a in self.in_scope(addresses) if a.id not in seen]
            seen.update(a.id for a in page)
            if page:
                yield page
            # Advance by what came back: a server clamping `listlimit` lower must not end
            # the walk early. `cntabsolute` decides; a short page only when it is missing.
            offset += len(addresses)
            total = cntabsolute(result)
            if not addresses:
                return
            if total is not None:
                if offset >= total:
                    return
            elif len(addresses) < self._page_size:
                return

    def _read_action(
        self, *, filter: Mapping[str, Any], offset: int, limit: int | None = None, sort: bool = True
    ) -> Action:
        """A paged read of addresses matching `filter`, sorted by the learned sort field."""
        if self._scope_criteria:
            # ANDed with the read's own conditions (a field's conditions are all applied).
            criteria = self.scope.criteria
            filter = {k: [*filter.get(k, []), *criteria.get(k, [])] for k in {*filter, *criteria}}
        params: dict[str, Any] = {
            "data": self._address_fields(),
            "filter": filter,
            "listlimit": limit or self._page_size,
            "listoffset": offset,
        }
        if sort and self._sort_by:
            params |= {"sortby": self._sort_by, "sortorder": "ASC"}
        return Action(READ, "address", params)

    def _ids_action(self, ids: Sequence[int]) -> Action:
        """A read of the addresses with these ids (at most MAX_LIST_LIMIT)."""
        params = {
            "data": self._address_fields(),
            "recordids": list(ids),
            "listlimit": MAX_LIST_LIMIT,
        }
        return Action(READ, "address", params)

    def _address_fields(self) -> list[str]:
        fields = [*ADDRESS_FIELDS, *self.scope.fields]
        return [*fields, MODIFIED_FIELD] if self._read_modified else fields

    async def _read_with_fallbacks(self, actions: Sequence[Action]) -> list[dict[str, Any]]:
        """Run read actions; drop `Aenderung` or the sort field once if this customer rejects it."""
        while True:
            try:
                return await self._run(actions)
            except OnOfficeError as exc:
                codes = UNKNOWN_FIELD_CODES | REJECTED_FILTER_CODES
                if exc.errorcode in codes and self._scope_criteria:
                    # The scope is then decided by the local check alone (more reads).
                    logger.info("onoffice.scope_filter_rejected", extra={"code": exc.errorcode})
                    self._scope_criteria = False
                elif exc.errorcode in UNKNOWN_FIELD_CODES and self._read_modified:
                    logger.info("onoffice.modified_field_unreadable", extra={"code": exc.errorcode})
                    self._read_modified = False
                elif exc.errorcode == UNKNOWN_SORT_CODE and self._sort_by:
                    logger.info("onoffice.sort_field_rejected", extra={"sort_by": self._sort_by})
                    self._sort_by = None
                else:
                    raise
            actions = [self._without_rejected_options(a) for a in actions]

    def _without_rejected_options(self, action: Action) -> Action:
        params = dict(action.parameters)
        params["data"] = self._address_fields()
        if not self._scope_criteria and isinstance(params.get("filter"), Mapping):
            criteria = self.scope.criteria
            kept = {
                k: [c for c in v if c not in criteria.get(k, [])]
                for k, v in params["filter"].items()
            }
            params["filter"] = {k: v for k, v in kept.items() if v}
        if self._sort_by is None:
            params.pop("sortby", None)
            params.pop("sortorder", None)
        return Action(action.actionid, action.resourcetype, params, action.resourceid)

    def _parsed(self, result: Mapping[str, Any]) -> list[Address]:
        return [parse_address(r, self._tz, self.scope.fields) for r in result_records(result)]

    def _addresses_of(self, result: Mapping[str, Any]) -> list[Address]:
        return self.in_scope(self._parsed(result))

    # -----------------------------------------------------------------------------------------
    # Writing addresses
    # -----------------------------------------------------------------------------------------

    async def modify_address(self, address_id: int, update: AddressUpdate) -> None:
        await self.modify_addresses([(address_id, update)])

    async def modify_addresses(self, updates: Sequence[tuple[int, AddressUpdate]]) -> None:
        actions = [self.address_action(address_id, update) for address_id, update in updates]
        await self._run([a for a in actions if a is not None])

    async def change_email(self, address_id: int, old_email: str, new_email: str) -> None:
        """Make `new_email` the address's main email (replacing `old_email` when given)."""
        if old_email:
            entry = {"action": "modify", "oldvalue": old_email, "newvalue": new_email}
        else:
            entry = {"action": "add", "newvalue": new_email}
        params = {"email": entry | {"default": True}}
        await self._run([Action(MODIFY, "address", params, resourceid=int(address_id))])

    async def create_address(self, data: AddressCreate) -> int:
        """Create an address unless one with this email exists; returns the (existing) id."""
        await self.ensure_ready()
        email = data.email.strip()
        params: dict[str, Any] = {
            "Anrede": data.salutation,
            "Vorname": data.first_name,
            "Name": data.last_name,
            "email": email,
            "default_email": email,
            "newsletter_aktiv": str(int(data.newsletter)),
            "NewsletterTag": list(data.tags),
            "checkDuplicate": True,
            "noOverrideByDuplicate": True,
        }
        if data.origin:
            params["HerkunftKontakt"] = [data.origin]
        params |= self.scope.create_fields
        (result,) = await self._run([Action(CREATE, "address", params)])
        new_id = created_id(result)
        if new_id and self.scope.create_fields and not await self.get_addresses([new_id]):
            # onOffice's duplicate check found an address outside the scope: this scope gets
            # an address of its own (onOffice then holds a duplicate, as it does elsewhere).
            params["checkDuplicate"] = False
            (result,) = await self._run([Action(CREATE, "address", params)])
            new_id = created_id(result)
        if new_id:
            return new_id
        # What onOffice returns when the duplicate check hits is undocumented; without an id,
        # the existing record (lowest id wins, as for onOffice's own duplicate check) is it.
        existing = await self.find_addresses_by_email(email)
        if not existing:
            raise OnOfficeError(f"onOffice created no address for {email!r} and returned no id")
        return min(a.id for a in existing)

    # -----------------------------------------------------------------------------------------
    # Activities, configuration, activation
    # -----------------------------------------------------------------------------------------

    async def get_fields(self, fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Field configuration of address fields; `permittedvalues` normalised to key -> label."""
        params = {
            "labels": True,
            "language": "DEU",
            "modules": ["address"],
            "fieldList": list(fields),
        }
        (result,) = await self._run([Action(GET, "fields", params)])
        return address_fields(result, fields)

    async def get_action_kinds(self) -> list[ActionKind]:
        (result,) = await self._run([Action(GET, "actionkindtypes", {})])
        return action_kinds(result)

    async def unlock_provider(self, parameter_cache_id: str) -> None:
        """Finish a marketplace activation; the constructor's `claim` is the activation apiClaim."""
        params = {"parameterCacheId": parameter_cache_id}
        (result,) = await self._run([Action(DO, "unlockProvider", params)])
        records = result_records(result)
        elements = records[0].get("elements") if records else None
        if not isinstance(elements, Mapping) or elements.get("success") != "success":
            raise OnOfficeError("onOffice did not confirm the activation (unlockProvider)")

    def address_action(self, address_id: int, update: AddressUpdate) -> Action | None:
        """The modify action for one address (None when the update changes nothing)."""
        params = update_parameters(update)
        return Action(MODIFY, "address", params, resourceid=int(address_id)) if params else None
