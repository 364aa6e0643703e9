"""The settings/status page onOffice shows in its iframe, rendered through the app over HTTP."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import get_args

import pytest

from app.connections.schemas import ActivityOptions
from app.db.models import ProblemKind
from app.syncs.schemas import SyncRunRead
from app.ui.texts import APP_TEXTS
from tests.tenants.conftest import Harness, iframe_params, signed_query

APP = "/onoffice/app"

GERMAN = [
    "Verbindung",
    "Newsletter-Dienst",
    "API-Schlüssel",
    "Als Aktivität in onOffice eintragen",
    "Speichern",
    "Verbindung trennen",
    "Synchronisation starten",
    "Alle Kontakte erneut senden",
    "Probleme als CSV",
    "Nicht übertragene Adressen",
    "Aktualisieren",
    "Letzte Läufe",
]
ENGLISH = [
    "Connection",
    "Newsletter service",
    "API key",
    "Record as onOffice activity",
    "Save",
    "Disconnect",
    "Start synchronisation",
    "Force full resend",
    "Problems as CSV",
    "Addresses not synced",
    "Refresh",
    "Recent runs",
]
# Each page carries only its own language.
GERMAN_ONLY = ["Synchronisation starten", "Probleme als CSV", "Verbindung trennen"]
ENGLISH_ONLY = ["Start synchronisation", "Problems as CSV", "Disconnect"]


async def open_page(
    harness: Harness, *, headers: dict[str, str] | None = None, **params: str
) -> str:
    await harness.activate()
    query = signed_query(APP, iframe_params(**params))
    response = await harness.client.get(f"{APP}?{query}", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    return response.text


def script_of(html: str) -> str:
    scripts: list[str] = re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 1
    return scripts[0]


def embedded_texts(html: str) -> dict[str, str]:
    match = re.search(r"var T = (\{.*?\});\n", html)
    assert match is not None
    texts: dict[str, str] = json.loads(match.group(1))
    return texts


class TestLanguages:
    async def test_german_by_default(self, harness: Harness) -> None:
        html = await open_page(harness)
        assert '<html lang="de">' in html
        for text in GERMAN:
            assert text in html, text
        for text in ENGLISH_ONLY:
            assert text not in html, text
        assert embedded_texts(html) == APP_TEXTS["de"]
        assert 'var LANG = "de";' in html

    async def test_english_when_onoffice_says_so(self, harness: Harness) -> None:
        html = await open_page(harness, UserLanguage="ENG")
        assert '<html lang="en">' in html
        for text in ENGLISH:
            assert text in html, text
        for text in GERMAN_ONLY:
            assert text not in html, text
        assert embedded_texts(html) == APP_TEXTS["en"]
        assert 'var LANG = "en";' in html

    async def test_english_from_the_browser_language(self, harness: Harness) -> None:
        html = await open_page(harness, headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert '<html lang="en">' in html
        assert "Start synchronisation" in html

    async def test_the_cancel_button_and_the_held_list_in_both_languages(
        self, harness: Harness
    ) -> None:
        german = await open_page(harness)
        english = await open_page(harness, UserLanguage="ENG")
        for html, lang in ((german, "de"), (english, "en")):
            button = f'id="sync-cancel" class="small" hidden>{APP_TEXTS[lang]["sync_cancel"]}<'
            assert button in html
            assert APP_TEXTS[lang]["s_held_list"] in html
        assert "Synchronisation abbrechen" in german and "Cancel the synchronisation" in english

    async def test_onoffice_language_wins_over_the_browser(self, harness: Harness) -> None:
        html = await open_page(harness, headers={"Accept-Language": "en"}, UserLanguage="DEU")
        assert '<html lang="de">' in html
        assert "Synchronisation starten" in html


class TestScript:
    @pytest.fixture
    async def html(self, harness: Harness) -> str:
        return await open_page(harness)

    async def test_drives_the_api(self, html: str) -> None:
        script = script_of(html)
        for call in [
            '"POST", "/api/v1/sessions"',
            '"GET", "/api/v1/session"',
            '"GET", "/api/v1/connection"',
            '"PUT", "/api/v1/connection"',
            '"DELETE", "/api/v1/connection" + (force ? "?force=true" : "")',
            '"POST", "/api/v1/syncs", { force:',
            '"GET", "/api/v1/syncs"',
            '"GET", "/api/v1/syncs/" + id',
            '"/api/v1/syncs/" + runId + "/problems?limit=" + PROBLEM_ROWS',
            '"&offset=" + problemState.offset',
            '"/api/v1/syncs/" + id + "/problems?format=csv&" + problemQuery()',
            '"GET", "/api/v1/status"',
            '"POST", "/api/v1/syncs/" + id + "/cancel"',
            '"GET", "/api/v1/syncs/" + run + "/held-unsubscribes?limit=200"',
            '"GET", "/api/v1/connection/archived"',
            '"POST", "/api/v1/connection/archived/restore", { emails: emails }',
        ]:
            assert call in script, call
        assert 'headers.Authorization = "Bearer " + token' in script
        assert "URL.createObjectURL(blob)" in script  # CSV download carries the token
        assert "details.status_page" in script
        assert "var POLL_MS = 1500;" in script
        assert "var PROBLEM_ROWS = 50;" in script
        # The signed query and API base are embedded for the session exchange.
        assert 'var apiBase = "https://connector.test";' in script
        assert re.search(r'var signedQuery = "[^"]*signature=[0-9a-f]{64}[^"]*";', script)

    async def test_activities_match_the_api(self, html: str) -> None:
        script = script_of(html)
        fields = list(ActivityOptions.model_fields)
        assert f"var ALL_ACTIVITIES = {json.dumps(fields)};" in script
        assert 'mailchimp: ["delivered"]' in script
        assert 'brevo: ["delivered", "opened", "clicked", "hard_bounce"]' in script
        for name in fields:
            assert f'data-activity="{name}"' in html
            assert f'name="{name}"' in html

    async def test_every_text_the_script_uses_exists(self, html: str) -> None:
        script = script_of(html)
        keys = set(re.findall(r"\bT\.(\w+)", script))
        keys |= set(re.findall(r'\bfmt\("(\w+)"', script))
        texts = APP_TEXTS["de"]
        assert keys, "no text references found"
        assert not keys - texts.keys(), keys - texts.keys()
        # Keys built at run time from API values.
        statuses = get_args(SyncRunRead.model_fields["status"].annotation)
        kinds = [k.value for k in ProblemKind]
        phases = ["queued", "reading", "sending", "tags", "done", "failed"]
        dynamic = [f"st_{s}" for s in statuses] + [f"phase_{p}" for p in phases]
        dynamic += [f"kind_{k}" for k in kinds]
        dynamic += [f"api_key_help_{p}" for p in ("mailchimp", "brevo")]
        assert not set(dynamic) - texts.keys(), set(dynamic) - texts.keys()

    async def test_every_element_the_script_uses_exists(self, html: str) -> None:
        script = script_of(html)
        used = set(re.findall(r'\$\("([\w-]+)"\)', script))
        used |= set(re.findall(r'getElementById\("([\w-]+)"\)', script))
        ids = set(re.findall(r'\bid="([\w-]+)"', html))
        assert used and not used - ids, used - ids

    async def test_no_external_assets(self, html: str) -> None:
        assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)
        assert "@import" not in html and "url(" not in html
        # Only the API base and the status pages (links the user opens, always shown).
        assert re.findall(r"https?://[^\"'\s<]+", html) == [
            "https://status.onoffice.de",
            "https://status.mailchimp.com",
            "https://status.brevo.com",
            "https://connector.test",
        ]

    async def test_accessible_controls(self, html: str) -> None:
        page = _Controls()
        page.feed(html)
        for control in page.controls:
            assert control in page.labelled, f"{control} has no label"
        assert 'id="run-live" class="live" role="status" aria-live="polite"' in html
        assert 'role="progressbar"' in html
        assert 'type="password" id="api-key"' in html
        for region in ("conn-msg", "sync-msg", "status-msg", "problems-msg"):
            assert re.search(rf'id="{region}"[^>]*aria-live="polite"', html), region


class _Controls(HTMLParser):
    """Form controls and whether each has a label (wrapping or `for`)."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()
        self._open_labels = 0
        self._for: set[str] = set()
        self._ids: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self._open_labels += 1
            if a.get("for"):
                self.labelled.add(f"#{a['for']}")
        if tag in ("input", "select", "textarea"):
            name = f"#{a['id']}" if a.get("id") else f"{a.get('name')}={a.get('value')}"
            self.controls.append(name)
            if self._open_labels:
                self.labelled.add(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._open_labels -= 1


class TestSessionExchange:
    async def test_the_embedded_query_opens_a_session_for_the_page(self, harness: Harness) -> None:
        html = await open_page(harness)
        match = re.search(r'var signedQuery = ("[^"]*");', html)
        assert match is not None
        query = json.loads(match.group(1))
        session = await harness.client.post("/api/v1/sessions", json={"query": query})
        assert session.status_code == 201, session.text
        headers = {"Authorization": f"Bearer {session.json()['token']}"}
        who = await harness.client.get("/api/v1/session", headers=headers)
        assert who.json()["customer_name"] == "Muster Immobilien GmbH"
        status = await harness.client.get("/api/v1/status", headers=headers)
        assert status.status_code == 200
        assert status.json()["connected"] is False
        # What the page does before a provider is connected.
        connection = await harness.client.get("/api/v1/connection", headers=headers)
        assert connection.status_code == 404
        assert connection.json()["message"]


class TestTexts:
    def test_both_languages_have_the_same_keys_and_placeholders(self) -> None:
        de, en = APP_TEXTS["de"], APP_TEXTS["en"]
        assert de.keys() == en.keys()
        for key in de:
            placeholders = set(re.findall(r"\{(\w+)\}", de[key]))
            assert placeholders == set(re.findall(r"\{(\w+)\}", en[key])), key

    def test_texts_differ_between_languages(self) -> None:
        de, en = APP_TEXTS["de"], APP_TEXTS["en"]
        same = {k for k in de if de[k] == en[k]}
        international = {"title", "none", "sync_title", "sync_run", "progress_live", "status_title"}
        assert same <= international | {"col_status"}
