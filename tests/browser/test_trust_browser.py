"""Issue 20 in a real browser (Debian's chromium, German page): after a sync whose onOffice
answer lost many newsletter addresses, the decision list shows the held unsubscribes person by
person; a user approves a selection of two; the search "Warum ist … (nicht) angemeldet?" shows
one of them with the timeline including that decision; no English text on the page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser

from app.i18n.catalogue import CATALOGUE
from devkit.kit import free_port
from tests.browser.test_iframe_browser import (
    browser,  # noqa: F401  (fixture)
    english_only_words,
    fresh_link,
    open_iframe,
    save_and_sync,
)
from tests.demo_process import DemoProcess, demo_without_sync

ADDRESSES = 300
EMULATOR = re.compile(r"onOffice emulator:\s+(http://127\.0\.0\.1:\d+)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    database = tmp_path_factory.mktemp("trust") / "demo.db"
    yield from demo_without_sync(database, free_port(), ADDRESSES)


def drop_newsletter_addresses(demo: DemoProcess) -> None:
    """Four in ten newsletter addresses disappear from onOffice (e.g. a broken export): the
    next sync's safety valve holds their unsubscribes."""
    url = next(m.group(1) for line in demo.lines if (m := EMULATOR.search(line)))
    book = httpx.get(f"{url}/_control/state", timeout=30).json()["addresses"]
    yes = [a["id"] for a in book if a["newsletter_aktiv"] == "1"]
    gone = set(yes[: len(yes) * 4 // 10])
    kept = [a for a in book if a["id"] not in gone]
    answer = httpx.post(
        f"{url}/_control/addresses", json={"addresses": kept, "replace": True}, timeout=30
    )
    answer.raise_for_status()


async def test_held_unsubscribes_approved_by_selection_and_the_timeline_in_german(
    demo: DemoProcess,
    browser: Browser,  # noqa: F811
) -> None:
    ui = CATALOGUE["de"]
    page, errors = await open_iframe(browser, fresh_link(demo, "de"))
    await save_and_sync(page, ui)
    drop_newsletter_addresses(demo)
    await page.click("#sync-start")
    await page.wait_for_selector("#run-badge.completed", timeout=90000)
    # The decision list of held unsubscribes, person by person.
    await page.click("#refresh")
    rows = page.locator("#dec-table tbody tr")
    await page.wait_for_selector("#dec-table:not([hidden])", timeout=20000)
    total_before = int(re.sub(r"\D", "", (await page.inner_text("#dec-info")).split(" von ")[1]))
    assert total_before >= 5
    assert ui["decision.reason.held_unsubscribe"] in await rows.nth(0).inner_text()
    chosen = [await rows.nth(i).locator("td").nth(1).inner_text() for i in (0, 1)]
    await rows.nth(0).locator("input").check()
    await rows.nth(1).locator("input").check()
    assert await page.input_value("#dec-scope") == "selected"
    await page.click("#dec-actions button[data-action=apply]")
    await page.wait_for_selector("#dec-msg.ok", timeout=20000)
    assert (await page.inner_text("#dec-msg")).startswith("2 entschieden")
    await page.wait_for_function(
        "n => document.getElementById('dec-info').textContent.endsWith(' von ' + n)",
        arg=str(total_before - 2),
    )
    listed = await page.locator("#dec-table tbody td.email").all_inner_texts()
    assert not set(chosen) & set(listed)
    # Why is the first one (not) subscribed? The timeline shows the user's approval.
    assert ui["ui.who_title"] in await page.inner_text("#who-card")
    await page.fill("#who-email", chosen[0])
    await page.click("#who-search")
    await page.wait_for_selector("#who-result:not([hidden])", timeout=10000)
    timeline = await page.inner_text("#who-table")
    assert ui["history.entry.decision.user"].split("{")[0] in timeline
    assert "Vollständige Synchronisation" in timeline
    assert ui["history.value.apply"] in timeline
    verdict = await page.inner_text("#who-verdict")
    assert chosen[0] in verdict
    body = await page.inner_text("body")
    stray = sorted(set(re.findall(r"[A-Za-z]{4,}", body)) & english_only_words())
    assert not stray, f"English on the German page: {stray}"
    assert not errors, errors
    await page.context.close()
