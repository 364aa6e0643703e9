"""Console script `connector`: serve, worker, migrate, genkey (demo and sync come with the sync)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.config import get_settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str | None = None) -> Config:
    import migrations

    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.exists() else Config()
    # The migrations package is installed with the app, so this works from a wheel too.
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if database_url:
        cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def migrate(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url or get_settings().DATABASE_URL), revision)


def serve(host: str, port: int, reload: bool) -> None:
    import uvicorn

    uvicorn.run(
        "app.main:create_app", factory=True, host=host, port=port, reload=reload, log_config=None
    )


def worker() -> None:
    from arq.worker import run_worker

    from app.worker.settings import WorkerSettings, worker_options

    run_worker(WorkerSettings, **worker_options())  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connector", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the HTTP API (migrates first)")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--reload", action="store_true")
    p_serve.add_argument("--no-migrate", action="store_true")
    sub.add_parser("worker", help="run the arq worker (needs REDIS_URL)")
    p_migrate = sub.add_parser("migrate", help="upgrade the database schema")
    p_migrate.add_argument("revision", nargs="?", default="head")
    sub.add_parser("genkey", help="print a new ENCRYPTION_KEY")
    args = parser.parse_args(argv)

    if args.command == "serve":
        if not args.no_migrate:
            migrate()
        serve(args.host, args.port, args.reload)
    elif args.command == "worker":
        worker()
    elif args.command == "migrate":
        migrate(revision=args.revision)
    elif args.command == "genkey":
        from app.crypto import generate_key

        print(generate_key())
    return 0


if __name__ == "__main__":
    sys.exit(main())
