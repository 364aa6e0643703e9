"""Users, groups and what a user may see: `get groups`, `read user`, the support user
(`Benutzer`) of an address and the visibility a marketplace claim carries.

A marketplace call runs with the rights of the user whose `apiClaim` it sends (onOffice limits
the provider's API user to what that user may see). Each user has a visibility: `all` (every
address), `group` (addresses whose support user shares a group with them) or `own` (addresses
whose support user they are). The customer's main claim (`Customer.claim`) sees everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulators.onoffice.envelope import ActionError, result

if TYPE_CHECKING:
    from emulators.onoffice.state import Customer, OnOfficeState
    from emulators.onoffice_data import EmuAddress

VISIBILITIES = ("all", "group", "own")
USER_FIELDS = ("Name", "Vorname", "Nachname", "Kuerzel", "email")


@dataclass
class EmuUser:
    id: int
    name: str  # the login name: what an address's `Benutzer` holds
    first: str = ""
    last: str = ""
    visibility: str = "group"

    def elements(self, data: list[str]) -> dict[str, Any]:
        values = {
            "Name": self.name,
            "Vorname": self.first,
            "Nachname": self.last,
            "Kuerzel": self.name[:3].upper(),
            "email": f"{self.name}@example.org",
        }
        return {"id": self.id} | {name: values[name] for name in data}


@dataclass
class EmuGroup:
    id: int
    name: str
    abr: str = ""
    user_ids: list[int] = field(default_factory=list)

    def elements(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "abr": self.abr or self.name[:3].upper(),
            "userIds": list(self.user_ids),
            "groupType": "office",
            "leaders": self.user_ids[:1],
        }


def user_from(payload: dict[str, Any]) -> EmuUser:
    visibility = str(payload.get("visibility", "group"))
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {VISIBILITIES}")
    return EmuUser(
        id=int(payload["id"]),
        name=str(payload["name"]),
        first=str(payload.get("first", "")),
        last=str(payload.get("last", "")),
        visibility=visibility,
    )


def group_from(payload: dict[str, Any]) -> EmuGroup:
    return EmuGroup(
        id=int(payload["id"]),
        name=str(payload["name"]),
        abr=str(payload.get("abr", "")),
        user_ids=[int(u) for u in payload.get("user_ids", [])],
    )


def visible_support_users(state: OnOfficeState, user: EmuUser) -> set[str] | None:
    """The support-user names whose addresses `user` sees; None = every address."""
    if user.visibility == "all":
        return None
    if user.visibility == "own":
        return {user.name}
    colleagues = {user.id}
    for group in state.groups.values():
        if user.id in group.user_ids:
            colleagues.update(group.user_ids)
    return {state.users[u].name for u in colleagues if u in state.users}


def can_see(state: OnOfficeState, address: EmuAddress) -> bool:
    """Whether the acting user (the claim of the action being run) may see `address`."""
    user = state.acting_user
    if user is None:
        return True
    names = visible_support_users(state, user)
    return names is None or address.benutzer in names


def support_user_output(state: OnOfficeState, name: str) -> str:
    """`Benutzer` as onOffice answers it: the user name (documented), or the user id where the
    emulator is set to the other reading."""
    if state.settings.support_user_output != "id" or not name:
        return name
    for user in state.users.values():
        if user.name == name:
            return str(user.id)
    return name


def get_groups(state: OnOfficeState, customer: Customer, action: dict[str, Any]) -> dict[str, Any]:
    records = [
        {"id": g.id, "type": "group", "elements": g.elements()} for g in state.groups.values()
    ]
    return result(action, records, len(records))


def read_users(state: OnOfficeState, customer: Customer, action: dict[str, Any]) -> dict[str, Any]:
    params = action["parameters"]
    data = params.get("data") or ["Name"]
    if not isinstance(data, list) or any(name not in USER_FIELDS for name in data):
        raise ActionError(75, f"Unknown field in {data!r}")
    wanted = params.get("recordids")
    users = [u for u in state.users.values() if wanted is None or u.id in {int(i) for i in wanted}]
    records = [{"id": u.id, "type": "user", "elements": u.elements(data)} for u in users]
    return result(action, records, len(records))
