"""Builds provider and onOffice clients for a connection, on the process's shared resources."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from types import MappingProxyType

from app.db.models import Connection
from app.errors import AppError
from app.resources import Resources
from app.syncs.notices import connection_notices
from providers.base import NewsletterProvider, ProviderName, WebhookDelivery
from providers.brevo.client import BrevoClient
from providers.mailchimp.client import MailchimpClient

# The one place in app/ that names the providers: each client class carries its label, status
# page and capabilities (batch size, tag support), so the rest of app/ asks the provider.
PROVIDER_CLASSES: dict[str, type[MailchimpClient] | type[BrevoClient]] = {
    ProviderName.mailchimp: MailchimpClient,
    ProviderName.brevo: BrevoClient,
}
PROVIDER_NAMES = tuple(PROVIDER_CLASSES)
WEBHOOK_DELIVERIES: Mapping[str, WebhookDelivery] = MappingProxyType(
    {name: cls.webhook_delivery for name, cls in PROVIDER_CLASSES.items()}
)
# Webhook sources whose removals may come as a burst from one user action (held, see
# app/webhooks/apply.py).
BURST_SOURCES = tuple(name for name, cls in PROVIDER_CLASSES.items() if cls.bulk_removal_webhooks)
# Clients are cached per connection (and key), so their caches (account language, Brevo field
# mapping) outlive one job; a changed key makes a new client, and after CLIENT_TTL_S a client is
# built afresh so what it learnt about the account is read again.
CLIENT_CACHE_SIZE = 512
CLIENT_TTL_S = 900.0


def provider_label(provider: str) -> str:
    """ "Mailchimp" for "mailchimp"; the name itself for an unknown provider."""
    found = PROVIDER_CLASSES.get(provider)
    return found.label if found is not None else provider


def supports_tags(provider: str) -> bool:
    """Whether the provider's contacts carry tags (and tags flow back to onOffice)."""
    found = PROVIDER_CLASSES.get(provider)
    return bool(found is not None and found.supports_tags)


def webhooks_per_list(provider: str) -> bool:
    """Whether the provider's webhooks belong to one list (an event names the list it was made
    at) rather than to the account."""
    found = PROVIDER_CLASSES.get(provider)
    return bool(found is not None and found.webhooks_per_list)


def webhook_deliveries() -> Mapping[str, WebhookDelivery]:
    """How each provider delivers its webhooks, by provider name (the webhook routes; read
    for every delivery, so built once)."""
    return WEBHOOK_DELIVERIES


def provider_status_page(provider: str) -> str:
    found = PROVIDER_CLASSES.get(provider)
    return found.status_page if found is not None else ""


def build_provider(
    resources: Resources, provider: str, api_key: str, *, connection_id: int | None = None
) -> NewsletterProvider:
    settings = resources.settings
    if provider == ProviderName.mailchimp:
        return MailchimpClient(
            api_key=api_key,
            base_url_template=settings.MAILCHIMP_API_URL,
            http=resources.http,
            limiter=resources.parts.limiter,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            segment_cache=resources.parts.segment_cache,
            max_batch_size=settings.SYNC_BATCH_SIZE,
        )
    if provider == ProviderName.brevo:
        return BrevoClient(
            api_key=api_key,
            base_url=settings.BREVO_API_URL,
            http=resources.http,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            process_poll_interval=settings.BREVO_PROCESS_POLL_S,
            pacer=resources.parts.brevo_pacer,
            process_budget=resources.parts.process_budget,
            max_batch_size=settings.BREVO_IMPORT_BATCH_SIZE,
            import_notices=(
                connection_notices(settings, resources.parts.notices, connection_id)
                if connection_id is not None
                else None
            ),
        )
    raise AppError("err.unknown_provider", status_code=422, params={"provider": repr(provider)})


def provider_for_connection(resources: Resources, connection: Connection) -> NewsletterProvider:
    """The connection's client, reused while its provider and key stay the same. Clients share
    the process's HTTP client, limiter and pacer, so a cached one holds no socket of its own."""
    cache = resources.parts.provider_clients
    fingerprint = hashlib.sha256(connection.api_key_encrypted).digest()
    key = (connection.id, connection.provider, fingerprint)
    now = time.monotonic()
    found = cache.get(key)
    if found is not None and now - found[0] < CLIENT_TTL_S:
        cache.move_to_end(key)
        return found[1]
    api_key = resources.secret_box.decrypt(connection.api_key_encrypted)
    client = build_provider(resources, connection.provider, api_key, connection_id=connection.id)
    cache[key] = (now, client)
    cache.move_to_end(key)
    while len(cache) > CLIENT_CACHE_SIZE:
        cache.popitem(last=False)
    return client
