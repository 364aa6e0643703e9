"""Which onOffice addresses a connection covers (its scope), decided without I/O.

- `customer` (the default of the customer-wide connection, no group): every address the claim
  may read; today's behaviour.
- `group_users` (the default of a group's connection): the addresses whose support user
  (`Benutzer`) is a member of the group (`get groups` -> userIds, `read user` -> names).
- `field`: the addresses whose `field` holds one of `values` (e.g. a branch field or a
  Merkmal), for customers that organise their groups differently.

onOffice documents `Benutzer` as the user *name*; whether a read may filter on it is not
documented. So the criterion goes into the read's filter (dropped by the client when onOffice
refuses it) and is checked again on every address read, matching the user's name, full name
or id. An address outside the scope is never read, pushed, written or counted by the
connection; new addresses get the scope's mark (the claiming user as support user).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from onoffice_client.models import Address
from onoffice_client.scope import AddressScope, Group, User

SUPPORT_USER = "Benutzer"
# Fields the connector decides by itself: a scope on one of them would change what "newsletter
# Yes", "active" or "changed" mean for the connection.
RESERVED_FIELDS = frozenset(
    {"newsletter_aktiv", "Status", "Email", "Aenderung", "id", "KdNr", "NewsletterTag"}
)
ScopeKind = Literal["customer", "group_users", "field"]


class ScopeDefinition(BaseModel):
    """A connection's scope as stored (`connection.scope`) and set through the API."""

    kind: ScopeKind
    field: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9_]*$")
    values: list[str] = Field(default_factory=list, max_length=100)
    # Whether `field` is a multiselect (new addresses get the first value as a list then).
    multiselect: bool = False

    @model_validator(mode="after")
    def _field_needs_values(self) -> ScopeDefinition:
        if self.kind == "field" and not (self.field and self.values):
            raise ValueError("a field scope needs a field and at least one value")
        if self.field in RESERVED_FIELDS:
            raise ValueError(f"{self.field} cannot define a scope: the connector decides by it")
        return self

    @property
    def needs_group(self) -> bool:
        return self.kind == "group_users"


def scope_definition(group_id: str, stored: Mapping[str, Any] | None) -> ScopeDefinition:
    """The connection's scope: the stored one, else the default for its group."""
    if stored:
        return ScopeDefinition.model_validate(stored)
    return ScopeDefinition(kind="group_users" if group_id else "customer")


def _key(value: str) -> str:
    return value.strip().casefold()


def member_keys(users: Sequence[User]) -> set[str]:
    """How an address's `Benutzer` may name a member: login name, full name or id."""
    keys: set[str] = set()
    for user in users:
        full = f"{user.first_name} {user.last_name}".strip()
        keys.update(_key(v) for v in (user.name, full, user.id) if v.strip())
    return keys


def in_scope(definition: ScopeDefinition, keys: set[str], address: Address) -> bool:
    """Whether `address` belongs to the scope (`keys`: `member_keys` or the field values)."""
    if definition.kind == "customer":
        return True
    name = SUPPORT_USER if definition.kind == "group_users" else definition.field
    return any(_key(v) in keys for v in address.extra.get(name, []))


def address_scope(
    definition: ScopeDefinition,
    *,
    group: Group | None = None,
    users: Sequence[User] = (),
    claim_user_id: str = "",
) -> AddressScope:
    """The client-side scope of `definition`. A group scope needs its `group` and the `users`
    read for its members; `claim_user_id` is the user whose claim the jobs run with (new
    addresses get them as support user, else the first member)."""
    if definition.kind == "customer":
        return AddressScope()
    if definition.kind == "field":
        keys = {_key(v) for v in definition.values}
        first: Any = [definition.values[0]] if definition.multiselect else definition.values[0]
        return AddressScope(
            fields=(definition.field,),
            criteria={definition.field: [{"op": "in", "val": list(definition.values)}]},
            accepts=lambda a: in_scope(definition, keys, a),
            create_fields={definition.field: first},
        )
    members = [u for u in users if group is not None and u.id in group.user_ids]
    keys = member_keys(members)
    # The filter names the members as onOffice documents the field (names), and by id as the
    # other reading; the local check accepts either (and the full name).
    values = sorted({u.name for u in members if u.name} | {u.id for u in members})
    creator = next((u for u in members if u.id == claim_user_id), members[0] if members else None)
    return AddressScope(
        fields=(SUPPORT_USER,),
        criteria={SUPPORT_USER: [{"op": "in", "val": values}]},
        accepts=lambda a: in_scope(definition, keys, a),
        create_fields={SUPPORT_USER: creator.name} if creator is not None else {},
    )


def describe(definition: ScopeDefinition, group_id: str) -> dict[str, Any]:
    """What the UI shows of a scope: its kind and the parameters of its text."""
    return {
        "kind": definition.kind,
        "group_id": group_id,
        "field": definition.field,
        "values": list(definition.values),
    }
