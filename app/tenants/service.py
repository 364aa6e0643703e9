"""Marketplace activation, iframe visits, session exchange and webhook intake.

Services never commit: the request's SessionDep owns the transaction. Each signed URL is
accepted once per purpose; the replay record is written in the same transaction as the work
it protects, so a request that fails leaves the URL usable for a retry.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.connections.repository import ConnectionRepository, OnOfficeAccessRepository
from app.db.base import aware
from app.db.models import InboundEventStatus, Tenant
from app.errors import AppError, TenantNotActivated
from app.i18n import pick_language
from app.inbox.events import store
from app.inbox.jobs import ONOFFICE_SOURCE
from app.inbox.repository import InboundEventRepository
from app.incremental.jobs import enqueue_drain
from app.resources import Resources
from app.tenants.auth import TenantContext, issue_session_token
from app.tenants.repository import (
    GroupClaimRepository,
    TenantRepository,
    UsedSignatureRepository,
)
from app.tenants.signed_url import Purpose, SignedParams, SignedUrlError
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import (
    OnOfficeAuthError,
    OnOfficeClaimError,
    OnOfficeError,
    OnOfficeTransientError,
)

log = logging.getLogger(__name__)

# Expired replay records are deleted by roughly one request in PRUNE_ONE_IN; doing it on every
# request would make concurrent requests contend for the same rows.
PRUNE_ONE_IN = 20
PARAMETER_CACHE_CODES = frozenset({177, 178})

# Column limits of the tenant table; onOffice documents no maximum for these values.
CLAIM_MAX_LEN = 4096
NAME_MAX_LEN = 255
CUSTOMER_ID_MAX_LEN = 64
GROUP_ID_MAX_LEN = 64  # group_claim.group_id and user_id

# Submits of one signed activation URL (a mistyped key can be corrected a few times).
MAX_ACTIVATION_ATTEMPTS = 5
ACTIVATION_REQUIRED = ("apiToken", "apiClaim", "customerWebId", "parameterCacheId")
IFRAME_REQUIRED = ("customerWebId", "userId", "apiClaim")
WEBHOOK_REQUIRED = ("customerWebId", "apiClaim")


class ActivationFailed(AppError):
    """The activation did not succeed; `message` is the plain-text answer for onOffice."""

    code = "activation_failed"


class TenantDeactivated(AppError):
    status_code = 403
    code = "deactivated"


def _checked_claim(claim: str) -> str:
    if len(claim) > CLAIM_MAX_LEN:
        # Truncating would store a claim onOffice rejects later; fail loudly instead.
        raise AppError("err.claim_too_long", status_code=422, params={"max": CLAIM_MAX_LEN})
    return claim


class TenantService:
    async def consume_signature(
        self, session: AsyncSession, signed: SignedParams, purpose: Purpose, *, settings: Settings
    ) -> bool:
        """Mark the signed URL as used for `purpose`; False when it was used before."""
        repository = UsedSignatureRepository.from_session(session)
        if random.randrange(PRUNE_ONE_IN) == 0:
            await repository.delete_expired(datetime.now(UTC))
        return await repository.claim(
            purpose, signed.signature, signed.expires_at(settings.SIGNATURE_MAX_AGE_S)
        )

    async def require_unused(
        self, session: AsyncSession, signed: SignedParams, purpose: Purpose, *, settings: Settings
    ) -> None:
        if not await self.consume_signature(session, signed, purpose, settings=settings):
            raise SignedUrlError("err.url_used", params={"purpose": purpose.value})

    # -- activation ----------------------------------------------------------------------------

    async def activate(
        self, session: AsyncSession, *, resources: Resources, signed: SignedParams, secret: str
    ) -> Tenant:
        """Unlock the provider at onOffice and store the tenant with its encrypted credentials.

        Raises SignedUrlError for a replayed URL and ActivationFailed for everything onOffice
        refuses. Both roll back the savepoint, so a mistyped API key can simply be re-submitted.
        """
        secret = secret.strip()
        if not secret:
            raise ActivationFailed("err.activation_key_missing")
        # Checked before unlocking: onOffice's parameter cache is single-use.
        if len(signed.get("customerWebId")) > CUSTOMER_ID_MAX_LEN:
            raise ActivationFailed("err.activation_id_too_long")
        _checked_claim(signed.get("apiClaim"))
        # Counted outside the savepoint, so a failed attempt still counts: one signed URL
        # allows a few tries of a mistyped key, not unlimited unlockProvider calls.
        if not await self._count_attempt(session, signed, resources.settings):
            raise ActivationFailed("err.activation_attempts", status_code=429)
        async with session.begin_nested():
            await self.require_unused(
                session, signed, Purpose.activation_submit, settings=resources.settings
            )
            await self._unlock_provider(resources, signed, secret)
            tenant = await self._store_activation(session, resources, signed, secret)
        log.info(
            "tenant.activated",
            extra={"tenant_id": tenant.id, "customer_web_id": tenant.customer_web_id},
        )
        return tenant

    async def _count_attempt(
        self, session: AsyncSession, signed: SignedParams, settings: Settings
    ) -> bool:
        repository = UsedSignatureRepository.from_session(session)
        expires_at = signed.expires_at(settings.SIGNATURE_MAX_AGE_S)
        for attempt in range(1, MAX_ACTIVATION_ATTEMPTS + 1):
            key = f"{signed.signature}:{attempt}"
            if await repository.claim(Purpose.activation_attempt, key, expires_at):
                return True
        return False

    async def _unlock_provider(
        self, resources: Resources, signed: SignedParams, secret: str
    ) -> None:
        settings = resources.settings
        client = OnOfficeClient(
            api_url=settings.ONOFFICE_API_URL,
            token=signed.get("apiToken"),
            secret=secret,
            claim=signed.get("apiClaim"),
            http=resources.http,
            # A person is waiting in front of the iframe: one quick retry, then an answer.
            max_retries=1,
            backoff_initial=0.2,
            backoff_max=1.0,
            timeout=min(settings.HTTP_TIMEOUT_S, 20.0),
        )
        try:
            await client.unlock_provider(signed.get("parameterCacheId"))
        except OnOfficeAuthError as exc:
            log.info("tenant.activation_rejected", extra={"errorcode": exc.errorcode})
            raise ActivationFailed("err.activation_key_rejected") from exc
        except OnOfficeClaimError as exc:
            raise ActivationFailed("err.activation_claim") from exc
        except OnOfficeTransientError as exc:
            raise ActivationFailed("err.activation_unreachable", status_code=502) from exc
        except OnOfficeError as exc:
            if exc.errorcode in PARAMETER_CACHE_CODES:
                raise ActivationFailed("err.activation_cache") from exc
            # onOffice's own text is logged, not shown: the page shows its error code only.
            log.info("tenant.activation_refused", extra={"errorcode": exc.errorcode})
            params = {"detail": f"error code {exc.errorcode}"}
            raise ActivationFailed("err.activation_refused", params=params) from exc

    async def _store_activation(
        self, session: AsyncSession, resources: Resources, signed: SignedParams, secret: str
    ) -> Tenant:
        # No upsert race to guard: onOffice consumes the parameter cache on the first unlock,
        # so a second concurrent activation of the same customer fails before reaching here.
        repository = TenantRepository.from_session(session)
        customer_web_id = signed.get("customerWebId")
        tenant = await repository.get_by_customer_web_id(customer_web_id, for_update=True)
        if tenant is None:
            tenant = Tenant(customer_web_id=customer_web_id)
        box = resources.secret_box
        tenant.customer_name = signed.get("customerName")[:NAME_MAX_LEN]
        tenant.api_token_encrypted = box.encrypt(signed.get("apiToken"))
        tenant.api_secret_encrypted = box.encrypt(secret)
        tenant.api_claim = signed.get("apiClaim")
        tenant.api_claim_at = signed.signed_at
        tenant.activated_at = datetime.now(UTC)
        tenant.active = True
        tenant.deactivated_at = tenant.deactivated_reason = None
        tenant = await repository.add(tenant)
        # New credentials: connections onOffice refused run again (app/connections/access.py).
        access = OnOfficeAccessRepository.from_session(session)
        await access.clear(await access.of_tenant(tenant.id))
        return tenant

    # -- iframe and sessions -------------------------------------------------------------------

    async def open_app(
        self, session: AsyncSession, *, settings: Settings, signed: SignedParams, purpose: Purpose
    ) -> Tenant:
        """A signed iframe URL (page visit or session exchange): the tenant, its claim refreshed."""
        tenant = await self._active_tenant(session, signed.get("customerWebId"))
        await self.require_unused(session, signed, purpose, settings=settings)
        await self._remember_claim(session, tenant, signed)
        # A user came with a fresh claim: connections onOffice refused are checked again soon.
        access = OnOfficeAccessRepository.from_session(session)
        await access.recheck_soon(await access.of_tenant(tenant.id))
        if signed.get("UserLanguage"):
            tenant.language = pick_language(signed.get("UserLanguage"), None)
        return tenant

    async def create_session(
        self, session: AsyncSession, *, resources: Resources, signed: SignedParams
    ) -> tuple[str, datetime]:
        tenant = await self.open_app(
            session, settings=resources.settings, signed=signed, purpose=Purpose.session
        )
        context = TenantContext(
            tenant_id=tenant.id,
            customer_web_id=tenant.customer_web_id,
            group_id=signed.get("groupId"),
            user_id=signed.get("userId"),
            language=pick_language(signed.get("UserLanguage"), None)
            if signed.get("UserLanguage")
            else "",
        )
        return issue_session_token(
            resources.session_box, context, ttl_s=resources.settings.SESSION_TTL_S
        )

    async def get_tenant(self, session: AsyncSession, context: TenantContext) -> Tenant:
        tenant = await TenantRepository.from_session(session).get(context.tenant_id)
        if tenant is None:
            raise TenantNotActivated("err.customer_gone")
        return tenant

    # -- webhook -------------------------------------------------------------------------------

    async def record_address_webhook(
        self, session: AsyncSession, *, settings: Settings, signed: SignedParams
    ) -> int | None:
        """Store the marketplace webhook "address saved" in the inbox: one event per
        connection of the customer (each drains its own, `app.incremental.drain`); without a
        connection one event, handled at once (there is nothing to push to).

        Returns a new event's id, or None when this signed URL was delivered before (onOffice
        may retry a delivery; the first one is stored, repeats are acknowledged and dropped).
        Only a new event kicks its connection's drain (sent after the commit).
        """
        id_param = settings.ONOFFICE_WEBHOOK_ID_PARAM
        raw_id = signed.get(id_param)
        if not (raw_id.isascii() and raw_id.isdigit() and int(raw_id) < 2**63):
            raise AppError(
                "err.webhook_id_param", params={"param": id_param, "value": repr(raw_id)}
            )
        tenant = await self._active_tenant(session, signed.get("customerWebId"))
        if not await self.consume_signature(session, signed, Purpose.webhook, settings=settings):
            return None
        await self._remember_claim(session, tenant, signed)
        # Only what applying needs (data minimisation): the claim is kept on the tenant, the
        # signed parameters were checked and are not stored.
        payload: dict[str, Any] = {
            "tenant_id": tenant.id,
            "customerWebId": tenant.customer_web_id,
            "address_id": int(raw_id),
            "userId": signed.get("userId"),
            "groupId": signed.get("groupId"),
            "timestamp": signed.timestamp,
        }
        received_at = datetime.now(UTC)
        connections = await ConnectionRepository.from_session(session).all_for_tenant(tenant.id)
        if not connections:
            stored = await store(
                session,
                source=ONOFFICE_SOURCE,
                dedupe_key=signed.signature,
                payload=payload,
                received_at=received_at,
            )
            if stored.new and stored.id is not None:
                await InboundEventRepository.from_session(session).update_events(
                    [stored.id], status=InboundEventStatus.applied, applied_at=received_at
                )
            return stored.id if stored.new else None
        event_id = None
        for connection in connections:
            stored = await store(
                session,
                source=ONOFFICE_SOURCE,
                dedupe_key=f"c{connection.id}:{signed.signature}",
                payload=payload,
                received_at=received_at,
                connection_id=connection.id,
            )
            if stored.new and stored.id is not None:
                enqueue_drain(connection.id, str(stored.id))
                event_id = event_id or stored.id
        return event_id

    # -- helpers -------------------------------------------------------------------------------

    async def _active_tenant(self, session: AsyncSession, customer_web_id: str) -> Tenant:
        tenant = await TenantRepository.from_session(session).get_by_customer_web_id(
            customer_web_id, for_update=True
        )
        if tenant is None or tenant.activated_at is None:
            raise TenantNotActivated("err.not_activated", params={"customer": customer_web_id})
        if not tenant.active:
            raise TenantDeactivated("err.deactivated", params={"customer": customer_web_id})
        return tenant

    async def _remember_claim(
        self, session: AsyncSession, tenant: Tenant, signed: SignedParams
    ) -> None:
        """Keep the apiClaim of the most recently signed URL (requests may arrive out of order):
        per group with its user when the URL names a group (that group's connection runs with
        it), else on the tenant (the customer-wide connection's). A group user's claim never
        replaces the customer-wide one, nor another group's."""
        claim = signed.get("apiClaim")
        if not claim:
            return
        group_id = signed.get("groupId")
        if group_id:
            await GroupClaimRepository.from_session(session).remember(
                tenant.id,
                group_id[:GROUP_ID_MAX_LEN],
                signed.get("userId")[:GROUP_ID_MAX_LEN],
                _checked_claim(claim),
                signed.signed_at,
            )
            return
        if tenant.api_claim_at is None or signed.signed_at >= aware(tenant.api_claim_at):
            tenant.api_claim = _checked_claim(claim)
            tenant.api_claim_at = signed.signed_at


tenant = TenantService()
