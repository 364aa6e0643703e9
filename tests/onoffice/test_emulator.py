"""The emulator rejects and answers what the real API would (raw requests, no client)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from emulators.onoffice import DEFAULT_SECRET, DEFAULT_TOKEN, OnOfficeState
from emulators.onoffice_data import EmuAddress, generate_address_book
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import (
    ActivityCreate,
    AddressUpdate,
    NewsletterStatus,
    OnOfficeClaimError,
    OnOfficeError,
)
from onoffice_client.signature import hmac_v2
from tests.onoffice.conftest import ClientFactory

URL = "/api/stable/api.php"
READ = "urn:onoffice-de-ns:smart:2.5:smartml:action:read"


def _action(
    parameters: dict[str, Any],
    *,
    resourcetype: str = "address",
    actionid: str = READ,
    timestamp: int | None = None,
    secret: str = DEFAULT_SECRET,
) -> dict[str, Any]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "actionid": actionid,
        "resourceid": "",
        "resourcetype": resourcetype,
        "identifier": "",
        "timestamp": ts,
        "hmac": hmac_v2(DEFAULT_TOKEN, secret, ts, resourcetype, actionid),
        "hmac_version": "2",
        "parameters": parameters,
    }


async def _call(http: httpx.AsyncClient, *actions: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(
        URL, json={"token": DEFAULT_TOKEN, "request": {"actions": list(actions)}}
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def _records(http: httpx.AsyncClient, **parameters: Any) -> list[dict[str, Any]]:
    body = await _call(http, _action(parameters))
    (result,) = body["response"]["results"]
    assert result["status"]["errorcode"] == 0, result["status"]
    records: list[dict[str, Any]] = result["data"]["records"]
    return records


async def _error(http: httpx.AsyncClient, action: dict[str, Any]) -> int:
    body = await _call(http, action)
    assert body["status"]["errorcode"] == 97
    code: int = body["response"]["results"][0]["status"]["errorcode"]
    return code


class TestEnvelope:
    async def test_malformed_json(self, http: httpx.AsyncClient) -> None:
        body = (await http.post(URL, content=b"{nope")).json()
        assert body["status"]["code"] == 400 and body["status"]["errorcode"] == 4

    async def test_missing_token(self, http: httpx.AsyncClient) -> None:
        body = (await http.post(URL, json={"request": {"actions": []}})).json()
        assert body["status"]["errorcode"] == 13

    async def test_latest_path_served(self, http: httpx.AsyncClient) -> None:
        body = {"token": DEFAULT_TOKEN, "request": {"actions": [_action({})]}}
        assert (await http.post("/api/latest/api.php", json=body)).json()["status"][
            "errorcode"
        ] == 0

    async def test_bad_hmac_in_one_action_only(self, http: httpx.AsyncClient) -> None:
        body = await _call(http, _action({}), _action({}, secret="wrong"))
        codes = [r["status"]["errorcode"] for r in body["response"]["results"]]
        assert codes == [0, 137]
        assert body["status"]["errorcode"] == 97

    async def test_legacy_hmac_rejected(self, http: httpx.AsyncClient) -> None:
        action = _action({})
        del action["hmac_version"]
        assert await _error(http, action) == 137

    @pytest.mark.parametrize(("age", "code"), [(119, 0), (-119, 0), (125, 136), (-125, 136)])
    async def test_timestamp_window(self, http: httpx.AsyncClient, age: int, code: int) -> None:
        body = await _call(http, _action({}, timestamp=int(time.time()) - age))
        assert body["response"]["results"][0]["status"]["errorcode"] == code

    async def test_top_level_zero_variant(
        self, state: OnOfficeState, http: httpx.AsyncClient
    ) -> None:
        state.settings.action_error_code = 0
        body = await _call(http, _action({}, secret="wrong"))
        assert body["status"]["errorcode"] == 0
        assert body["response"]["results"][0]["status"]["errorcode"] == 137


class TestRead:
    @pytest.fixture(autouse=True)
    def book(self, state: OnOfficeState) -> None:
        state.seed(
            [
                {
                    "Name": "Adler",
                    "Email": "a@example.de",
                    "newsletter_aktiv": "1",
                    "NewsletterTag": ["Mieter", "Investor"],
                    "Aenderung": "2026-01-01 10:00:00",
                },
                {
                    "Name": "Bär",
                    "Email": " B@Example.de",
                    "newsletter_aktiv": "0",
                    "NewsletterTag": ["Mieter"],
                    "Aenderung": "2026-01-02 10:00:00",
                },
                {
                    "Name": "Cäsar",
                    "Email": "",
                    "newsletter_aktiv": "2",
                    "Status": 0,
                    "Aenderung": "2026-01-03 10:00:00",
                },
                {
                    "Name": "Dora",
                    "emails": ["d@example.de", "d2@example.de"],
                    "newsletter_aktiv": "5",
                    "Aenderung": "2026-01-04 10:00:00",
                },
            ]
        )

    async def test_output_without_formatting(self, http: httpx.AsyncClient) -> None:
        records = await _records(
            http,
            data=["Name", "newsletter_aktiv", "NewsletterTag", "Status", "Email"],
            listlimit=10,
        )
        first = records[0]["elements"]
        assert first == {
            "id": 1,
            "Name": "Adler",
            "newsletter_aktiv": "1",
            "NewsletterTag": "|Mieter||Investor|",
            "Status": "1",
            "Email": "a@example.de",
        }
        assert records[2]["elements"]["NewsletterTag"] == ""
        assert records[2]["elements"]["Status"] == "0"  # archived records are returned

    async def test_formatted_output_uses_labels(self, http: httpx.AsyncClient) -> None:
        (record, *_) = await _records(
            http, data=["newsletter_aktiv", "NewsletterTag"], formatoutput=True
        )
        assert record["elements"]["newsletter_aktiv"] == "Ja"
        assert record["elements"]["NewsletterTag"] == ["Mieter", "Investor"]

    async def test_contact_pseudo_field(self, http: httpx.AsyncClient) -> None:
        records = await _records(http, data=["email"], recordids=[4])
        assert sorted(v for k, v in records[0]["elements"].items() if k.startswith("email__")) == [
            "d2@example.de",
            "d@example.de",
        ]

    @pytest.mark.parametrize(
        ("field_filter", "ids"),
        [
            ({"newsletter_aktiv": [{"op": "=", "val": 1}]}, [1]),
            ({"newsletter_aktiv": [{"op": "is", "val": "1"}]}, [1]),
            ({"newsletter_aktiv": [{"op": "!=", "val": 1}]}, [2, 3, 4]),
            ({"newsletter_aktiv": [{"op": "<>", "val": 1}]}, [2, 3, 4]),
            ({"newsletter_aktiv": [{"op": "<", "val": 2}]}, [1, 2]),
            ({"newsletter_aktiv": [{"op": "<=", "val": 2}]}, [1, 2, 3]),
            ({"newsletter_aktiv": [{"op": ">", "val": 2}]}, [4]),
            ({"newsletter_aktiv": [{"op": ">=", "val": 2}]}, [3, 4]),
            ({"newsletter_aktiv": [{"op": "IN", "val": [0, 5]}]}, [2, 4]),
            ({"newsletter_aktiv": [{"op": "not in", "val": [0, 5]}]}, [1, 3]),
            ({"Name": [{"op": "like", "val": "c%"}]}, [3]),
            ({"Name": [{"op": "not like", "val": "%a%"}]}, [2]),
            (
                {
                    "Aenderung": [
                        {"op": "between", "val": ["2026-01-02 00:00:00", "2026-01-03 10:00:00"]}
                    ]
                },
                [2, 3],
            ),
            (
                {"Email": [{"op": "=", "val": "b@example.de"}]},
                [],
            ),  # leading space stays significant
            ({"Email": [{"op": "like", "val": "%b@example.de"}]}, [2]),
            ({"email": [{"op": "=", "val": "d2@example.de"}]}, [4]),
            ({"NewsletterTag": [{"op": "=", "val": "Investor"}]}, [1]),
            ({"NewsletterTag": [{"op": "in", "val": ["Investor", "Mieter"]}]}, [1, 2]),
            ({"NewsletterTag": [{"op": "not in", "val": ["Investor"]}]}, [2, 3, 4]),
            ({"NewsletterTag": [{"op": "like", "val": "Miet%"}]}, [1, 2]),
            (
                {"Status": [{"op": "=", "val": 1}], "newsletter_aktiv": [{"op": ">", "val": 0}]},
                [1, 4],
            ),
        ],
    )
    async def test_filter(
        self, http: httpx.AsyncClient, field_filter: dict[str, Any], ids: list[int]
    ) -> None:
        assert [r["id"] for r in await _records(http, filter=field_filter, data=["Name"])] == ids

    @pytest.mark.parametrize(
        ("parameters", "code"),
        [
            ({"data": ["Nope"]}, 75),
            ({"filter": {"Nope": [{"op": "=", "val": 1}]}}, 141),
            ({"filter": {"Name": [{"op": "~", "val": 1}]}}, 142),
            ({"filter": {"NewsletterTag": [{"op": ">", "val": "x"}]}}, 232),
            ({"filter": {"Name": [{"op": "between", "val": "x"}]}}, 257),
            ({"sortby": "Nope"}, 212),
            ({"sortby": "NewsletterTag"}, 212),
            ({"recordids": list(range(501))}, 302),
        ],
    )
    async def test_rejects(
        self, http: httpx.AsyncClient, parameters: dict[str, Any], code: int
    ) -> None:
        assert await _error(http, _action(parameters)) == code

    async def test_sort_and_paging(self, http: httpx.AsyncClient) -> None:
        desc = await _records(http, sortby="Name", sortorder="DESC", listlimit=2, listoffset=1)
        assert [r["id"] for r in desc] == [3, 2]

    async def test_listlimit_default_20_and_clamped_to_500(
        self, state: OnOfficeState, http: httpx.AsyncClient
    ) -> None:
        state.seed([{"Name": str(i)} for i in range(600)])
        assert len(await _records(http)) == 20
        body = await _call(http, _action({"listlimit": 1000}))
        result = body["response"]["results"][0]
        assert len(result["data"]["records"]) == 500
        assert result["data"]["meta"]["cntabsolute"] == 600


class TestWrites:
    async def test_modify_updates_aenderung(
        self, state: OnOfficeState, http: httpx.AsyncClient
    ) -> None:
        (address_id,) = state.seed([{"Name": "x", "Aenderung": "2020-01-01 00:00:00"}])
        action = _action({"Vorname": "y"}, actionid=READ.replace("read", "modify"))
        action["resourceid"] = address_id
        body = await _call(http, action)
        assert body["response"]["results"][0]["data"]["records"][0]["elements"] == {
            "success": "success"
        }
        assert state.addresses[address_id].modified > "2025"

    @pytest.mark.parametrize(
        ("parameters", "code"),
        [
            ({"Email": "plain@example.de"}, 75),  # contact data is not a plain field
            ({"NewsletterTag": "|Mieter|"}, 76),
            ({"newsletter_aktiv": "9"}, 77),
            ({"Anrede": "Graf"}, 77),
            (
                {
                    "email": {
                        "action": "modify",
                        "oldvalue": "x@example.de",
                        "newvalue": "y@example.de",
                    }
                },
                88,
            ),
        ],
    )
    async def test_modify_rejects(
        self, state: OnOfficeState, http: httpx.AsyncClient, parameters: dict[str, Any], code: int
    ) -> None:
        (address_id,) = state.seed([{"Name": "x", "Email": "a@example.de"}])
        action = _action(parameters, actionid=READ.replace("read", "modify"))
        action["resourceid"] = address_id
        assert await _error(http, action) == code
        assert state.addresses[address_id].email == "a@example.de"

    async def test_create_duplicate_without_no_override_updates(
        self, state: OnOfficeState, http: httpx.AsyncClient
    ) -> None:
        (address_id,) = state.seed([{"Name": "Alt", "Email": "x@example.de"}])
        action = _action(
            {"Name": "Neu", "email": "X@example.de", "checkDuplicate": True},
            actionid=READ.replace("read", "create"),
        )
        body = await _call(http, action)
        assert body["response"]["results"][0]["data"]["records"][0]["id"] == address_id
        assert state.addresses[address_id].name == "Neu"

    async def test_agentslog_requires_relation(self, http: httpx.AsyncClient) -> None:
        action = _action(
            {"actionkind": "Newsletter"},
            resourcetype="agentslog",
            actionid=READ.replace("read", "create"),
        )
        assert await _error(http, action) == 98


class TestUnlockProvider:
    @pytest.fixture
    def activation(self, state: OnOfficeState) -> None:
        state.parameter_caches["pc-1"] = "activation-claim"
        state.customers[DEFAULT_TOKEN].claim = "service-claim"

    async def test_success(
        self, state: OnOfficeState, make_client: ClientFactory, activation: None
    ) -> None:
        await make_client(claim="activation-claim").unlock_provider("pc-1")
        assert state.customers[DEFAULT_TOKEN].unlocked
        # The cache is used up.
        with pytest.raises(OnOfficeError) as info:
            await make_client(claim="activation-claim").unlock_provider("pc-1")
        assert info.value.errorcode == 177

    async def test_wrong_claim(self, make_client: ClientFactory, activation: None) -> None:
        with pytest.raises(OnOfficeClaimError) as info:
            await make_client(claim="service-claim").unlock_provider("pc-1")
        assert info.value.errorcode == 248

    async def test_activation_claim_only_unlocks(
        self, make_client: ClientFactory, activation: None
    ) -> None:
        with pytest.raises(OnOfficeClaimError):
            await make_client(claim="activation-claim").get_addresses([1])


class TestControlApi:
    async def test_seed_customers_faults_and_state(
        self, http: httpx.AsyncClient, make_client: ClientFactory
    ) -> None:
        seeded = (await http.post("/_control/addresses", json={"generate": 30, "seed": 1})).json()
        assert seeded["count"] == 30
        await http.post(
            "/_control/customers", json={"token": "t" * 32, "secret": "s" * 64, "claim": "c1"}
        )
        await http.post(f"/_control/customers/{'t' * 32}/claim", json={"claim": "c2"})
        old = make_client(token="t" * 32, secret="s" * 64, claim="c1")
        with pytest.raises(OnOfficeClaimError) as info:
            await old.get_addresses([1])
        assert info.value.errorcode == 201
        await make_client(token="t" * 32, secret="s" * 64, claim="c2").get_addresses([1])

        await http.post(
            "/_control/faults", json={"errorcode": 88, "message": "boom", "resourcetype": "address"}
        )
        with pytest.raises(OnOfficeError, match="boom"):
            await make_client().get_addresses([1])
        await http.post("/_control/faults", json={"http_status": 500, "count": 2})
        await make_client().get_addresses([1])

        state = (await http.get("/_control/state")).json()
        assert len(state["addresses"]) == 30
        # Actions count once authenticated; HTTP requests always (incl. the two 500s).
        assert state["request_counts"]["read:address"] == 3
        assert state["http_requests"] == 6
        assert {c["token"] for c in state["customers"]} == {DEFAULT_TOKEN, "t" * 32}
        assert "secret" not in str(state["customers"])

        await http.post("/_control/reset")
        assert (await http.get("/_control/state")).json()["address_count"] == 0

    async def test_progress_counts_what_a_benchmark_waits_for(
        self, state: OnOfficeState, http: httpx.AsyncClient, client: OnOfficeClient
    ) -> None:
        a, b, c = state.seed(
            [{"Email": f"p{i}@example.de", "newsletter_aktiv": "1"} for i in range(3)]
        )
        await client.modify_addresses(
            [
                (a, AddressUpdate(newsletter=NewsletterStatus.no)),
                (c, AddressUpdate(newsletter=NewsletterStatus.no)),
            ]
        )
        item = ActivityCreate(address_ids=[a, b], kind="Newsletter", note="n")
        await client.create_activities([item, item.model_copy(update={"address_ids": [a]})])
        progress = await http.get("/_control/progress", params={"first": a, "last": b})
        assert progress.json() == {"not_yes": 1, "twice": 1}
        malformed = await http.get("/_control/progress", params={"first": a})
        assert malformed.status_code == 422

    async def test_settings_clock_latency(
        self, http: httpx.AsyncClient, client: OnOfficeClient
    ) -> None:
        settings = (
            await http.post(
                "/_control/settings",
                json={"unsortable_fields": ["KdNr"], "modified_readable": False},
            )
        ).json()
        assert settings["unsortable_fields"] == ["KdNr"] and not settings["modified_readable"]
        await http.post("/_control/latency", json={"seconds": 0.05})
        started = time.monotonic()
        await client.get_addresses([1])
        assert time.monotonic() - started >= 0.05
        await http.post("/_control/clock", json={"offset_seconds": -200})
        with pytest.raises(OnOfficeError) as info:
            await client.get_addresses([1])
        assert info.value.errorcode == 136


class TestGenerator:
    def test_deterministic_and_varied(self) -> None:
        book = generate_address_book(400, seed=7)
        assert book == generate_address_book(400, seed=7)
        assert book != generate_address_book(400, seed=8)
        assert {r["Anrede"] for r in book} == {"Herr", "Frau", "Firma", "Familie", "Eheleute", ""}
        assert {r["newsletter_aktiv"] for r in book} == {"0", "1", "2", "3", "4", "5"}
        assert {r["Status"] for r in book} == {0, 1}
        emails = [r["Email"] for r in book]
        assert "" in emails
        assert any("@" not in e or e.endswith("@") or e.startswith("@") for e in emails if e)
        normalised = [e.strip().lower() for e in emails if e]
        assert len(set(normalised)) < len(normalised)  # duplicates
        assert any(e != e.strip() for e in emails)  # surrounding spaces
        assert any(any(c in r["Name"] + r["Vorname"] for c in "äöüßÄÖÜ") for r in book)
        assert any(r["NewsletterTag"] for r in book)


class TestReadHooks:
    async def test_an_agent_saves_an_address_between_two_page_reads(
        self, http: httpx.AsyncClient
    ) -> None:
        people = [
            {"id": i, "KdNr": i, "Email": f"p{i}@x.de", "newsletter_aktiv": "1", "Status": "1"}
            for i in range(1, 6)
        ]
        await http.post("/_control/addresses", json={"addresses": people})
        armed = await http.post(
            "/_control/read-hooks",
            json={"listoffset": 2, "addresses": [people[0] | {"newsletter_aktiv": "0"}]},
        )
        assert armed.json() == {"read_hooks": 1, "fired": 0}
        page: dict[str, Any] = {
            "data": ["Email"],
            "filter": {"newsletter_aktiv": [{"op": "=", "val": 1}]},
            "listlimit": 2,
            "sortby": "KdNr",
        }
        first = await _records(http, **page, listoffset=0)
        # A read filtered on another field does not fire it.
        other = page | {"filter": {"Status": [{"op": "=", "val": 1}]}}
        assert len(await _records(http, **other, listoffset=2)) == 2
        second = await _records(http, **page, listoffset=2)  # saved before the answer
        third = await _records(http, **page, listoffset=2)  # once only
        assert [r["id"] for r in first] == [1, 2]
        assert [r["id"] for r in second] == [4, 5]  # p1 left the filter: p3 is on no page
        assert [r["id"] for r in third] == [4, 5]
        state = (await http.get("/_control/state")).json()
        by_id = {a["id"]: a for a in state["addresses"]}
        assert by_id[1]["newsletter_aktiv"] == "0"


def test_the_email_index_follows_each_write_and_a_bulk_seed() -> None:
    """The emulator's lookup by email (kept current address by address, not rebuilt over the
    whole book after every write) finds an address under its new email only, a new address at
    once, and after a replacing seed only the seeded ones."""
    state = OnOfficeState()
    state.seed([{"id": 1, "Email": "a@x.de"}, {"id": 2, "Email": "B@x.de "}])

    def find(email: str) -> list[int]:
        return state.query({"Email": [{"op": "=", "val": email}]}, None, False)

    assert (find("a@x.de"), find("b@x.de")) == ([1], [2])  # case and trailing blanks folded
    state.addresses[1].emails = ["c@x.de"]
    state.touch(state.addresses[1])
    assert (find("a@x.de"), find("c@x.de")) == ([], [1])
    new = EmuAddress(id=0, kdnr=0, emails=["c@x.de"])
    state.add(new)
    assert find("c@x.de") == [1, new.id]
    state.seed([{"id": 5, "Email": "a@x.de"}])
    assert (find("a@x.de"), find("c@x.de"), find("b@x.de")) == ([5], [], [])
