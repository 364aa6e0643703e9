"""Cutting access off: a customer who cancelled (deactivation) or a user who lost access
(every session of the customer revoked). Both take effect on the next request: bearer
sessions are checked against the tenant row on every call (app.tenants.auth), and the
scheduler stops polling a deactivated customer's connections. Activating the connector again
in the onOffice Marketplace (`unlockProvider`) re-activates the tenant."""

from __future__ import annotations

from dataclasses import dataclass

from app.db.base import utcnow
from app.db.session import Database
from app.tenants.repository import TenantRepository


@dataclass(frozen=True)
class Revoked:
    found: bool
    deactivated: bool = False


async def deactivate(db: Database, customer_web_id: str, reason: str) -> Revoked:
    """Deactivate a customer: sessions, the iframe, onOffice webhooks and background polls
    are refused from now on (the data stays until it is purged)."""
    async with db.transaction() as session:
        repo = TenantRepository.from_session(session)
        tenant = await repo.get_by_customer_web_id(customer_web_id, for_update=True)
        if tenant is None:
            return Revoked(found=False)
        now = utcnow()
        tenant.active = False
        tenant.deactivated_at = now
        tenant.deactivated_reason = reason[:255]
        tenant.sessions_valid_after = now
        return Revoked(found=True, deactivated=True)


async def revoke_sessions(db: Database, customer_web_id: str) -> Revoked:
    """Every bearer session of the customer issued until now is refused (users sign in
    again through onOffice, which checks their access)."""
    async with db.transaction() as session:
        repo = TenantRepository.from_session(session)
        tenant = await repo.get_by_customer_web_id(customer_web_id, for_update=True)
        if tenant is None:
            return Revoked(found=False)
        tenant.sessions_valid_after = utcnow()
        return Revoked(found=True, deactivated=not tenant.active)
