"""Security headers and the postMessage origin of the iframe pages, /metrics protection,
`connector rotate-keys`, timezone-aware datetimes on SQLite, dependency floors (issue 9)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import main as cli_main
from app.config import Environment, Settings, get_settings
from app.crypto import SecretBox, generate_key
from app.db.migrate import migrate
from app.keys import ENCRYPTION_KEY_COLUMNS
from tests.security.conftest import BREVO_KEYS, World, bearer, open_world, tenant

ROOT = Path(__file__).resolve().parents[2]


class TestPageHeaders:
    async def test_activation_and_app_pages_send_csp_nosniff_and_post_to_onoffice(
        self, world: World
    ) -> None:
        t = tenant(1)
        activation = await world.client.get(f"/onoffice/activate?{world.activation_query(t)}")
        await world.activate(t)
        app_page = await world.client.get(f"/onoffice/app?{world.iframe_query(t)}")
        for page in (activation, app_page):
            assert page.status_code == 200
            assert page.headers["x-content-type-options"] == "nosniff"
            csp = page.headers["content-security-policy"]
            assert "frame-ancestors https://smart.onoffice.de https://beta.smart.onoffice.de" in csp
            assert "*.onoffice.de" not in csp
            (nonce,) = re.findall(r"'nonce-([^']+)'", csp)
            scripts = re.findall(r"<script([^>]*)>", page.text)
            assert scripts == [f' nonce="{nonce}"'], scripts
        assert 'postMessage(answer, "https://smart.onoffice.de")' in activation.text
        assert '"*"' not in activation.text

    async def test_frame_ancestors_and_origin_are_configurable(self, settings: Settings) -> None:
        async with open_world(
            settings,
            ONOFFICE_FRAME_ANCESTORS="https://beta.onoffice.de",
            ONOFFICE_ORIGIN="https://beta.onoffice.de",
        ) as world:
            page = await world.client.get(f"/onoffice/activate?{world.activation_query(tenant(1))}")
            assert (
                "frame-ancestors https://beta.onoffice.de"
                in page.headers["content-security-policy"]
            )
            assert 'postMessage(answer, "https://beta.onoffice.de")' in page.text


class TestMetrics:
    async def test_metrics_need_the_bearer_token_when_one_is_set(self, settings: Settings) -> None:
        async with open_world(settings, METRICS_TOKEN=SecretStr("metrics-secret-1")) as world:
            assert (await world.client.get("/metrics")).status_code == 401
            wrong = await world.client.get("/metrics", headers=bearer("nope"))
            assert wrong.status_code == 401
            ok = await world.client.get("/metrics", headers=bearer("metrics-secret-1"))
            assert ok.status_code == 200 and "connector_http_requests_total" in ok.text

    async def test_metrics_stay_open_without_a_token(self, world: World) -> None:
        assert (await world.client.get("/metrics")).status_code == 200


class TestRotateKeys:
    async def test_rotate_keys_re_encrypts_every_secret_so_the_old_key_can_go(
        self,
        settings: Settings,
        engine: AsyncEngine,
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        old, new = generate_key(), generate_key()
        async with open_world(settings, ENCRYPTION_KEY=SecretStr(old)) as world:
            await world.tenant_with_brevo(1, BREVO_KEYS[0])
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("ENCRYPTION_KEY", f"{new},{old}")
        monkeypatch.setenv("ENV", "testing")
        get_settings.cache_clear()
        try:
            assert await _to_thread(cli_main, ["rotate-keys"]) == 0
        finally:
            get_settings.cache_clear()
        assert "re-encrypted 4 secrets" in capsys.readouterr().out
        only_new = SecretBox.from_settings(
            settings.model_copy(update={"ENCRYPTION_KEY": SecretStr(new)})
        )
        async with engine.connect() as conn:
            for table, columns in (
                ("tenant", ("api_token_encrypted", "api_secret_encrypted")),
                ("connection", ("api_key_encrypted", "webhook_credentials_encrypted")),
            ):
                for column in columns:
                    (value,) = (await conn.execute(text(f"SELECT {column} FROM {table}"))).one()
                    assert only_new.decrypt(bytes(value))
        async with open_world(settings, ENCRYPTION_KEY=SecretStr(new)) as world:
            token = await world.session(tenant(1))
            response = await world.client.get("/api/v1/connection", headers=bearer(token))
            assert response.status_code == 200 and response.json()["api_key"].endswith("ey-a")

    def test_every_encrypted_column_is_rotated(self) -> None:
        from app.db.base import Base

        encrypted = {
            (table.name, column.name)
            for table in Base.metadata.sorted_tables
            for column in table.columns
            if column.name.endswith("_encrypted")
        }
        listed = {
            (model.__tablename__, column)
            for model, columns in ENCRYPTION_KEY_COLUMNS.items()
            for column in columns
        }
        assert encrypted == listed


async def _to_thread(fn: object, *args: object) -> object:
    import asyncio

    return await asyncio.to_thread(fn, *args)  # type: ignore[arg-type]


class TestSqliteDatetimes:
    async def test_connection_and_status_datetimes_are_timezone_aware_on_sqlite(
        self, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'embedded.db'}"
        await _to_thread(migrate, url)
        settings = Settings(
            ENV=Environment.testing,
            DATABASE_URL=url,
            ONOFFICE_PROVIDER_SECRET="test-provider-secret",  # type: ignore[arg-type]
            PUBLIC_BASE_URL="https://connector.test",
        )
        async with open_world(settings) as world:
            token, _, _ = await world.tenant_with_brevo(1, BREVO_KEYS[0])
            conn = (await world.client.get("/api/v1/connection", headers=bearer(token))).json()
            status = (await world.client.get("/api/v1/status", headers=bearer(token))).json()
        for value in (conn["created_at"], conn["updated_at"], status["connection"]["created_at"]):
            assert value.endswith(("+00:00", "Z")), value


class TestDependencies:
    FLOORS = {"python-multipart": "0.0.18", "jinja2": "3.1.6", "h11": "0.16", "uvicorn": "0.30"}

    def test_floors_are_past_the_known_cves_and_the_lock_file_pins_them(self) -> None:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())
        requirements = {
            Requirement(r).name.lower(): Requirement(r) for r in project["project"]["dependencies"]
        }
        for name, floor in self.FLOORS.items():
            specifiers = list(requirements[name].specifier)
            assert any(
                s.operator == ">=" and Version(s.version) >= Version(floor) for s in specifiers
            ), name
        lock = (ROOT / "requirements.lock").read_text()
        for name, floor in self.FLOORS.items():
            match = re.search(rf"^{re.escape(name)}==([^\s;\\]+)", lock, flags=re.M | re.I)
            assert match and Version(match.group(1)) >= Version(floor), name
        assert "--hash=sha256:" in lock
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert "requirements.lock" in dockerfile and "--require-hashes" in dockerfile
        # The build backend is pinned with a hash and used without build isolation.
        build_lock = (ROOT / "build-requirements.lock").read_text()
        assert re.search(r"^setuptools==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}", build_lock, re.M)
        assert "--no-build-isolation" in dockerfile and "build-requirements.lock" in dockerfile
        assert "COPY emulators" not in dockerfile and "COPY devkit" not in dockerfile
