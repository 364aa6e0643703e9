from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Environment, Settings
from app.main import create_app
from devkit.kit import free_port
from tests.conftest import running_app


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A private redis-server this test may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    yield port, proc
    proc.kill()
    proc.wait()


class TestHealth:
    async def test_embedded_default_is_ready_without_redis(self, tmp_path: Path) -> None:
        settings = Settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
        async with running_app(create_app(settings)) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "queue": "ok"}

    async def test_readiness_names_a_stopped_redis(
        self, settings: Settings, redis_server: tuple[int, subprocess.Popen[bytes]]
    ) -> None:
        port, proc = redis_server
        settings = settings.model_copy(update={"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        async with running_app(create_app(settings)) as client:
            for _ in range(50):
                ready = await client.get("/readyz")
                if ready.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert ready.status_code == 200
            proc.terminate()
            proc.wait()
            down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["failing"] == ["queue"]
        assert down.json()["checks"]["database"] == "ok"

    async def test_readiness_names_an_unreachable_database(self, settings: Settings) -> None:
        port = free_port()  # nothing listens there
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nope"
        async with running_app(create_app(settings.model_copy(update={"DATABASE_URL": url}))) as c:
            down = await c.get("/readyz")
        assert down.status_code == 503
        assert down.json()["failing"] == ["database"]
        assert str(port) not in down.text and "127.0.0.1" not in down.text  # no error text

    async def test_metrics_and_openapi(self, settings: Settings) -> None:
        async with running_app(create_app(settings)) as client:
            await client.get("/healthz")
            metrics = await client.get("/metrics")
            openapi = await client.get("/openapi.json")
        assert 'connector_http_requests_total{method="GET",route="/healthz"' in metrics.text
        assert openapi.json()["info"]["title"] == "onOffice Newsletter Connector"


class TestSettings:
    def test_production_requires_secrets_with_clear_message(self) -> None:
        with pytest.raises(ValidationError) as err:
            Settings(ENV=Environment.production, ENCRYPTION_KEY=None, ONOFFICE_PROVIDER_SECRET=None)
        text = str(err.value)
        assert "ENCRYPTION_KEY" in text and "ONOFFICE_PROVIDER_SECRET" in text
        assert "Set ENCRYPTION_KEY and ONOFFICE_PROVIDER_SECRET" in text

    def test_production_names_only_the_missing_secret(self) -> None:
        with pytest.raises(ValidationError) as err:
            Settings(ENV=Environment.production, ENCRYPTION_KEY="k", ONOFFICE_PROVIDER_SECRET=None)  # type: ignore[arg-type]
        assert "ONOFFICE_PROVIDER_SECRET" in str(err.value)
        assert "ENCRYPTION_KEY," not in str(err.value)

    def test_development_starts_without_secrets(self) -> None:
        assert Settings(ENV=Environment.development, ENCRYPTION_KEY=None).is_development()

    def test_invalid_values_are_rejected_by_name(self) -> None:
        with pytest.raises(ValidationError, match="SIGNATURE_MAX_AGE_S"):
            Settings(SIGNATURE_MAX_AGE_S=0)

    def test_reads_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ONOFFICE_POLL_INTERVAL_S", "17")
        monkeypatch.setenv("MAILCHIMP_API_URL", "http://127.0.0.1:9/{dc}/3.0")
        s = Settings()
        assert s.ONOFFICE_POLL_INTERVAL_S == 17
        assert s.mailchimp_base_url("us5") == "http://127.0.0.1:9/us5/3.0"
