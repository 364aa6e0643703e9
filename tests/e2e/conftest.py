from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from app.config import Environment, Settings
from emulators.brevo import BrevoState
from emulators.brevo import create_app as brevo_app
from emulators.mailchimp import MailchimpState
from emulators.mailchimp import create_app as mailchimp_app
from emulators.onoffice import OnOfficeState
from emulators.onoffice import create_app as onoffice_app
from tests.e2e.harness import PROVIDER_SECRET, ServerThread


@dataclass
class World:
    onoffice: OnOfficeState
    onoffice_url: str
    mailchimp: MailchimpState
    mailchimp_url: str
    brevo: BrevoState
    brevo_url: str


@pytest.fixture
def world() -> Iterator[World]:
    oo, mc, br = OnOfficeState(), MailchimpState(), BrevoState()
    br.add_account("test-key-de", "de")
    br.add_account("test-key-en", "en")
    servers = [
        ServerThread(onoffice_app(oo)).start(),
        ServerThread(mailchimp_app(mc)).start(),
        ServerThread(brevo_app(br)).start(),
    ]
    yield World(oo, servers[0].url, mc, servers[1].url, br, servers[2].url)
    for server in servers:
        server.stop()


@pytest.fixture
def e2e_settings(world: World, database_url: str) -> Settings:
    return Settings(
        ENV=Environment.testing,
        DATABASE_URL=database_url,
        REDIS_URL=None,
        ONOFFICE_PROVIDER_SECRET=PROVIDER_SECRET,  # type: ignore[arg-type]
        ONOFFICE_API_URL=f"{world.onoffice_url}/api/stable/api.php",
        MAILCHIMP_API_URL=f"{world.mailchimp_url}/3.0",
        BREVO_API_URL=f"{world.brevo_url}/v3",
        WORKER_JOB_TIMEOUT_S=120,
        PROVIDER_MAX_RETRIES=2,
        BREVO_PROCESS_POLL_S=0.2,
        BREVO_IMPORT_BATCH_SIZE=1500,
        LOG_LEVEL="WARNING",
        ARCHIVE_BURST_WINDOW_S=0.5,
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client
