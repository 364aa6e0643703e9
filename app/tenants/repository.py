"""All SQL of the tenants domain: tenants and the replay records of signed URLs.

onOffice webhook events go through app.inbox.repository.InboundEventRepository.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from app.db.base import aware
from app.db.models import GroupClaim, Tenant, UsedSignature
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


class GroupClaimRepository(SessionRepository):
    async def get(self, tenant_id: int, group_id: str) -> GroupClaim | None:
        stmt = select(GroupClaim).where(
            GroupClaim.tenant_id == tenant_id, GroupClaim.group_id == group_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def remember(
        self, tenant_id: int, group_id: str, user_id: str, claim: str, claim_at: datetime
    ) -> None:
        """Keep the group's newest claim (signed URLs may arrive out of order). The caller
        holds the tenant's row lock, so the insert does not race another one."""
        found = await self.get(tenant_id, group_id)
        if found is None:
            self.session.add(
                GroupClaim(
                    tenant_id=tenant_id,
                    group_id=group_id,
                    user_id=user_id,
                    claim=claim,
                    claim_at=claim_at,
                )
            )
            await self.session.flush()
        elif claim_at >= aware(found.claim_at):
            found.user_id, found.claim, found.claim_at = user_id, claim, claim_at


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
