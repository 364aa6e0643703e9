"""An address scope for one client: which addresses its reads may return and what its new
addresses carry. The client applies it to every address read (the criteria as part of the
filter while onOffice accepts them, the local check always) and to `create_address`; what
the scope is, is the caller's decision (the connector: app/contacts/scope.py). Also the reads
a scope is built from: `get groups` and `read user`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from onoffice_client.models import Address
from onoffice_client.results import cntabsolute, result_records
from onoffice_client.transport import GET, READ, Action

if TYPE_CHECKING:
    from onoffice_client.client import OnOfficeClient
    from onoffice_client.transport import ActionTransport

USER_FIELDS = ("Name", "Vorname", "Nachname")


def _everyone(address: Address) -> bool:
    return True


@dataclass(frozen=True)
class AddressScope:
    # Fields each read asks for in addition (their values land in `Address.extra`).
    fields: tuple[str, ...] = ()
    # Filter conditions added to every filtered read; dropped for the client's lifetime when
    # onOffice rejects them (the local check below still holds).
    criteria: Mapping[str, Any] = field(default_factory=dict)
    # The local check every read address must pass (after the criteria, whatever onOffice did
    # with them).
    accepts: Callable[[Address], bool] = _everyone
    # Set on every address the client creates, so it is in the scope.
    create_fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class User:
    id: str
    name: str  # the login name, what an address's `Benutzer` holds
    first_name: str = ""
    last_name: str = ""


def _elements(record: Mapping[str, Any]) -> Mapping[str, Any]:
    elements = record.get("elements")
    return elements if isinstance(elements, Mapping) else {}


async def read_groups(client: ActionTransport) -> list[Group]:
    """`get groups`: every group of the customer with its members' user ids."""
    (result,) = await client._run([Action(GET, "groups", {})])
    groups = []
    for record in result_records(result):
        elements = _elements(record)
        raw_users = elements.get("userIds") or []
        users = raw_users if isinstance(raw_users, list | tuple) else [raw_users]
        groups.append(
            Group(
                id=str(elements.get("id", record.get("id", ""))),
                name=str(elements.get("name") or ""),
                user_ids=tuple(str(u) for u in users),
            )
        )
    return groups


async def read_users(client: ActionTransport, ids: Sequence[str]) -> list[User]:
    """`read user` of these ids: login name and names."""
    if not ids:
        return []
    params = {"data": list(USER_FIELDS), "recordids": [int(i) for i in ids if i.isdigit()]}
    (result,) = await client._run([Action(READ, "user", params)])
    users = []
    for record in result_records(result):
        elements = _elements(record)
        users.append(
            User(
                id=str(elements.get("id", record.get("id", ""))),
                name=str(elements.get("Name") or ""),
                first_name=str(elements.get("Vorname") or ""),
                last_name=str(elements.get("Nachname") or ""),
            )
        )
    return users


async def count_in_scope(client: OnOfficeClient, criteria: Mapping[str, Any]) -> int:
    """How many addresses matching `criteria` the client's scope covers: `cntabsolute` of a
    one-record read while onOffice applies the scope's filter (or the scope has none), else
    every page read and checked locally (onOffice refused the scope's filter)."""
    await client.ensure_ready()
    if client._scope_criteria or not client.scope.criteria:
        action = client._read_action(filter=criteria, offset=0, limit=1, sort=False)
        if not action.parameters["filter"]:
            action = Action(READ, "address", {k: v for k, v in action.parameters.items()
                                              if k != "filter"})  # fmt: skip
        (result,) = await client._read_with_fallbacks([action])
        total = cntabsolute(result)
        # Still filtered by the scope (a refusal drops the criteria for the client).
        if total is not None and (client._scope_criteria or not client.scope.criteria):
            return total
    count = 0
    async for page in client._iter_addresses(criteria):
        count += len(page)
    return count
