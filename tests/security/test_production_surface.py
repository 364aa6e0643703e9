"""Issue 21, L3 and L4: production fails closed on its public surface: /metrics only behind
METRICS_TOKEN, no /docs or /redoc (FastAPI loads their scripts from a CDN), /readyz without
error texts; the landing page is never framed and runs only its own script."""

from __future__ import annotations

from pydantic import SecretStr

from app.config import Environment, Settings
from app.crypto import generate_key
from app.main import create_app
from tests.conftest import running_app


def production(settings: Settings, **extra: object) -> Settings:
    return settings.model_copy(
        update={
            "ENV": Environment.production,
            "ENCRYPTION_KEY": SecretStr(generate_key()),
            **extra,
        }
    )


async def test_production_hides_metrics_without_a_token_and_serves_no_cdn_pages(
    settings: Settings,
) -> None:
    async with running_app(create_app(production(settings))) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/redoc")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200
        landing = await client.get("/")
        assert 'href="/docs"' not in landing.text and 'href="/metrics"' not in landing.text
    empty = production(settings, METRICS_TOKEN=SecretStr(""))  # compose's default
    async with running_app(create_app(empty)) as client:
        assert (await client.get("/metrics")).status_code == 404
    with_token = production(settings, METRICS_TOKEN=SecretStr("m"))
    async with running_app(create_app(with_token)) as client:
        assert (await client.get("/metrics")).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer m"})
        assert ok.status_code == 200


async def test_development_keeps_docs_and_metrics(settings: Settings) -> None:
    async with running_app(create_app(settings)) as client:
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_the_landing_page_is_never_framed_and_runs_only_its_own_script(
    settings: Settings,
) -> None:
    async with running_app(create_app(settings)) as client:
        landing = await client.get("/")
    csp = landing.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert (
        "script-src 'nonce-" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
