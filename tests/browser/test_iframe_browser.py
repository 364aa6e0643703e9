"""The iframe in a real browser: Playwright driving Debian's chromium (no downloaded build).

Opens the demo's signed iframe links in German and in English, saves the Mailchimp connection,
starts a sync and watches its progress to the end, pages, filters and searches the problem list
and downloads the CSV. Fails on any console error, and on English text on the German page.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from app.i18n.catalogue import CATALOGUE
from devkit.kit import free_port
from tests.demo_process import DemoProcess

CHROMIUM = "/usr/bin/chromium"
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us1"  # the emulator's default key
ADDRESSES = 3000


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    port = free_port()
    database = tmp_path_factory.mktemp("browser") / "demo.db"
    process = DemoProcess(
        [
            sys.executable,
            "-m",
            "app.cli",
            "demo",
            "--port",
            str(port),
            "--addresses",
            str(ADDRESSES),
            "--database",
            str(database),
            "--no-sync",
        ],
        port,
    )
    try:
        process.wait_for_link(120)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian's chromium is missing: apt-get install chromium (scripts/services.sh)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        await browser.close()


def english_only_words() -> set[str]:
    """Words of the English texts that no German text uses (placeholders removed)."""

    def words(texts: dict[str, str]) -> set[str]:
        found: set[str] = set()
        for value in texts.values():
            found |= set(re.findall(r"[A-Za-z]{4,}", re.sub(r"\{\w+\}", " ", value)))
        return found

    return words(CATALOGUE["en"]) - words(CATALOGUE["de"])


def fresh_link(demo: DemoProcess, lang: str) -> str:
    answer = httpx.post(f"{demo.base}/demo/iframe-link?lang={lang}", timeout=10)
    answer.raise_for_status()
    return str(answer.json()["url"])


async def open_iframe(browser: Browser, url: str) -> tuple[Page, list[str]]:
    context = await browser.new_context(accept_downloads=True)
    page = await context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_selector("#main:not([hidden])", timeout=15000)
    return page, errors


async def save_and_sync(page: Page, ui: dict[str, str]) -> None:
    await page.check("input[name=provider][value=mailchimp]")
    await page.fill("#api-key", MAILCHIMP_KEY)
    await page.click("#save")
    await page.wait_for_selector("#conn-msg.ok", timeout=20000)
    assert await page.inner_text("#conn-msg") == ui["ui.saved"]
    await page.wait_for_selector("#sync-start:not([disabled])", timeout=10000)
    await page.click("#sync-start")
    # The live progress is shown while the run is active, then the counts.
    await page.wait_for_selector("#run-progress:not([hidden])", timeout=10000)
    assert await page.get_attribute("#run-bar", "role") == "progressbar"
    await page.wait_for_selector("#run-badge.completed", timeout=90000)
    await page.wait_for_selector("#run-counts:not([hidden])")
    counts = await page.inner_text("#run-counts")
    assert (
        ui["ui.c_reconciled"] in counts and ui["ui.yes"] in counts.split(ui["ui.c_reconciled"])[1]
    )


async def check_problems(page: Page, ui: dict[str, str], lang: str) -> None:
    await page.wait_for_selector("#problems:not([hidden])", timeout=15000)
    rows = page.locator("#problems-table tbody tr")
    assert await rows.count() == 50  # one page
    first_page = await page.inner_text("#problems-page")
    assert re.match(ui["ui.problems_page"].split("{page}")[0], first_page), first_page
    first_row = await rows.nth(0).inner_text()
    await page.click("#problems-next")
    await page.wait_for_function(
        "t => document.getElementById('problems-page').textContent !== t", arg=first_page
    )
    assert await rows.nth(0).inner_text() != first_row
    assert not await page.is_disabled("#problems-prev")
    # Filter by kind: every row shows that kind.
    await page.select_option("#problems-kind", "duplicate")
    await page.wait_for_function(
        "k => Array.from(document.querySelectorAll('#problems-table tbody tr td:nth-child(3)'))"
        ".every(td => td.textContent === k)",
        arg=ui["ui.kind_duplicate"],
    )
    reason = await rows.nth(0).locator("td").nth(3).inner_text()
    assert reason.startswith(ui["reason.duplicate"].split("{")[0]), reason
    # Search by email: one address.
    email = await rows.nth(0).locator("td").nth(1).inner_text()
    address_id = await rows.nth(0).locator("td").nth(0).inner_text()
    await page.select_option("#problems-kind", "")
    await page.fill("#problems-q", address_id)
    await page.click("#problems-search")
    await page.wait_for_function(
        "() => document.querySelectorAll('#problems-table tbody tr').length === 1"
    )
    assert await rows.nth(0).locator("td").nth(1).inner_text() == email
    # The CSV of the current filter, reasons in the page's language.
    async with page.expect_download() as info:
        await page.click("#problems-csv")
    download = await info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["address_id", "email", "kind", "reason", "reason_code", "detail"]
    assert [row[0] for row in table[1:]] == [address_id]
    assert table[1][3] == reason and table[1][4] == "duplicate"
    del lang


MAILCHIMP_URL = re.compile(r"Mailchimp emulator:\s+(http://127\.0\.0\.1:\d+)")


async def forge_webhooks(demo: DemoProcess) -> None:
    """Two forged Mailchimp webhooks (only the URL is needed): an unsubscribe of a subscribed
    member and an email change to an address Mailchimp does not have. The demo's drain
    confirms them at its Mailchimp emulator, which contradicts both."""
    mailchimp = next(m.group(1) for line in demo.lines if (m := MAILCHIMP_URL.search(line)))
    async with httpx.AsyncClient(timeout=10) as http:
        lists = (await http.get(f"{mailchimp}/_control/lists")).json()["lists"]
        audience = next(x for x in lists if x["name"] == "onoffice")
        (hook,) = audience["webhooks"]
        members = await http.get(
            f"{mailchimp}/3.0/lists/{audience['id']}/members",
            params={"status": "subscribed", "count": 2},
            auth=("demo", MAILCHIMP_KEY),
        )
        anna, bob = (m["email_address"] for m in members.json()["members"])
        fired = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        common = {"fired_at": fired, "data[list_id]": audience["id"]}
        forged = [
            {"type": "unsubscribe", "data[action]": "unsub", "data[email]": anna},
            {"type": "upemail", "data[old_email]": bob, "data[new_email]": "mallory@example.com"},
        ]
        for form in forged:
            answer = await http.post(hook["url"], data=common | form)
            assert answer.status_code == 200, answer.text


async def unconfirmed_list(page: Page) -> str:
    """The status card's list of unconfirmed events, once the drain has settled them."""
    for _ in range(40):
        await page.click("#refresh")
        await page.wait_for_selector("#refresh:not([aria-busy])")
        if await page.locator("#unconfirmed-list li").count() == 2:
            return await page.inner_text("#unconfirmed")
        await asyncio.sleep(0.5)
    raise AssertionError("the forged webhooks were not listed as unconfirmed")


class TestIframeInChromium:
    async def test_german(self, demo: DemoProcess, browser: Browser) -> None:
        ui = CATALOGUE["de"]
        page, errors = await open_iframe(browser, fresh_link(demo, "de"))
        assert await page.get_attribute("html", "lang") == "de"
        await save_and_sync(page, ui)
        await check_problems(page, ui, "de")
        await page.click("#refresh")
        await page.wait_for_selector("#refresh:not([aria-busy])")
        held = await page.inner_text("#held-back")
        assert held.strip() == ui["ui.s_held_back_none"]
        # The provider side's health: the webhook, the reconciliation, unconfirmed events.
        card = await page.inner_text("#status-card")
        for key in ("ui.s_webhook", "ui.s_reconcile", "ui.s_unconfirmed"):
            assert ui[key] in card, key
        # Forged webhooks: listed with who, what they claimed and what Mailchimp showed.
        await forge_webhooks(demo)
        listed = await unconfirmed_list(page)
        assert ui["ui.s_unconfirmed_list"] in listed
        claimed = (ui["ui.uc_claim_unsubscribe"], ui["ui.uc_shown_subscribed"])
        moved = (ui["ui.uc_claim_email_changed"].format(new="mallory@example.com"),)
        assert all(text in listed for text in (*claimed, *moved, ui["ui.uc_shown_none"]))
        body = await page.inner_text("body")
        stray = sorted(set(re.findall(r"[A-Za-z]{4,}", body)) & english_only_words())
        assert not stray, f"English on the German page: {stray}"
        assert not errors, errors
        await page.context.close()

    async def test_english(self, demo: DemoProcess, browser: Browser) -> None:
        ui = CATALOGUE["en"]
        page, errors = await open_iframe(browser, fresh_link(demo, "en"))
        assert await page.get_attribute("html", "lang") == "en"
        await save_and_sync(page, ui)
        await check_problems(page, ui, "en")
        assert ui["ui.s_status_pages"] in await page.inner_text("#status-card")
        assert not errors, errors
        await page.context.close()
