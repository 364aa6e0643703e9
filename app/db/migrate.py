"""Schema migrations (Alembic): `migrate()` for the CLI, the demo, the tests and the benches."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.config import get_settings

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str | None = None) -> Config:
    import migrations

    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.exists() else Config()
    # The migrations package is installed with the app, so this works from a wheel too.
    cfg.set_main_option("script_location", str(next(iter(migrations.__path__))))
    if database_url:
        cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def migrate(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url or get_settings().DATABASE_URL), revision)
