"""All SQL of the tenants domain: tenants and the replay records of signed URLs.

onOffice webhook events go through app.webhooks.repository.InboundEventRepository.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from app.db.models import Tenant, UsedSignature
from app.db.repository import SessionRepository, dialect_insert


class TenantRepository(SessionRepository):
    async def get(self, tenant_id: int) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def get_by_customer_web_id(
        self, customer_web_id: str, *, for_update: bool = False
    ) -> Tenant | None:
        stmt = select(Tenant).where(Tenant.customer_web_id == customer_web_id)
        if for_update:
            # Serialises concurrent claim updates (iframe, session, webhook) of one customer.
            stmt = stmt.with_for_update()
        result = await self.session.execute(stmt)
        return result.scalar_one_or_none()

    async def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        return tenant


class UsedSignatureRepository(SessionRepository):
    async def claim(self, purpose: str, signature: str, expires_at: datetime) -> bool:
        """Record the signature as used; False when it already was (a replay)."""
        stmt = (
            dialect_insert(self.session)(UsedSignature)
            .values(purpose=purpose, signature=signature, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["purpose", "signature"])
            .returning(UsedSignature.signature)
        )
        result = await self.session.execute(stmt)
        return result.scalar_one_or_none() is not None

    async def delete_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(UsedSignature).where(UsedSignature.expires_at < now)
        )
        return int(getattr(result, "rowcount", 0) or 0)
