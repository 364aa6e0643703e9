"""Prometheus metrics (exposed at /metrics; a worker serves its own on WORKER_METRICS_PORT).

Label sets are bounded: provider names, normalised endpoint templates (ids, emails and names
replaced), outcomes and statuses from fixed lists, and the poll lag of at most
POLL_LAG_TOP connections (the most lagging ones, `app/health/gauges.py`).

Counters count what this process did; the gauges are refreshed at scrape time from the database
and the queue (`app/health/gauges.py`), so they are the same on every API process.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import Counter, Gauge, Histogram

from app.config import Settings, provider_api_urls

HTTP_REQUESTS = Counter(
    "connector_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram("connector_http_request_seconds", "HTTP request latency", ["route"])
JOBS = Counter(
    "connector_jobs_total",
    "Background job runs by outcome: ok, retry, failed, cancelled (each try counts)",
    ["job", "outcome"],
)
SYNC_RUNS = Counter("connector_sync_runs_total", "Full synchronisations finished", ["outcome"])
CONTACTS_SYNCED = Counter(
    "connector_contacts_total", "Contacts processed by full syncs", ["provider", "outcome"]
)
WEBHOOK_EVENTS = Counter(
    "connector_webhook_events_total",
    "Inbound events: stored (received), duplicate, applied, ignored, failed",
    ["source", "result"],
)
WEBHOOK_LAG = Histogram(
    "connector_webhook_event_lag_seconds",
    "Time from receiving an inbound event to its final state",
    ["source"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600),
)
UPSTREAM_REQUESTS = Counter(
    "connector_upstream_requests_total",
    "Requests to onOffice and the providers",
    ["service", "endpoint", "status"],
)
UPSTREAM_LATENCY = Histogram(
    "connector_upstream_request_seconds",
    "Latency of requests to onOffice and the providers",
    ["service", "endpoint"],
)
UPSTREAM_THROTTLED = Counter(
    "connector_upstream_throttled_total",
    "429 answers of onOffice and the providers",
    ["service", "endpoint"],
)
QUEUE_DEPTH = Gauge("connector_queue_depth", "Jobs waiting in the queue", ["queue"])
PENDING_WORK = Gauge(
    "connector_pending_work",
    "Work not done yet: pending sync batches, pending and failed inbound events",
    ["kind"],
)
SYNC_RUNS_ACTIVE = Gauge("connector_sync_runs_active", "Queued or running full syncs")
POLL_LAG = Gauge(
    "connector_poll_lag_seconds",
    "Age of the incremental-sync watermark, for the most lagging connections",
    ["connection"],
)
POLL_LAG_MAX = Gauge(
    "connector_poll_lag_max_seconds", "The largest watermark age of all connections"
)


_ID_SEGMENT = re.compile(r"^(?=.*\d)[\w.-]+$|^[0-9a-f]{16,}$|@|^[A-Z][A-Z0-9_]+$")


def endpoint_template(path: str) -> str:
    """`/3.0/lists/abc123/members/9f0e…` → `/lists/{id}/members/{id}` (bounded labels)."""
    parts = []
    for segment in path.strip("/").split("/"):
        if not segment or segment in ("3.0", "v3", "api", "stable", "api.php"):
            continue
        parts.append("{id}" if _ID_SEGMENT.search(segment) else segment[:40])
    return "/" + "/".join(parts[:5])


def upstream_hooks(settings: Settings) -> dict[str, list[Any]]:
    """httpx event hooks that count and time every outbound request by service and endpoint."""
    targets: list[tuple[str, int | None, str]] = []
    urls = {"onoffice": settings.ONOFFICE_API_URL, **provider_api_urls(settings)}
    for service, url in urls.items():
        parts = urlsplit(url.replace("{dc}", "dc"))
        targets.append(((parts.hostname or "").removeprefix("dc."), parts.port, service))

    def service_of(request: httpx.Request) -> str:
        host, port = request.url.host, request.url.port
        for target, target_port, service in targets:  # host and port (emulators share a host)
            if host == target and port == target_port:
                return service
        for target, _port, service in targets:  # e.g. us21.api.mailchimp.com
            if host == target or host.endswith("." + target):
                return service
        return "other"

    async def on_request(request: httpx.Request) -> None:
        request.extensions["connector_started"] = time.perf_counter()

    async def on_response(response: httpx.Response) -> None:
        request = response.request
        service = service_of(request)
        endpoint = endpoint_template(request.url.path)
        UPSTREAM_REQUESTS.labels(service, endpoint, str(response.status_code)).inc()
        started = request.extensions.get("connector_started")
        if isinstance(started, float):
            UPSTREAM_LATENCY.labels(service, endpoint).observe(time.perf_counter() - started)
        if response.status_code == 429:
            UPSTREAM_THROTTLED.labels(service, endpoint).inc()

    return {"request": [on_request], "response": [on_response]}
