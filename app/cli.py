"""Console script `connector`: run, serve, worker, migrate, demo, sync, status, genkey and
rotate-keys."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from app.config import get_settings
from app.db.migrate import migrate


def require_encryption_key() -> None:
    """`serve` and `worker` fail closed: without ENCRYPTION_KEY they start only when ENV is
    set to development or testing explicitly (a generated key file is a local convenience,
    never a production default: API and workers on different hosts would each make their
    own)."""
    from app.config import Environment

    settings = get_settings()
    explicit = "ENV" in settings.model_fields_set and Environment.production != settings.ENV
    if settings.ENCRYPTION_KEY is None and not explicit:
        raise SystemExit(
            "refusing to start: ENCRYPTION_KEY is not set. Generate one with `connector genkey` "
            "and set it for the API and every worker (or set ENV=development for a local run)."
        )


def serve(host: str, port: int, reload: bool) -> None:
    import uvicorn

    require_encryption_key()

    uvicorn.run(
        "app.main:create_app", factory=True, host=host, port=port, reload=reload, log_config=None
    )


def worker(queues: str | None = None, check: bool = False) -> None:
    from app.config import get_settings
    from app.worker.settings import check_workers, parse_queues, run_workers

    try:
        names = parse_queues(queues or get_settings().WORKER_QUEUES)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if check:
        raise SystemExit(check_workers(names))
    require_encryption_key()
    run_workers(names)


def _lang(code: str) -> str:
    return "en" if code.upper().startswith("EN") else "de"


def _demo(port: int, addresses: int, database: str, language: str, *, sync: bool = True) -> None:
    """The dev kit's demo (emulators): loaded only here, so the product never imports it."""
    import asyncio
    import importlib

    try:
        demo = importlib.import_module("devkit.demo")
    except ImportError:
        raise SystemExit(
            "the demo needs the source tree (devkit/, emulators/); run it from a clone"
        ) from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            demo.run_demo(
                port=port,
                addresses=addresses,
                database=Path(database).resolve(),
                language=language,
                sync=sync,
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connector", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser(
        "run",
        help="the embedded default: the real service when ONOFFICE_PROVIDER_SECRET is set, "
        "otherwise the demo on emulated services",
    )
    p_run.add_argument("--host", default="127.0.0.1")
    p_run.add_argument("--port", type=int, default=8000)
    p_run.add_argument("--addresses", type=int, default=10000, help="demo address book size")
    p_run.add_argument("--database", default="demo.db", help="demo SQLite file")
    p_run.add_argument("--language", choices=["DEU", "ENG"], default="DEU")
    p_serve = sub.add_parser("serve", help="run the HTTP API (migrates first)")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--reload", action="store_true")
    p_serve.add_argument("--no-migrate", action="store_true")
    p_worker = sub.add_parser("worker", help="run the arq worker (needs REDIS_URL)")
    p_worker.add_argument(
        "--queues",
        help="queues to serve, comma-separated: interactive (webhooks, incremental, sweeps), "
        "bulk (full syncs); default WORKER_QUEUES (both in this process)",
    )
    p_worker.add_argument(
        "--check",
        action="store_true",
        help="health check: exit 0 when a worker of each queue polled Redis within the last "
        "30 s, 1 otherwise (for a container health check)",
    )
    p_migrate = sub.add_parser("migrate", help="upgrade the database schema")
    p_migrate.add_argument("revision", nargs="?", default="head")
    sub.add_parser("genkey", help="print a new ENCRYPTION_KEY")
    sub.add_parser(
        "rotate-keys",
        help="re-encrypt every stored secret with the first ENCRYPTION_KEY (then older keys "
        "can be removed)",
    )
    p_demo = sub.add_parser(
        "demo", help="run everything locally with emulated onOffice, Mailchimp and Brevo"
    )
    p_demo.add_argument("--port", type=int, default=8000)
    p_demo.add_argument("--addresses", type=int, default=10000)
    p_demo.add_argument("--database", default="demo.db")
    p_demo.add_argument("--language", choices=["DEU", "ENG"], default="DEU")
    p_demo.add_argument(
        "--no-sync", action="store_true", help="activate only: no connection, no first sync"
    )
    p_sync = sub.add_parser("sync", help="start a full sync for one customer's connection")
    p_sync.add_argument("--customer", required=True, help="onOffice customerWebId")
    p_sync.add_argument("--group", default="", help="onOffice groupId of the connection")
    p_sync.add_argument("--force", action="store_true", help="resend every contact")
    p_sync.add_argument("--wait", action="store_true", help="show progress and the summary")
    p_sync.add_argument("--language", choices=["DEU", "ENG"], default="ENG")
    p_sync.add_argument("--json", action="store_true", help="print the result as JSON")
    p_status = sub.add_parser("status", help="print the status card of a customer's connection")
    p_status.add_argument("--customer", required=True, help="onOffice customerWebId")
    p_status.add_argument("--group", default="", help="onOffice groupId of the connection")
    p_status.add_argument("--language", choices=["DEU", "ENG"], default="ENG")
    p_deactivate = sub.add_parser(
        "deactivate",
        help="cut a customer off (cancelled): sessions, iframe, onOffice webhooks and polls "
        "are refused until the connector is activated again in the Marketplace",
    )
    p_deactivate.add_argument("--customer", required=True, help="onOffice customerWebId")
    p_deactivate.add_argument("--reason", default="deactivated by an operator")
    p_revoke = sub.add_parser(
        "revoke-sessions",
        help="refuse every session of a customer issued until now (users sign in again)",
    )
    p_revoke.add_argument("--customer", required=True, help="onOffice customerWebId")
    p_forget = sub.add_parser(
        "forget",
        help="erase one person (an email) from every table of the connector for a customer",
    )
    p_forget.add_argument("--customer", required=True, help="onOffice customerWebId")
    p_forget.add_argument("--email", required=True)
    p_forget.add_argument(
        "--delete-at-provider",
        action="store_true",
        help="also delete the contact at the customer's lists (Mailchimp: permanent delete, "
        "the address can never be imported again; Brevo: delete) instead of unsubscribing",
    )
    p_purge = sub.add_parser(
        "purge-tenant",
        help="delete every row of a deactivated customer now (the hourly purge does it "
        "TENANT_PURGE_GRACE_DAYS after the deactivation)",
    )
    p_purge.add_argument("--customer", required=True, help="onOffice customerWebId")
    args = parser.parse_args(argv)

    if args.command == "run":
        if get_settings().ONOFFICE_PROVIDER_SECRET is not None:
            migrate()
            serve(args.host, args.port, False)
        else:
            _demo(args.port, args.addresses, args.database, args.language)
    elif args.command == "serve":
        require_encryption_key()  # before migrating anything
        if not args.no_migrate:
            migrate()
        serve(args.host, args.port, args.reload)
    elif args.command == "worker":
        worker(args.queues, args.check)
    elif args.command == "migrate":
        migrate(revision=args.revision)
    elif args.command == "demo":
        _demo(args.port, args.addresses, args.database, args.language, sync=not args.no_sync)
    elif args.command == "sync":
        import asyncio

        from app.console import run_sync

        return asyncio.run(
            run_sync(
                customer=args.customer,
                group=args.group,
                force=args.force,
                wait=args.wait or args.json,
                lang=_lang(args.language),
                as_json=args.json,
            )
        )
    elif args.command == "status":
        import asyncio

        from app.console import run_status

        return asyncio.run(
            run_status(customer=args.customer, group=args.group, lang=_lang(args.language))
        )
    elif args.command == "rotate-keys":
        import asyncio

        from app.keys import rotate_stored_secrets

        result = asyncio.run(rotate_stored_secrets(get_settings()))
        print(
            f"re-encrypted {result.secrets} secrets of {result.rows} rows with the first key; "
            "older keys can now be removed from ENCRYPTION_KEY"
        )
    elif args.command in ("deactivate", "revoke-sessions"):
        import asyncio

        from app.console import run_revocation

        reason = getattr(args, "reason", "")
        return asyncio.run(run_revocation(args.command, customer=args.customer, reason=reason))
    elif args.command in ("forget", "purge-tenant"):
        import asyncio

        from app.console import run_privacy

        return asyncio.run(
            run_privacy(
                args.command,
                customer=args.customer,
                email=getattr(args, "email", ""),
                delete_at_provider=getattr(args, "delete_at_provider", False),
            )
        )
    elif args.command == "genkey":
        from app.crypto import generate_key

        print(generate_key())
    return 0


if __name__ == "__main__":
    sys.exit(main())
