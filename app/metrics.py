"""Prometheus metrics (exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "connector_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram("connector_http_request_seconds", "HTTP request latency", ["route"])
JOBS = Counter("connector_jobs_total", "Background jobs finished", ["job", "outcome"])
CONTACTS_SYNCED = Counter(
    "connector_contacts_total", "Contacts processed by full syncs", ["provider", "outcome"]
)
WEBHOOK_EVENTS = Counter(
    "connector_webhook_events_total", "Inbound events received", ["source", "result"]
)
