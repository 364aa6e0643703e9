"""The preview and the "needs attention" panel in a real browser (Playwright driving Debian's
chromium), in German: a list that already has members is offered the preview first, the
preview runs to its counts and per-address list, nothing is written at Mailchimp, and no
English text is on the page."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from app.i18n.catalogue import CATALOGUE
from devkit.kit import free_port
from tests.browser.test_iframe_browser import (
    MAILCHIMP_KEY,
    browser,  # noqa: F401  (fixture)
    english_only_words,
    fresh_link,
    open_iframe,
)
from tests.demo_process import DemoProcess, demo_without_sync

ADDRESSES = 300
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    database = tmp_path_factory.mktemp("preview-browser") / "demo.db"
    yield from demo_without_sync(database, free_port(), ADDRESSES)


def mailchimp_url(demo: DemoProcess) -> str:
    found = re.search(r"Mailchimp emulator: (http://127\.0\.0\.1:\d+)", demo.output)
    assert found, demo.output
    return found.group(1)


def seed_audience(base: str, members: int) -> None:
    audience = httpx.post(f"{base}/_control/lists", json={"name": "onoffice"}, timeout=10)
    answer = httpx.post(
        f"{base}/_control/lists/{audience.json()['id']}/members",
        json={"members": [{"email": f"vorher{i}@example.de"} for i in range(members)]},
        timeout=10,
    )
    assert answer.status_code == 204


def mailchimp_writes(base: str) -> dict[str, int]:
    stats = httpx.get(f"{base}/_control/stats", timeout=10).json()
    return {k: v for k, v in stats["requests"].items() if k.split(" ", 1)[0] in WRITES}


async def test_preview_and_attention_in_german(
    demo: DemoProcess,
    browser: Browser,  # noqa: F811
) -> None:
    ui = CATALOGUE["de"]
    # The audience "onoffice" already exists with members the connector never synced.
    base = mailchimp_url(demo)
    await asyncio.to_thread(seed_audience, base, 3)
    page, errors = await open_iframe(browser, fresh_link(demo, "de"))
    await page.check("input[name=provider][value=mailchimp]")
    await page.fill("#api-key", MAILCHIMP_KEY)
    await page.click("#save")
    await page.wait_for_selector("#conn-msg.ok", timeout=20000)
    await page.click("#refresh")
    # The panel names the decision and what to do; the sync card offers the preview first.
    item = page.locator("#att-list li[data-code=first_sync]")
    await item.wait_for(timeout=15000)
    assert ui["ui.att_first_sync_do"] in await item.inner_text()
    await page.wait_for_selector("#preview-first:not([hidden])")
    assert "3" in await page.inner_text("#preview-first")
    writes = await asyncio.to_thread(mailchimp_writes, base)
    await page.click("#preview-start")
    await page.wait_for_selector("#preview-badge.completed", timeout=60000)
    await page.wait_for_selector("#preview-counts:not([hidden])")
    counts = await page.inner_text("#preview-counts")
    assert ui["ui.pv_out_created"] in counts and ui["ui.pv_written_back"] in counts
    rows = page.locator("#preview-table tbody tr")
    await page.wait_for_function(
        "() => document.querySelectorAll('#preview-table tbody tr').length > 0"
    )
    # Only the addresses that would be added.
    await page.select_option("#preview-outcome", "created")
    await page.wait_for_function(
        "k => { const cells = Array.from(document.querySelectorAll("
        "'#preview-table tbody tr td:nth-child(3)'));"
        " return cells.length > 0 && cells.every(td => td.textContent === k); }",
        arg=ui["ui.pv_out_created"],
    )
    assert await rows.count() > 0
    # The CSV of the current filter, texts in German.
    async with page.expect_download() as info:
        await page.click("#preview-csv")
    download = await info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(text)))
    assert table and {row["outcome"] for row in table} == {"created"}
    assert {row["outcome_text"] for row in table} == {ui["ui.pv_out_created"]}
    # Nothing was written at Mailchimp, and no run was started.
    assert await asyncio.to_thread(mailchimp_writes, base) == writes
    assert await page.is_hidden("#run")
    body = await page.inner_text("body")
    stray = sorted(set(re.findall(r"[A-Za-z]{4,}", body)) & english_only_words())
    assert not stray, f"English on the German page: {stray}"
    assert not errors, errors
    await page.screenshot(path="/tmp/preview-browser.png", full_page=True)
    await page.context.close()
