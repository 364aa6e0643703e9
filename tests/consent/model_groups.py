"""The consent model with a second group (issue 19, action family `groups`): the customer has
two onOffice groups, each with its own connection and Mailchimp list and no customer-wide
connection. Every address has a support user (`Benutzer`): anna (group 7), ben (group 8) or
sam (a member of both, so both scopes hold his addresses). The users may see every address
(onOffice's visibility does not help): the connector's scope alone keeps the lists apart.

Each step acts on one connection (`switch_lane` changes which); agent edits reach both through
onOffice. I1-I5 are checked per connection, on its scope's addresses and its list's provider
actions (`Truth.view`), and a value one connection writes to onOffice is, for the connections
that share the address, an onOffice change like an agent's (`Address.written`: one Newsletter
field per address). The scope invariant: no connection writes an address outside its scope
(the onOffice emulator logs the claim of every address it touches), no connection keeps an
address outside its scope in its ledger or its problems, and a list never gets a contact
that was never in its scope (nor signed up on it).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from emulators.mailchimp import DEFAULT_API_KEY
from emulators.onoffice.users import EmuGroup, EmuUser
from tests.consent.model_families import on
from tests.consent.model_truth import Address, Truth
from tests.e2e.harness import Tenant, activate_tenant, auth, open_session

SUPPORT_USERS = ("anna", "ben", "sam")
# group -> (the user whose claim its jobs run with, the support users of its scope)
GROUPS = {"7": (1, frozenset({"anna", "sam"})), "8": (2, frozenset({"ben", "sam"}))}
_signups = itertools.count(1)


class Groups:
    """The customer's groups as the onOffice emulator and the product see them."""

    @staticmethod
    def lanes() -> list[str]:
        return list(GROUPS)

    @staticmethod
    def users() -> dict[int, EmuUser]:
        names = {1: "anna", 2: "ben", 3: "sam"}
        return {i: EmuUser(i, n, visibility="all") for i, n in names.items()}

    @staticmethod
    def groups() -> dict[int, EmuGroup]:
        return {7: EmuGroup(7, "Nord", user_ids=[1, 3]), 8: EmuGroup(8, "Süd", user_ids=[2, 3])}

    @staticmethod
    async def connect(product: Any) -> None:
        """An activated customer whose groups each connect a list of their own (a user of
        each group opens the connector: that group's claim)."""
        from tests.consent.model_product import Lane, _tenants

        web_id = f"M{next(_tenants)}"
        tenant = Tenant(web_id, f"{web_id.lower():a<32}", "z" * 64, f"claim-{web_id}")
        product.tenant = tenant
        await activate_tenant(product.http, product.connector, product.world.onoffice_url, tenant)
        claims = {f"claim-{web_id}-{g}": (g, user) for g, (user, _) in GROUPS.items()}
        customer = product.world.onoffice.customers[tenant.token]
        customer.user_claims = {claim: user for claim, (_, user) in claims.items()}
        for claim, (group, user) in claims.items():
            member = Tenant(web_id, tenant.token, tenant.secret, claim, group_id=group)
            token = await open_session(product.http, product.connector, member, userId=str(user))
            product.lanes[group] = Lane(token=token, claim=claim)
            product.lane = group
            name_lists(product)
            response = await product.http.put(
                f"{product.connector.url}/api/v1/connection",
                headers=auth(token),
                json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY},
            )
            assert response.status_code == 200, response.text
            assert response.json()["scope"]["kind"] == "group_users", response.text
            product.lanes[group].list_id = response.json()["list_id"]
            product._read_hook()
        product.lane = next(iter(GROUPS))


def name_lists(product: Any) -> None:
    """One Mailchimp account serves every connection: the list named "onoffice" (the one a
    connection finds when it is saved) is the current connection's; the others' are named
    apart."""
    theirs = {lane.list_id: g for g, lane in product.lanes.items() if g != product.lane}
    for lst in product.world.mailchimp.lists.values():
        if lst.id == product.list_id:
            lst.name = "onoffice"
        elif lst.id in theirs or lst.name == "onoffice":
            lst.name = f"lane-{theirs.get(lst.id, '')}-{lst.id}"


def scope_of(lane: str) -> frozenset[str] | None:
    return GROUPS[lane][1] if lane in GROUPS else None


def lane_views(truth: Truth, product: Any) -> list[tuple[str, Truth]]:
    return [(lane, truth.view(lane, scope_of(lane))) for lane in product.lanes]


class GroupRules(RuleBasedStateMachine):
    """The `groups` family's rules and the record they keep (a base of `ConsentModel`)."""

    product: Any
    truth: Truth
    connected: bool

    def groups_init(self) -> None:
        self.grouped = on("groups")
        self.book_seen: dict[int, str] = {}
        self.agent_ids: set[int] = set()
        self.written_now: set[str] = set()  # emails a connection wrote to in this step
        self.found: dict[int, float] = {}  # address -> when its pending written value was seen
        self.mark = time.time()  # when the current step began
        self.accesses_seen = 0
        self.ever: dict[str, set[str]] = {}  # lane -> emails ever in its scope or signed up

    def support_users(self, data: st.DataObject, count: int) -> list[str]:
        if not self.grouped:
            return [""] * count
        return data.draw(st.lists(st.sampled_from(SUPPORT_USERS), min_size=count, max_size=count))

    def scope_truth(self) -> Truth:
        """The current connection's part of the record."""
        return self.truth.view(self.product.lane, scope_of(self.product.lane))

    @precondition(lambda self: on("groups") and self.grouped)
    @rule(lane=st.sampled_from(sorted(GROUPS)))
    def switch_lane(self, lane: str) -> None:
        """The next steps are about this group's connection and list."""
        self.product.lane = lane

    @precondition(lambda self: on("groups") and self.grouped and self.connected)
    @rule(delivery=st.sampled_from(["once", "twice", "late", "never"]))
    def provider_signup(self, delivery: str) -> None:
        """Someone new signs up on the current group's list: the address is created in that
        group's scope (and never reaches the other group's list)."""
        email = f"s{next(_signups)}@example.de"
        self.ever.setdefault(self.product.lane, set()).add(email)
        self._provider(email, "subscribe", delivery)  # type: ignore[attr-defined]

    # -- before the checks of a step ----------------------------------------------------------

    def observe(self) -> None:
        """Take in what the step did to onOffice beyond the agent's edits: addresses the
        product created (a sign-up) and values a connection wrote."""
        book = self.product.world.onoffice.addresses
        self.written_now = set()
        for address_id, emu in book.items():
            if address_id not in self.truth.addresses:
                self.truth.addresses[address_id] = Address(
                    address_id, emu.email.strip().lower(), value=str(emu.newsletter),
                    benutzer=emu.benutzer,
                )  # fmt: skip
            value = str(emu.newsletter)
            address = self.truth.addresses[address_id]
            seen = self.book_seen.get(address_id, value)
            if value != seen and address_id not in self.agent_ids:
                address.written = (value, self.mark, None)
                self.written_now.add(address.email)
                self.found[address_id] = time.time()
            self.book_seen[address_id] = value
        # Every connection knows a written value once all of them polled after the step that
        # wrote it (a poll in that same step may have come before the write).
        start, end = self.product.polled
        for address_id, found in list(self.found.items()):
            address = self.truth.addresses[address_id]
            if address.written is None or address.written[2] is not None:
                del self.found[address_id]
            elif found < start:
                address.written = (address.written[0], address.written[1], end)
                del self.found[address_id]
        for lane in self.product.lanes:
            scope = scope_of(lane)
            ever = self.ever.setdefault(lane, set())
            ever.update(a.email for a in self.truth.addresses.values() if a.benutzer in scope)
        self.agent_ids = set()

    def check_scopes(self) -> None:
        """No connection writes outside its scope, keeps outside addresses, or fills its
        list with another scope's contacts."""
        product = self.product
        book = product.world.onoffice.addresses
        lanes = {lane.claim: g for g, lane in product.lanes.items()}
        log = product.world.onoffice.access_log or []
        for claim, op, address_id in log[self.accesses_seen :]:
            if op == "read" and claim in lanes:
                continue  # the client reads by id and checks the scope itself (below)
            group = lanes.get(claim or "")
            owner = book[address_id].benutzer if address_id in book else "?"
            assert group is not None and owner in GROUPS[group][1], (
                f"scope: a {op} of address {address_id} (support user {owner!r}) with the claim "
                f"{claim!r} ({'group ' + group if group else 'no group of the customer'})"
            )
        self.accesses_seen = len(log)
        for group, lane in product.lanes.items():
            with product.using(group):
                connection = product.connection_id()
            rows = product.sql(
                "SELECT address_id FROM contact WHERE connection_id = :c AND address_id > 0"
                " UNION SELECT p.address_id FROM problem p JOIN sync_run r ON r.id = p.run_id"
                " WHERE r.connection_id = :c AND p.address_id > 0",
                c=connection,
            )
            outside = sorted(
                r[0] for r in rows if r[0] in book and book[r[0]].benutzer not in GROUPS[group][1]
            )
            assert not outside, f"scope: group {group}'s connection keeps addresses {outside}"
            members = product.world.mailchimp.lists[lane.list_id].members.values()
            strangers = sorted({m.email for m in members} - self.ever[group])
            assert not strangers, f"scope: group {group}'s list got {strangers}"
