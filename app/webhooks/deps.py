"""What applying one connection's events needs, so the appliers (`apply.py`, `batch.py`) take
these and not the process's whole `Resources`: the database, the settings, the connection's onOffice
client, the provider client (built on first use: most batches never need it) and the
per-process action kinds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.config import Settings
from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.db.models import Connection, Tenant
from app.db.session import Database
from app.parts import KindsCache
from app.resources import Resources
from app.webhooks.activities import kinds_cache
from onoffice_client.client import OnOfficeClient
from providers.base import NewsletterProvider


@dataclass
class ApplyDeps:
    db: Database
    settings: Settings
    onoffice: OnOfficeClient
    provider: Callable[[Connection], NewsletterProvider]
    kinds: KindsCache

    @classmethod
    def of(cls, resources: Resources, tenant: Tenant, connection: Connection) -> ApplyDeps:
        """The process's parts for one connection (its onOffice client: its group's claim and
        address scope)."""
        return cls(
            db=resources,
            settings=resources.settings,
            onoffice=onoffice_for_connection(resources, tenant, connection),
            provider=lambda connection: provider_for_connection(resources, connection),
            kinds=kinds_cache(resources),
        )
