"""The page at `/` of the real service (no demo): what it is, version, health, links."""

from __future__ import annotations

from app import __version__
from tests.tenants.conftest import Harness


class TestLanding:
    async def test_english_by_default_with_version_health_and_links(self, harness: Harness) -> None:
        page = await harness.client.get("/")
        assert page.status_code == 200
        html = page.text
        assert '<html lang="en">' in html
        assert f'id="version">{__version__}<' in html
        assert 'id="health" class="ok">ready<' in html
        assert 'href="/docs"' in html and 'href="/metrics"' in html
        assert "demo-button" not in html  # only in demo mode

    async def test_german(self, harness: Harness) -> None:
        html = (await harness.client.get("/", headers={"Accept-Language": "de-DE"})).text
        assert '<html lang="de">' in html and "bereit" in html and "Betriebsart" in html
        assert (await harness.client.get("/?lang=en")).text.count('lang="en"') == 1

    async def test_no_demo_links_outside_demo_mode(self, harness: Harness) -> None:
        assert (await harness.client.post("/demo/iframe-link")).status_code == 404
        assert (await harness.client.get("/favicon.ico")).status_code == 204
