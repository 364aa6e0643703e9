"""`make run` on a fresh machine: the demo path end to end, as a newcomer sees it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devkit.kit import free_port
from tests.demo_process import ROOT, DemoProcess


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    port = free_port()
    database = tmp_path_factory.mktemp("demo") / "demo.db"
    demo = DemoProcess(
        [
            "make",
            "--no-print-directory",
            "run",
            f"PORT={port}",
            "ADDRESSES=2000",
            f"DEMO_DB={database}",
            f"VENV={Path(ROOT / '.venv')}",
        ],
        port,
    )
    try:
        demo.wait_for_link(180)
        yield demo
    finally:
        demo.stop()


class TestMakeRun:
    def test_first_sync_finishes_and_prints_the_summary(self, make_run: DemoProcess) -> None:
        out = make_run.output
        assert "Demo customer activated: active" in out
        assert "Mailchimp connection saved" in out
        assert "Synchronisation #1: abgeschlossen" in out, out
        # Counts that reconcile, in the account's language, with the time taken.
        total = int(
            re.search(r"Newsletter-Kontakte in onOffice\s+([\d.]+)", out)[1].replace(".", "")
        )  # type: ignore[index]
        assert total > 500
        assert re.search(r"Summe geht auf\s+ja", out), out
        assert re.search(r"Dauer\s+[\d.]+ s", out), out
        assert f"{make_run.base}/" in out and f"{make_run.base}/docs" in out

    def test_the_printed_link_opens_the_iframe(self, make_run: DemoProcess) -> None:
        link = make_run.wait_for_link(1)
        page = httpx.get(link, timeout=10)
        assert page.status_code == 200, page.text
        assert '<html lang="de">' in page.text and "Synchronisation starten" in page.text
        # Signed links work once.
        assert httpx.get(link, timeout=10).status_code == 401

    def test_landing_page_and_fresh_links(self, make_run: DemoProcess) -> None:
        landing = httpx.get(f"{make_run.base}/", headers={"Accept-Language": "de"}, timeout=10)
        assert landing.status_code == 200
        html = landing.text
        assert "onOffice Newsletter Connector" in html and 'href="/docs"' in html
        assert 'id="health" class="ok">bereit' in html
        assert "Demo (emulierte Dienste)" in html and 'id="demo-button"' in html
        fresh = httpx.post(f"{make_run.base}/demo/iframe-link?lang=en", timeout=10).json()["url"]
        page = httpx.get(fresh, timeout=10)
        assert page.status_code == 200 and '<html lang="en">' in page.text
