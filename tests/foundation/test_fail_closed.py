"""Issue 21 (L2): `serve` and `worker` fail closed without ENCRYPTION_KEY unless ENV is set to
development or testing explicitly; nothing is migrated or generated before the refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main, require_encryption_key
from app.config import get_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in ("ENV", "ENCRYPTION_KEY", "REDIS_URL", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file of the checkout
    database = tmp_path / "never.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    get_settings.cache_clear()
    yield database
    get_settings.cache_clear()


@pytest.mark.parametrize("command", [["serve"], ["worker"]])
def test_serve_and_worker_refuse_to_start_without_a_key(
    clean_env: Path, command: list[str]
) -> None:
    with pytest.raises(SystemExit, match="ENCRYPTION_KEY is not set"):
        main(command)
    assert not clean_env.exists()  # refused before migrating
    assert not list(clean_env.parent.glob("*.key"))  # and before generating a key file


def test_production_without_a_key_is_refused_even_when_explicit(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("ONOFFICE_PROVIDER_SECRET", "s")
    with pytest.raises(Exception, match="ENCRYPTION_KEY"):
        require_encryption_key()


@pytest.mark.parametrize("env", ["development", "testing"])
def test_an_explicit_development_or_testing_env_may_start_without_a_key(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv("ENV", env)
    require_encryption_key()  # no refusal


def test_a_key_lets_it_start(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.crypto import generate_key

    monkeypatch.setenv("ENCRYPTION_KEY", generate_key())
    require_encryption_key()
