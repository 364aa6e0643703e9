"""Members archived or deleted at the provider (e.g. Mailchimp's "Archive All", a cost
clean-up): the full sync neither re-adds them nor writes them back to onOffice
(`app.contacts.rules.decide_yes` → `Action.archived`). A user lists them and restores the ones
to subscribe again, each only while onOffice still says Yes for that person
(`app.contacts.rules.may_restore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.connections.repository import ConnectionRepository
from app.connections.service import connection as connection_service
from app.contacts.repository import ContactRepository
from app.contacts.rules import REMOVED_STATES, SUBSCRIBED, YES, is_opt_out, may_restore
from app.contacts.values import contact_from_address, contact_hash, normalise_email
from app.db.base import utcnow
from app.db.models import Contact
from app.resources import Resources
from app.syncs.common import default_language
from app.tenants.auth import TenantContext
from providers.base import FieldMapping, ProviderError, UpsertOutcome

LIST_LIMIT = 1000
RESTORE_LIMIT = 100

RefusedCode = Literal["not_archived", "onoffice_not_yes", "provider_refused"]


class ArchivedContact(BaseModel):
    email: str
    address_id: int = Field(description="The onOffice address the connector last synced")
    provider_status: str = Field(description="archived or deleted")
    since: str | None = Field(description="When the provider archived or deleted it (ISO)")
    dismissed: bool = Field(
        description="Part of an Archive-All burst a user dismissed (onOffice kept its value)"
    )


class ArchivedList(BaseModel):
    items: list[ArchivedContact]


class RestoreRequest(BaseModel):
    emails: list[str] = Field(min_length=1, max_length=RESTORE_LIMIT)


class Refused(BaseModel):
    email: str
    code: RefusedCode
    reason: str = Field(description="English detail (the provider's own text where it has one)")


class RestoreResult(BaseModel):
    restored: list[str]
    refused: list[Refused]


def _read(contact: Contact) -> ArchivedContact:
    since = contact.provider_changed_at
    return ArchivedContact(
        email=contact.email,
        address_id=contact.address_id,
        provider_status=contact.provider_status or "",
        since=since.isoformat() if since else None,
        dismissed=contact.removal_dismissed_at is not None,
    )


async def list_archived(session: AsyncSession, tenant: TenantContext) -> ArchivedList:
    connection = await connection_service.get(session, tenant)
    rows = await ContactRepository.from_session(session).archived(connection.id, LIST_LIMIT)
    return ArchivedList(items=[_read(c) for c in rows])


async def restore(
    session: AsyncSession, resources: Resources, tenant: TenantContext, emails: Sequence[str]
) -> RestoreResult:
    """Subscribe the selected archived members again (a fresh, explicit decision of the user),
    each only while its onOffice addresses still say Yes and none says No or Cancellation."""
    connection = await connection_service.get(session, tenant)
    _, tenant_row = await ConnectionRepository.from_session(session).with_tenant(connection.id)
    assert tenant_row is not None and connection.list_id is not None
    repo = ContactRepository.from_session(session)
    wanted = sorted({normalise_email(e) for e in emails if normalise_email(e)})
    found = await repo.by_emails(connection.id, wanted)
    result = RestoreResult(restored=[], refused=[])
    onoffice = onoffice_for_connection(resources, tenant_row, connection)
    known = [c.address_id for c in found.values()]
    addresses = await onoffice.find_addresses_by_emails(wanted, known_ids=known)
    provider = provider_for_connection(resources, connection)
    mapping = FieldMapping.model_validate(connection.field_mapping or {})
    language = default_language(connection)
    for email in wanted:
        contact = found.get(email)
        if contact is None or contact.provider_status not in REMOVED_STATES:
            result.refused.append(Refused(email=email, code="not_archived", reason="not archived"))
            continue
        active = [a for a in addresses.get(email, []) if a.active]
        if not may_restore(contact.provider_status, [a.newsletter for a in active]):
            reason = "onOffice no longer says Yes for this person"
            result.refused.append(Refused(email=email, code="onoffice_not_yes", reason=reason))
            continue
        address = next(a for a in active if a.newsletter is not None and a.newsletter.name == YES)
        data = contact_from_address(address, email, language)
        data.resubscribe = True
        try:
            outcome = await provider.upsert_contact(connection.list_id, data, mapping)
        except ProviderError as exc:
            result.refused.append(Refused(email=email, code="provider_refused", reason=exc.message))
            continue
        if outcome.outcome == UpsertOutcome.rejected or is_opt_out(outcome.status):
            reason = outcome.detail or f"the provider kept the contact {outcome.status}"
            result.refused.append(Refused(email=email, code="provider_refused", reason=reason))
            continue
        await repo.update(
            contact.id,
            address_id=address.id,
            subscribed=True,
            provider_status=outcome.status or SUBSCRIBED,
            provider_changed_at=utcnow(),
            provider_id=outcome.provider_id or contact.provider_id,
            synced_hash=contact_hash(data),
            tags=list(data.tags),
            onoffice_status=YES,
            removal_dismissed_at=None,
            rejected_hash=None,
            rejected_reason=None,
        )
        result.restored.append(email)
    return result
