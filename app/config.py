"""Service configuration: one typed settings class, read from the environment."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    testing = "testing"
    production = "production"


class Settings(BaseSettings):
    """Every variable of the service contract's configuration table, plus operational knobs."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    ENV: Environment = Environment.development
    DATABASE_URL: str = "sqlite+aiosqlite:///./connector.db"
    REDIS_URL: str | None = None
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    ONOFFICE_API_URL: str = "https://api.onoffice.de/api/stable/api.php"
    ONOFFICE_PROVIDER_SECRET: SecretStr | None = None
    MAILCHIMP_API_URL: str = "https://{dc}.api.mailchimp.com/3.0"
    BREVO_API_URL: str = "https://api.brevo.com/v3"
    ENCRYPTION_KEY: SecretStr | None = None
    SIGNATURE_MAX_AGE_S: int = Field(default=300, ge=1)
    ONOFFICE_POLL_INTERVAL_S: int = Field(default=60, ge=1)

    # Operational knobs (not part of the external contract, all optional).
    ONOFFICE_WEBHOOK_ID_PARAM: str = "recordId"
    LOG_LEVEL: str = "INFO"
    SESSION_TTL_S: int = Field(default=8 * 3600, ge=60)
    SYNC_BATCH_SIZE: int = Field(default=500, ge=1, le=500)
    BREVO_IMPORT_BATCH_SIZE: int = Field(default=10_000, ge=1, le=25_000)
    # Brevo import processing: the first status poll waits at least this long (plus an
    # estimate per contact); polls stay within 60 per key and hour across all workers.
    BREVO_PROCESS_POLL_S: float = Field(default=5.0, gt=0)
    # Whether imports carry a notifyUrl to PUBLIC_BASE_URL (app/syncs/notices.py): `auto` = when
    # it is an https URL of a publicly reachable host.
    IMPORT_NOTIFY: Literal["auto", "on", "off"] = "auto"
    ONOFFICE_PAGE_SIZE: int = Field(default=500, ge=1, le=500)
    # Full sync: onOffice pages read at a time once the first page told the total (onOffice
    # documents no rate limit), and provider list-state pages read at a time (within the key's
    # shared limits: Mailchimp 10 connections, Brevo 10 requests/s). The list state is read
    # before the run's first batch, so all 10 connections may serve it; another job's request
    # on the same key waits for a slot (at most one page, about 3 s) rather than failing.
    ONOFFICE_READ_CONCURRENCY: int = Field(default=4, ge=1, le=16)
    PROVIDER_READ_CONCURRENCY: int = Field(default=10, ge=1, le=10)
    # Full sync to Mailchimp: how old the run's answer to "who opted out since the run
    # started" may be before a batch asks the provider again (0 = before every batch).
    # 0: ask before every batch (consent first); a larger value saves reads, see README.
    OPT_OUT_RECHECK_S: float = Field(default=0.0, ge=0)
    HTTP_TIMEOUT_S: float = Field(default=30.0, gt=0)
    DATABASE_POOL_PRE_PING: bool = False
    PROVIDER_MAX_RETRIES: int = Field(default=5, ge=0)
    WORKER_MAX_TRIES: int = Field(default=10, ge=1)
    WORKER_CONCURRENCY: int = Field(default=10, ge=1)
    WORKER_JOB_TIMEOUT_S: int = Field(default=120, ge=5)
    # A running job's lease (renewed four times per lease while it runs): a killed worker's jobs
    # are taken by another worker this long after its last renewal (app/worker/resilient.py).
    WORKER_JOB_LEASE_S: float = Field(default=6.0, ge=1, le=120)
    # How often an arq worker looks for new jobs. arq starts jobs only when it polls, so this is
    # both the delay from enqueue to start and how long a freed slot may stay idle while jobs
    # wait (arq's 0.5 s default capped a worker at WORKER_CONCURRENCY short jobs per 0.5 s).
    WORKER_POLL_DELAY_S: float = Field(default=0.05, gt=0, le=5)
    # CPU priority (nice, 0-19) of a worker process that serves only the bulk queue, so full
    # syncs use the cores interactive work leaves free (`connector worker --queues bulk`).
    WORKER_BULK_NICE: int = Field(default=10, ge=0, le=19)
    # The arq queues `connector worker` serves (comma-separated): `interactive` (webhook
    # drains, incremental pushes and polls, the periodic sweeps) and `bulk` (full-sync jobs).
    # Both in one process by default; a deployment may run separate workers per queue.
    WORKER_QUEUES: str = Field(
        default="interactive,bulk",
        pattern=r"^\s*(interactive|bulk)(\s*,\s*(interactive|bulk))*\s*$",
    )
    # Interactive work first (app/worker/priority.py): a full-sync step waits while more than
    # BULK_GIVE_WAY_DEPTH interactive jobs are due, at most BULK_GIVE_WAY_S (0: never waits).
    BULK_GIVE_WAY_DEPTH: int = Field(default=10, ge=0)
    BULK_GIVE_WAY_S: float = Field(default=2.0, ge=0, le=60)
    INBOUND_EVENT_MAX_ATTEMPTS: int = Field(default=20, ge=1)
    # Mailchimp "Archive All": this many archive/delete events of one list within
    # ARCHIVE_BURST_WINDOW_S are held for a user to apply or dismiss; a single archive/delete
    # waits that long before it is applied (so a burst is recognised as one).
    ARCHIVE_BURST_THRESHOLD: int = Field(default=20, ge=2)
    ARCHIVE_BURST_WINDOW_S: float = Field(default=60.0, ge=0)
    # How often each connection's provider side is checked: the reconciliation reads what
    # changed at the provider since its watermark (opt-outs, sign-ups and removals no webhook
    # told), and the webhook's health is checked (it still exists with this service's URL, the
    # required events and, at Mailchimp, `api` off; drift is repaired). At least 60 s outside
    # ENV=testing (the tests use a short interval).
    PROVIDER_RECONCILE_INTERVAL_S: int = Field(default=900, ge=1)

    # Security knobs.
    # Where a generated ENCRYPTION_KEY is kept when none is configured (development/testing):
    # unset = beside the embedded SQLite database, or the working directory for other databases.
    DATA_DIR: Path | None = None
    # Bearer token for GET /metrics; unset = /metrics is public (keep it on an internal network).
    METRICS_TOKEN: SecretStr | None = None
    # Bearer token of the operator API (`POST /admin/v1/forget`); unset = that API answers 404.
    ADMIN_TOKEN: SecretStr | None = None
    # Origins allowed to frame the iframe pages (CSP frame-ancestors), space-separated.
    # Live customers use smart.onoffice.de, beta customers beta.smart.onoffice.de (not any
    # onOffice subdomain).
    ONOFFICE_FRAME_ANCESTORS: str = "https://smart.onoffice.de https://beta.smart.onoffice.de"
    # The onOffice origin the activation page posts its answer to (window.parent.postMessage).
    ONOFFICE_ORIGIN: str = "https://smart.onoffice.de"
    # Provider webhooks: largest accepted body (413 above), events per delivery (413 above;
    # Brevo batches at most 500) and JSON nesting depth (400 above).
    WEBHOOK_MAX_BODY_BYTES: int = Field(default=2 * 1024 * 1024, ge=1024)
    WEBHOOK_MAX_EVENTS: int = Field(default=1000, ge=1)
    WEBHOOK_MAX_JSON_DEPTH: int = Field(default=32, ge=2, le=500)
    # Every other request body is capped before it is parsed (413 above): the unauthenticated
    # session exchange (a signed iframe query, a few hundred bytes), the rest of the API, and
    # everything else (the landing and activation pages).
    SESSION_MAX_BODY_BYTES: int = Field(default=16 * 1024, ge=1024)
    API_MAX_BODY_BYTES: int = Field(default=256 * 1024, ge=1024)
    OTHER_MAX_BODY_BYTES: int = Field(default=64 * 1024, ge=1024)

    # Fairness per tenant (per API process): a tenant's /api/v1 calls and a connection's
    # webhook deliveries are token buckets (rate per second, burst); above them 429 with
    # Retry-After. 0 = no limit. The webhook limit is far above any provider's real traffic
    # (an "Archive All" of 20,000 members arrives within its burst).
    API_RATE_PER_TENANT: float = Field(default=20, ge=0)
    API_BURST_PER_TENANT: float = Field(default=100, ge=1)
    WEBHOOK_RATE_PER_CONNECTION: float = Field(default=2000, ge=0)
    WEBHOOK_BURST_PER_CONNECTION: float = Field(default=20000, ge=1)
    # And whatever the rate: at most this many requests of one tenant (`/api/v1`) or one
    # webhook address at a time per API process; more wait up to FAIR_SHARE_WAIT_S for a slot,
    # then 429 (a webhook: its provider's "deliver again" status). 0 = no limit.
    API_CONCURRENCY_PER_TENANT: int = Field(default=2, ge=0)
    WEBHOOK_CONCURRENCY_PER_CONNECTION: int = Field(default=8, ge=0)
    FAIR_SHARE_WAIT_S: float = Field(default=10, gt=0)

    # Data protection (docs/data-protection.md): applied and ignored provider and onOffice
    # events are deleted this many days after they arrived; the per-address details of a
    # finished run (problems, batches, tag rows) this many days after it ended (the latest
    # finished run of each connection keeps them); a deactivated customer's data is deleted
    # this many days after the deactivation.
    RETENTION_EVENT_DAYS: float = Field(default=30, gt=0)
    RETENTION_RUN_DETAIL_DAYS: float = Field(default=90, gt=0)
    TENANT_PURGE_GRACE_DAYS: float = Field(default=30, ge=0)
    # The consent history per person (app/history/): entries are deleted this many days after
    # they were recorded (proof of consent, GDPR Art. 7(1): keep it as long as the consent is
    # relied on; the default is three years).
    RETENTION_HISTORY_DAYS: float = Field(default=1095, gt=0)

    # A connection whose access onOffice refuses (provider locked, subscription cancelled, API
    # user gone; app/connections/access.py) is checked again this often (one cheap call).
    ONOFFICE_ACCESS_RECHECK_S: int = Field(default=300, ge=1)

    # A worker serves its Prometheus counters on this port (0 = off; one port per worker).
    WORKER_METRICS_PORT: int = Field(default=0, ge=0, le=65535)

    @model_validator(mode="after")
    def _reconcile_interval(self) -> Settings:
        if Environment.testing != self.ENV and self.PROVIDER_RECONCILE_INTERVAL_S < 60:
            raise ValueError("PROVIDER_RECONCILE_INTERVAL_S must be at least 60 (seconds)")
        return self

    @model_validator(mode="after")
    def _require_secrets_outside_development(self) -> Settings:
        if Environment.production == self.ENV:
            missing = [
                name
                for name in ("ENCRYPTION_KEY", "ONOFFICE_PROVIDER_SECRET")
                if not _secret_value(getattr(self, name))
            ]
            if missing:
                raise ValueError(
                    "missing required configuration outside development: "
                    + ", ".join(missing)
                    + ". Set "
                    + " and ".join(missing)
                    + " in the environment (ENCRYPTION_KEY: a Fernet key, generate one with "
                    "`connector genkey`; ONOFFICE_PROVIDER_SECRET: the provider secret onOffice "
                    "gave you for the marketplace)."
                )
        return self

    def is_development(self) -> bool:
        return Environment.development == self.ENV

    def mailchimp_base_url(self, dc: str) -> str:
        return self.MAILCHIMP_API_URL.replace("{dc}", dc)

    def data_dir(self) -> Path:
        """Where generated state (the development key file) lives."""
        if self.DATA_DIR is not None:
            return self.DATA_DIR
        prefix = "sqlite+aiosqlite:///"
        if self.DATABASE_URL.startswith(prefix):
            path = self.DATABASE_URL[len(prefix) :].split("?", 1)[0]
            if path and path != ":memory:":
                return Path(path).resolve().parent
        return Path.cwd()


def provider_api_urls(settings: Settings) -> dict[str, str]:
    """Each provider's configured API base URL (Mailchimp's with its `{dc}` placeholder), by
    provider name (the request metrics tell the services apart by these hosts)."""
    return {"mailchimp": settings.MAILCHIMP_API_URL, "brevo": settings.BREVO_API_URL}


def _secret_value(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


@lru_cache
def get_settings() -> Settings:
    return Settings()
