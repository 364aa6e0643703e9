"""Connection settings: check the key, prepare the list, fields and webhook, store the key."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.errors import PROVIDER_LABELS, provider_app_error
from app.connections.factory import build_provider, provider_for_connection
from app.connections.repository import ConnectionRepository
from app.connections.schemas import ActivityOptions, ConnectionRead, ConnectionUpdate
from app.contacts.scope import scope_definition
from app.crypto import hash_token, mask_secret
from app.db.models import Connection
from app.errors import AppError, NotFound
from app.lifecycle import switch as lifecycle
from app.resources import Resources
from app.tenants.auth import TenantContext
from providers.base import NewsletterProvider, ProviderAuthError, ProviderError

log = logging.getLogger(__name__)

LIST_NAME = "onoffice"


def webhook_url(resources: Resources, provider: str, token: str) -> str:
    return f"{resources.settings.PUBLIC_BASE_URL.rstrip('/')}/webhooks/{provider}/{token}"


class ConnectionService:
    async def get(self, session: AsyncSession, tenant: TenantContext) -> Connection:
        connection = await ConnectionRepository.from_session(session).for_tenant(
            tenant.tenant_id, tenant.group_id
        )
        if connection is None:
            raise NotFound("err.not_connected")
        return connection

    async def save(
        self,
        session: AsyncSession,
        resources: Resources,
        tenant: TenantContext,
        data: ConnectionUpdate,
    ) -> Connection:
        repo = ConnectionRepository.from_session(session)
        existing = await repo.for_tenant(tenant.tenant_id, tenant.group_id)
        if data.api_key is not None and data.api_key.get_secret_value().strip():
            api_key = data.api_key.get_secret_value().strip()
        elif existing is not None and existing.provider == data.provider:
            api_key = resources.secret_box.decrypt(existing.api_key_encrypted)
        else:
            raise AppError(
                "err.api_key_required", status_code=422, params={"provider": data.provider}
            )
        changes_scope = data.scope is not None and (
            existing is None or scope_definition(existing.group_id, existing.scope) != data.scope
        )
        if existing is not None and (existing.provider != data.provider or changes_scope):
            # Another provider or scope: refused before anything is set up at it.
            await lifecycle.refuse_while_running(session, existing.id)
        try:
            provider = build_provider(resources, data.provider, api_key)
            account = await provider.check_key()
            audience = await provider.ensure_list(LIST_NAME)
            mapping = await provider.ensure_fields(audience.id)
        except ProviderError as exc:
            raise provider_app_error(data.provider, exc) from exc

        ledger_key = f"{data.provider}:{account.account_id}:{audience.id}"
        switching = existing is not None and existing.ledger_key != ledger_key
        if existing is not None and switching:
            # Another provider, account or list: never under a running sync, and not before
            # the old list's opt-outs reached onOffice (app/lifecycle/switch.py).
            await lifecycle.refuse_while_running(session, existing.id)
            await lifecycle.settle_before_change(resources, existing)
            await repo.lock(existing.id)
            await lifecycle.refuse_while_running(session, existing.id)
        token, secret = self._webhook_credentials(resources, existing, ledger_key)
        try:
            # The optional events follow the activity settings (the one place to choose them).
            webhook = await provider.register_webhook(
                audience.id,
                webhook_url(resources, data.provider, token),
                secret,
                activities=data.activities.model_dump(),
            )
        except ProviderError as exc:
            raise provider_app_error(data.provider, exc) from exc
        if existing is not None and existing.webhook_id:
            same_hook = (
                existing.provider == data.provider
                and existing.list_id == audience.id
                and existing.webhook_id == webhook.id
            )
            if not same_hook:
                await self._remove_webhook_quietly(resources, existing)

        connection = existing or Connection(tenant_id=tenant.tenant_id, group_id=tenant.group_id)
        connection.webhook_token = hash_token(token)
        connection.webhook_secret_hash = hash_token(secret)
        connection.webhook_credentials_encrypted = resources.secret_box.encrypt(f"{token} {secret}")
        connection.provider = data.provider
        connection.api_key_encrypted = resources.secret_box.encrypt(api_key)
        connection.api_key_hint = mask_secret(api_key)
        connection.account_name = account.account_name
        connection.account_language = account.language
        connection.list_id = audience.id
        connection.list_name = audience.name
        connection.webhook_id = webhook.id
        # Checked again by the next health sweep (within a minute), from a clean record.
        connection.webhook_health = None
        connection.webhook_checked_at = None
        connection.webhook_error = None
        if switching:
            connection.webhook_repaired_at = None
            connection.webhook_problems = None
        connection.activities = data.activities.model_dump()
        connection.field_mapping = mapping.model_dump()
        if changes_scope and data.scope is not None:
            # Contacts now outside the scope leave the list with the next full sync (as if
            # they had left onOffice, behind the same safety valve).
            connection.scope = data.scope.model_dump()
        if existing is None:
            await repo.add(connection)
        elif switching:
            # Another provider, account or list: what was synced before says nothing about
            # this list (never trusted for it). The old list's ledger is parked, and the new
            # list's own ledger, parked when the connection left it, comes back: on a return
            # the connector knows whom it subscribed there (app/lifecycle/switch.py).
            await lifecycle.swap_ledger(session, existing, ledger_key)
        connection.ledger_key = ledger_key
        if existing is None:
            # The ledger parked for this list by an earlier connection of the customer's group.
            await lifecycle.restore_on_connect(session, connection)
        # Events a disconnect of this tenant left pending or held are applied now.
        await lifecycle.adopt_orphans(session, connection)
        log.info(
            "connection.saved",
            extra={"tenant_id": tenant.tenant_id, "provider": data.provider, "list": audience.id},
        )
        return connection

    async def rotate_webhook(
        self, session: AsyncSession, resources: Resources, tenant: TenantContext
    ) -> Connection:
        """A new secret webhook address (URL token and Brevo bearer secret) without
        disconnecting: registered at the provider first, then the old webhook removed there, and
        only then stored, so the old address is refused from the commit on (the writer checks
        every delivery against the stored token). No grace period: a leaked address must stop
        working. A delivery the provider retries to the old address after the rotation is
        refused; what it carried is found by the next reconciliation (every
        PROVIDER_RECONCILE_INTERVAL_S). If the old webhook cannot be removed, the new one is
        removed again and nothing changes (the error says so)."""
        repo = ConnectionRepository.from_session(session)
        connection = await self.get(session, tenant)
        if not connection.list_id:
            raise AppError("err.not_connected", status_code=409)
        await repo.lock(connection.id)  # one save or rotation at a time
        list_id, old_id = connection.list_id, connection.webhook_id
        provider = provider_for_connection(resources, connection)
        token, secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        try:
            webhook = await provider.register_webhook(
                list_id,
                webhook_url(resources, connection.provider, token),
                secret,
                activities=dict(connection.activities or {}),
            )
        except ProviderError as exc:
            raise provider_app_error(connection.provider, exc) from exc
        if old_id and old_id != webhook.id:
            try:
                await provider.remove_webhook(list_id, old_id)
            except ProviderError as exc:
                try:
                    await provider.remove_webhook(list_id, webhook.id)
                except ProviderError:
                    log.warning("connection.rotated_webhook_not_removed", extra={"id": webhook.id})
                raise AppError(
                    "err.webhook_rotate_failed",
                    status_code=502,
                    params={
                        "provider": PROVIDER_LABELS.get(connection.provider, ""),
                        "detail": exc.message,
                    },
                ) from exc
        connection.webhook_token = hash_token(token)
        connection.webhook_secret_hash = hash_token(secret)
        connection.webhook_credentials_encrypted = resources.secret_box.encrypt(f"{token} {secret}")
        connection.webhook_id = webhook.id
        connection.webhook_health = None
        connection.webhook_checked_at = None
        connection.webhook_error = None
        log.info("connection.webhook_rotated", extra={"connection_id": connection.id})
        return connection

    def _webhook_credentials(
        self, resources: Resources, existing: Connection | None, ledger_key: str
    ) -> tuple[str, str]:
        """The webhook's URL token and bearer secret: kept while provider, account and list stay
        (the provider may still be delivering or retrying events to that address), new ones
        otherwise. Only their hashes are compared on arrival; the pair is stored encrypted."""
        if (
            existing is not None
            and existing.ledger_key == ledger_key
            and existing.webhook_credentials_encrypted
        ):
            token, _, secret = resources.secret_box.decrypt(
                existing.webhook_credentials_encrypted
            ).partition(" ")
            if token and secret and hash_token(token) == existing.webhook_token:
                return token, secret
        return secrets.token_urlsafe(32), secrets.token_urlsafe(32)

    async def delete(
        self, session: AsyncSession, resources: Resources, tenant: TenantContext, *, force: bool
    ) -> None:
        repo = ConnectionRepository.from_session(session)
        connection = await self.get(session, tenant)
        if connection.webhook_id and connection.list_id:
            provider = provider_for_connection(resources, connection)
            try:
                await provider.remove_webhook(connection.list_id, connection.webhook_id)
            except ProviderAuthError:
                pass  # the key was revoked: nothing left to clean up with it
            except ProviderError as exc:
                if not force:
                    raise provider_app_error(connection.provider, exc) from exc
        # Nothing the provider said is lost: unseen opt-outs written back, pending events
        # applied; what is left keeps its tenant and is applied after a reconnect.
        await lifecycle.settle_before_change(resources, connection)
        await lifecycle.tie_to_tenant(session, connection)
        await lifecycle.park_on_disconnect(session, connection)
        await repo.delete(connection)

    async def _remove_webhook_quietly(self, resources: Resources, connection: Connection) -> None:
        try:
            old: NewsletterProvider = provider_for_connection(resources, connection)
            if connection.list_id and connection.webhook_id:
                await old.remove_webhook(connection.list_id, connection.webhook_id)
        except ProviderError as exc:
            log.warning("connection.old_webhook_not_removed", extra={"error": exc.message})

    def to_read(self, resources: Resources, connection: Connection) -> ConnectionRead:
        return ConnectionRead(
            provider=connection.provider,
            api_key=connection.api_key_hint,
            account_name=connection.account_name,
            list_id=connection.list_id,
            list_name=connection.list_name,
            webhook_registered=bool(connection.webhook_id),
            webhook_url=webhook_url(resources, connection.provider, "…"),
            activities=ActivityOptions.model_validate(connection.activities or {}),
            group_id=connection.group_id or None,
            scope=scope_definition(connection.group_id, connection.scope),
            created_at=connection.created_at,
            updated_at=connection.updated_at,
        )


connection = ConnectionService()
