"""Builds provider and onOffice clients for a connection, on the process's shared resources."""

from __future__ import annotations

from typing import Any

from app.db.models import Connection, ProviderKind, Tenant
from app.errors import AppError
from app.resources import Resources
from onoffice_client.client import OnOfficeClient
from providers.base import NewsletterProvider
from providers.brevo.client import BrevoClient
from providers.limits import ConcurrencyLimiter, LocalConcurrencyLimiter, RedisConcurrencyLimiter
from providers.mailchimp.client import MailchimpClient

MAILCHIMP_MAX_CONNECTIONS = 10


def _limiter(resources: Resources) -> ConcurrencyLimiter:
    """Mailchimp allows 10 concurrent connections per account: one limiter per process,
    backed by Redis so the limit holds across all workers."""
    limiter: Any = resources.extra.get("limiter")
    if limiter is None:
        if resources.redis is not None:
            limiter = RedisConcurrencyLimiter(resources.redis, MAILCHIMP_MAX_CONNECTIONS)
        else:
            limiter = LocalConcurrencyLimiter(MAILCHIMP_MAX_CONNECTIONS)
        resources.extra["limiter"] = limiter
    return limiter  # type: ignore[no-any-return]


def build_provider(resources: Resources, provider: str, api_key: str) -> NewsletterProvider:
    settings = resources.settings
    if provider == ProviderKind.mailchimp:
        return MailchimpClient(
            api_key=api_key,
            base_url_template=settings.MAILCHIMP_API_URL,
            http=resources.http,
            limiter=_limiter(resources),
            max_retries=settings.PROVIDER_MAX_RETRIES,
        )
    if provider == ProviderKind.brevo:
        return BrevoClient(
            api_key=api_key,
            base_url=settings.BREVO_API_URL,
            http=resources.http,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            process_poll_interval=settings.BREVO_PROCESS_POLL_S,
        )
    raise AppError("err.unknown_provider", status_code=422, params={"provider": repr(provider)})


def provider_for_connection(resources: Resources, connection: Connection) -> NewsletterProvider:
    api_key = resources.secret_box.decrypt(connection.api_key_encrypted)
    return build_provider(resources, connection.provider, api_key)


class TenantNotActivated(AppError):
    status_code = 409
    code = "tenant_not_activated"


def onoffice_for_tenant(resources: Resources, tenant: Tenant) -> OnOfficeClient:
    if tenant.api_token_encrypted is None or tenant.api_secret_encrypted is None:
        raise TenantNotActivated(
            "this onOffice customer has not activated the connector in the marketplace yet"
        )
    return OnOfficeClient(
        api_url=resources.settings.ONOFFICE_API_URL,
        token=resources.secret_box.decrypt(tenant.api_token_encrypted),
        secret=resources.secret_box.decrypt(tenant.api_secret_encrypted),
        claim=tenant.api_claim,
        http=resources.http,
        page_size=resources.settings.ONOFFICE_PAGE_SIZE,
    )
