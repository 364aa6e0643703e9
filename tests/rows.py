"""What tests start from: a tenant with its connection (the rows activation and saving a key
create), and a Mailchimp client talking to an in-process emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection, Tenant
from emulators.mailchimp import DEFAULT_API_KEY, MailchimpState, create_app
from providers.mailchimp import MailchimpClient


async def add_connection(
    session: AsyncSession, *, web_id: str = "T1", token: str = "tok", **fields: Any
) -> Connection:
    tenant = Tenant(customer_web_id=web_id)
    session.add(tenant)
    await session.flush()
    connection = Connection(
        tenant_id=tenant.id,
        provider=fields.pop("provider", "mailchimp"),
        api_key_encrypted=b"x",
        webhook_token=token,
        **fields,
    )
    session.add(connection)
    await session.flush()
    return connection


@asynccontextmanager
async def mailchimp_client(state: MailchimpState, **options: Any) -> AsyncIterator[MailchimpClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport) as http:
        yield MailchimpClient(
            api_key=DEFAULT_API_KEY,
            base_url_template="http://mailchimp.test/3.0",
            http=http,
            **options,
        )
