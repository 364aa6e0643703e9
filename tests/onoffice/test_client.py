from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emulators.onoffice import OnOfficeState
from emulators.onoffice_data import generate_address_book
from onoffice_client.activities import same_time
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import (
    ActivityCreate,
    AddressCreate,
    AddressUpdate,
    NewsletterStatus,
    OnOfficeError,
    OnOfficeNotFoundError,
)
from tests.onoffice.conftest import ClientFactory


def _people(n: int, **fields: object) -> list[dict[str, object]]:
    return [
        {"Vorname": f"Vor{i}", "Name": f"Name{i}", "Email": f"p{i}@example.de"} | fields
        for i in range(n)
    ]


class TestIterNewsletterAddresses:
    async def test_pages_1200_exactly_once(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        subscribed = state.seed(_people(1200, newsletter_aktiv="1"))
        state.seed(_people(30, newsletter_aktiv="0"), replace=False)
        state.seed(_people(20, newsletter_aktiv="1", Status=0), replace=False)

        pages = [page async for page in client.iter_newsletter_addresses()]

        assert [len(p) for p in pages] == [500, 500, 200]
        ids = [a.id for page in pages for a in page]
        assert sorted(ids) == sorted(subscribed)
        assert all(a.newsletter is NewsletterStatus.yes and a.active for p in pages for a in p)
        assert state.request_counts["read:address"] == 3

    async def test_generated_book_matches_filter(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        book = generate_address_book(700, seed=3)
        state.seed(book)
        expected = sum(1 for r in book if r["newsletter_aktiv"] == "1" and r["Status"] == 1)

        addresses = [a async for page in client.iter_newsletter_addresses() for a in page]

        assert len(addresses) == expected == len({a.id for a in addresses})

    async def test_normalises_fields(self, state: OnOfficeState, client: OnOfficeClient) -> None:
        (address_id,) = state.seed(
            [
                {
                    "Anrede": "Frau",
                    "Titel": "Dr.",
                    "Vorname": "Käthe",
                    "Name": "Weiß",
                    "Email": " Kaethe@Example.de ",
                    "newsletter_aktiv": "1",
                    "NewsletterTag": ["Kaeufer", "Investor"],
                    "SpracheKontakt": "DEU",
                    "Aenderung": "2026-03-01 10:00:00",
                }
            ]
        )

        (page,) = [p async for p in client.iter_newsletter_addresses()]

        (address,) = page
        assert address.id == address_id
        assert (address.salutation, address.title, address.first_name, address.last_name) == (
            "Frau",
            "Dr.",
            "Käthe",
            "Weiß",
        )
        assert address.email == " Kaethe@Example.de "
        assert address.tags == ["Kaeufer", "Investor"]
        assert address.language == "DEU"
        assert address.modified_at is not None
        assert address.modified_at.replace(tzinfo=None) == datetime(2026, 3, 1, 10, 0, 0)

    async def test_without_sort_field_support(
        self, state: OnOfficeState, make_client: ClientFactory
    ) -> None:
        state.seed(_people(600, newsletter_aktiv="1"))
        state.settings.unsortable_fields = {"KdNr"}
        client = make_client()

        ids = [a.id async for page in client.iter_newsletter_addresses() for a in page]

        assert len(ids) == len(set(ids)) == 600
        # Learned once: the second page no longer asks for the rejected sort field.
        assert state.request_counts["read:address"] == 3

    async def test_unreadable_modified_field(
        self, state: OnOfficeState, make_client: ClientFactory
    ) -> None:
        state.seed(_people(3, newsletter_aktiv="1"))
        state.settings.modified_readable = False

        addresses = [a async for p in make_client().iter_newsletter_addresses() for a in p]

        assert len(addresses) == 3
        assert all(a.modified_at is None for a in addresses)


class TestIterChangedAddresses:
    async def test_since_with_overlap_and_any_newsletter_value(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        old, recent, edge, unsubscribed = state.seed(
            [
                {"Name": "old", "Aenderung": "2026-01-01 08:00:00", "newsletter_aktiv": "1"},
                {"Name": "recent", "Aenderung": "2026-01-02 09:00:00", "newsletter_aktiv": "1"},
                {"Name": "edge", "Aenderung": "2026-01-02 07:55:00", "newsletter_aktiv": "1"},
                {"Name": "unsub", "Aenderung": "2026-01-02 08:30:00", "newsletter_aktiv": "2"},
            ]
        )
        since = datetime(2026, 1, 2, 8, 5, 0)

        changed = [a async for p in client.iter_changed_addresses(since) for a in p]

        assert {a.id for a in changed} == {recent, edge, unsubscribed}
        assert old not in {a.id for a in changed}

    async def test_aware_since_is_converted_to_server_time(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        (berlin_noon,) = state.seed([{"Name": "x", "Aenderung": "2026-07-01 12:00:00"}])
        # 10:00 UTC is 12:00 in Berlin (summer time).
        at_utc = datetime(2026, 7, 1, 10, 0, 0, tzinfo=UTC)

        hit = [a async for p in client.iter_changed_addresses(at_utc, timedelta(0)) for a in p]
        miss = [
            a
            async for p in client.iter_changed_addresses(
                at_utc + timedelta(seconds=1), timedelta(0)
            )
            for a in p
        ]

        assert [a.id for a in hit] == [berlin_noon]
        assert miss == []

    async def test_modification_through_client_is_seen(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        ids = state.seed(_people(3, Aenderung="2020-01-01 00:00:00"))
        await client.modify_address(ids[1], AddressUpdate(newsletter=NewsletterStatus.cancellation))

        changed = [a async for p in client.iter_changed_addresses(datetime.now(UTC)) for a in p]

        assert [(a.id, a.newsletter) for a in changed] == [(ids[1], NewsletterStatus.cancellation)]


class TestGetAndFind:
    async def test_get_addresses_in_chunks_of_500(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        ids = state.seed(_people(1100, Status=0))

        wanted = [*ids[:5], *ids[-600:], 999_999]
        addresses = await client.get_addresses(wanted)

        assert sorted(a.id for a in addresses) == sorted(wanted[:-1])
        assert not any(a.active for a in addresses)
        # Two chunks, one HTTP request.
        assert state.request_counts["read:address"] == 2
        assert state.http_requests == 1

    async def test_find_by_email_ignores_case_and_spaces(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        a, b, _, _ = state.seed(
            [
                {"Email": "Anna.Mueller@Example.de"},
                {"Email": " anna.mueller@example.de  "},
                {"Email": "anna.muellerX@example.de"},
                {"Email": "annaXmueller@example.de"},
            ]
        )

        found = await client.find_addresses_by_email("ANNA.MUELLER@example.de ")

        assert sorted(x.id for x in found) == [a, b]
        assert await client.find_addresses_by_email("  ") == []

    async def test_find_by_emails_pages_an_in_read_with_more_matches_than_a_page(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        # 700 addresses share two emails (duplicates): more than one page of the `in` read.
        records = [{"Email": "dup@example.de"} for _ in range(400)]
        records += [{"Email": "twin@example.de"} for _ in range(300)]
        records += [{"Email": "solo@example.de"}] + [
            {"Email": f"x{i}@example.de"} for i in range(50)
        ]
        state.seed(records)
        before = state.http_requests

        found = await client.find_addresses_by_emails(
            ["dup@example.de", "twin@example.de", "solo@example.de"]
        )

        assert [len(found[e]) for e in ("dup@example.de", "twin@example.de")] == [400, 300]
        assert len(found["solo@example.de"]) == 1
        # The first read, then the same `in` read page by page (500 a page): not one
        # `like` scan of the whole address book per email.
        assert state.http_requests - before <= 3

    async def test_find_by_emails_finds_a_value_stored_with_a_leading_space(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        # A pasted value with a stray leading space is the same person's email (a No on it
        # opts the person out): the `in` read asks for it too, still in one request.
        ids = state.seed(
            [{"Email": "anna@example.de"}, {"Email": " Anna@Example.de  "}, {"Email": "b@x.de"}]
        )
        before = state.http_requests

        found = await client.find_addresses_by_emails(["anna@example.de", "b@x.de"])

        assert [a.id for a in found["anna@example.de"]] == ids[:2]
        assert [a.id for a in found["b@x.de"]] == ids[2:]
        assert state.http_requests - before == 1

    async def test_find_by_emails_sees_an_email_changed_after_an_earlier_read(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        # The emulator looks `Email in` reads up in an index; a write must not leave it stale.
        (first,) = state.seed([{"id": 1, "Email": "old@example.de"}])
        earlier = await client.find_addresses_by_emails(["old@example.de"])
        assert [a.id for a in earlier["old@example.de"]] == [first]
        state.seed([{"id": first, "Email": "new@example.de"}], replace=False)

        found = await client.find_addresses_by_emails(["old@example.de", "new@example.de"])

        assert found == {"old@example.de": [], "new@example.de": found["new@example.de"]}
        assert [a.id for a in found["new@example.de"]] == [first]


class TestModify:
    async def test_modify_replaces_tags_and_sets_fields(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        (address_id,) = state.seed([{"Name": "Alt", "NewsletterTag": ["Mieter", "Investor"]}])

        await client.modify_address(
            address_id,
            AddressUpdate(
                first_name="Jörg",
                last_name="Groß",
                salutation="Herr",
                newsletter=NewsletterStatus.yes,
                tags=["Kaeufer"],
            ),
        )

        stored = state.addresses[address_id]
        assert (stored.vorname, stored.name, stored.anrede) == ("Jörg", "Groß", "Herr")
        assert stored.newsletter == "1"
        assert stored.tags == ["Kaeufer"]

    async def test_empty_tags_clear_and_none_leaves(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        first, second = state.seed(
            [{"NewsletterTag": ["Mieter"], "Name": "A"}, {"NewsletterTag": ["Mieter"]}]
        )

        await client.modify_addresses(
            [(first, AddressUpdate(tags=[])), (second, AddressUpdate(first_name="B"))]
        )

        assert state.addresses[first].tags == []
        assert state.addresses[first].name == "A"
        assert state.addresses[second].tags == ["Mieter"]

    async def test_many_modifies_share_requests(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        ids = state.seed(_people(120))

        await client.modify_addresses(
            [(i, AddressUpdate(newsletter=NewsletterStatus.no)) for i in ids]
        )

        assert state.http_requests == 3  # 50 actions per request
        assert {state.addresses[i].newsletter for i in ids} == {"0"}

    async def test_no_op_update_sends_nothing(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        (address_id,) = state.seed(_people(1))
        await client.modify_address(address_id, AddressUpdate())
        assert state.http_requests == 0

    async def test_unknown_id_is_not_found(self, client: OnOfficeClient) -> None:
        with pytest.raises(OnOfficeNotFoundError) as info:
            await client.modify_address(4711, AddressUpdate(first_name="x"))
        assert info.value.errorcode == 80
        assert "4711" in str(info.value)

    async def test_invalid_tag_key_keeps_onoffice_message(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        (address_id,) = state.seed([{"NewsletterTag": ["Mieter"]}])
        with pytest.raises(OnOfficeError) as info:
            await client.modify_address(address_id, AddressUpdate(tags=["Nope"]))
        assert info.value.errorcode == 76
        assert "Nope" in info.value.message
        assert state.addresses[address_id].tags == ["Mieter"]


class TestChangeEmail:
    async def test_replaces_main_email(self, state: OnOfficeState, client: OnOfficeClient) -> None:
        (address_id,) = state.seed([{"emails": ["second@example.de", "old@example.de"]}])

        await client.change_email(address_id, "old@example.de", "new@example.de")

        assert state.addresses[address_id].emails == ["new@example.de", "second@example.de"]
        (address,) = await client.get_addresses([address_id])
        assert address.email == "new@example.de"

    async def test_adds_when_no_old_email(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        (address_id,) = state.seed([{"Email": ""}])
        await client.change_email(address_id, "", "first@example.de")
        assert state.addresses[address_id].email == "first@example.de"

    async def test_unknown_old_email_fails(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        (address_id,) = state.seed([{"Email": "a@example.de"}])
        with pytest.raises(OnOfficeError) as info:
            await client.change_email(address_id, "b@example.de", "c@example.de")
        assert info.value.errorcode == 88
        assert state.addresses[address_id].emails == ["a@example.de"]


class TestCreateAddress:
    async def test_creates_with_fields(self, state: OnOfficeState, client: OnOfficeClient) -> None:
        new_id = await client.create_address(
            AddressCreate(
                email=" neu@example.de ",
                salutation="Frau",
                first_name="Zoë",
                last_name="Öztürk",
                tags=["Mieter"],
                origin="Newsletter",
            )
        )

        stored = state.addresses[new_id]
        assert stored.emails == ["neu@example.de"]
        assert (stored.anrede, stored.vorname, stored.name) == ("Frau", "Zoë", "Öztürk")
        assert stored.newsletter == "1"
        assert stored.tags == ["Mieter"] and stored.origin == ["Newsletter"]

    @pytest.mark.parametrize("duplicate_id", ["existing", "zero"])
    async def test_duplicate_returns_lowest_existing_untouched(
        self, state: OnOfficeState, client: OnOfficeClient, duplicate_id: str
    ) -> None:
        state.settings.duplicate_id = duplicate_id
        first, _second = state.seed(
            [
                {"Email": "Dup@Example.de", "Name": "Erster"},
                {"Email": " dup@example.de", "Name": "Zweiter"},
            ]
        )

        got = await client.create_address(AddressCreate(email="dup@example.de", last_name="Neu"))

        assert got == first
        assert len(state.addresses) == 2
        assert state.addresses[first].name == "Erster"


class TestActivities:
    async def test_creates_one_per_address_in_one_request(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        a, b, c = state.seed(_people(3))
        at = datetime(2026, 1, 8, 10, 13, 30, tzinfo=UTC)

        await client.create_activities(
            [
                ActivityCreate(address_ids=[a, b], kind="Newsletter", type="bestellt", note="MC"),
                ActivityCreate(address_ids=[c], kind="Email", at=at),
                ActivityCreate(address_ids=[], kind="Newsletter"),
            ]
        )

        assert state.http_requests == 1
        got = [(x["address_id"], x["actionkind"], x["actiontype"]) for x in state.activities]
        assert got == [
            (a, "Newsletter", "bestellt"),
            (b, "Newsletter", "bestellt"),
            (c, "Email", None),
        ]
        assert state.activities[2]["datetime"] == "2026-01-08 11:13:30"

    @pytest.mark.parametrize(
        ("kind", "type_", "code"), [("Nope", None, 100), ("Newsletter", "x", 101)]
    )
    async def test_unknown_kind_or_type(
        self, state: OnOfficeState, client: OnOfficeClient, kind: str, type_: str | None, code: int
    ) -> None:
        (a,) = state.seed(_people(1))
        with pytest.raises(OnOfficeError) as info:
            await client.create_activities([ActivityCreate(address_ids=[a], kind=kind, type=type_)])
        assert info.value.errorcode == code
        assert state.activities == []

    async def test_unknown_address(self, client: OnOfficeClient) -> None:
        with pytest.raises(OnOfficeNotFoundError):
            await client.create_activities([ActivityCreate(address_ids=[42], kind="Newsletter")])

    async def test_missing_activities_are_those_not_written_yet(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        a, b, c = state.seed(_people(3))
        at = datetime(2026, 1, 8, 10, 13, 30, tzinfo=UTC)
        item = ActivityCreate(
            address_ids=[a, b, c], kind="Newsletter", type="bestellt", note="MC: sub", at=at
        )
        await client.create_activities([item.model_copy(update={"address_ids": [a, b]})])
        # Other activities of c: another note, another time, another type.
        await client.create_activities(
            [
                item.model_copy(update={"address_ids": [c], "note": "MC: unsub"}),
                item.model_copy(update={"address_ids": [c], "at": at + timedelta(hours=1)}),
                item.model_copy(update={"address_ids": [c], "type": "nicht bestellt"}),
            ]
        )
        state.http_requests = 0

        missing, none = await client.missing_activities(
            [item, item.model_copy(update={"address_ids": [b, a]})]
        )

        assert missing is not None and missing.address_ids == [c]
        assert none is None
        assert missing.model_copy(update={"address_ids": item.address_ids}) == item
        assert state.http_requests == 1  # one read per address, in one request
        await client.create_activities([missing])
        assert await client.missing_activities([item]) == [None]
        assert await client.missing_activities([]) == []

    async def test_without_a_time_kind_type_and_note_decide(
        self, state: OnOfficeState, client: OnOfficeClient
    ) -> None:
        (a,) = state.seed(_people(1))
        item = ActivityCreate(address_ids=[a], kind="Newsletter", note="MC: sub")
        assert await client.missing_activities([item]) == [item]
        await client.create_activities([item])
        assert await client.missing_activities([item]) == [None]

    @pytest.mark.parametrize(
        ("shown", "same"),
        [
            ("2026-01-08 11:13:30", True),  # the documented form
            ("2026-01-08T11:13:30", True),
            ("08.01.2026 11:13:30", True),
            ("2026-01-08 11:13", True),  # shown to the minute
            ("08.01.2026", True),  # shown as a day
            ("2026-01-08 11:13:31", False),
            ("2026-01-08 11:14", False),
            ("07.01.2026", False),
            ("", False),  # unreadable: written again rather than lost
            ("0000-00-00 00:00:00", False),
        ],
    )
    def test_the_time_is_compared_in_the_form_onoffice_shows(self, shown: str, same: bool) -> None:
        assert same_time(shown, datetime(2026, 1, 8, 11, 13, 30)) is same


class TestConfiguration:
    async def test_fields_with_permitted_values(self, client: OnOfficeClient) -> None:
        fields = await client.get_fields(["newsletter_aktiv", "NewsletterTag", "Anrede"])

        assert set(fields) == {"newsletter_aktiv", "NewsletterTag", "Anrede"}
        assert set(fields["newsletter_aktiv"]["permittedvalues"]) == {"0", "1", "2", "3", "4", "5"}
        assert fields["NewsletterTag"]["type"] == "multiselect"
        assert fields["NewsletterTag"]["permittedvalues"]["Kaeufer"] == "Käufer"

    async def test_action_kinds(self, state: OnOfficeState, client: OnOfficeClient) -> None:
        kinds = {k.key: k for k in await client.get_action_kinds()}

        assert kinds["Newsletter"].types["bestellt"] == "ordered"
        assert kinds["Sonstiges"].types == {}  # PHP's empty map arrives as []
        assert set(kinds) == {k["key"] for k in state.action_kinds}
