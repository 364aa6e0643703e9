"""The provider factory: the one registry of providers, and clients cached per connection."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.connections import factory
from app.connections.factory import provider_for_connection, provider_label, provider_status_page
from app.db.models import Connection
from app.resources import Resources, create_resources
from app.syncs.common import batch_limit
from providers.mailchimp.client import MailchimpClient


def connection(resources: Resources, id_: int, provider: str, key: str) -> Connection:
    return Connection(
        id=id_,
        tenant_id=1,
        provider=provider,
        api_key_encrypted=resources.secret_box.encrypt(key),
        webhook_token="t",
    )


MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"


class TestClientCache:
    async def test_a_connection_keeps_its_client_until_the_key_changes(
        self, resources: Resources
    ) -> None:
        first = connection(resources, 1, "mailchimp", MAILCHIMP_KEY)
        client = provider_for_connection(resources, first)
        assert provider_for_connection(resources, first) is client
        # Loaded again from the database: same row, same key, same client.
        again = connection(resources, 1, "mailchimp", MAILCHIMP_KEY)
        again.api_key_encrypted = first.api_key_encrypted
        assert provider_for_connection(resources, again) is client
        # Another connection with the same key has its own client.
        other = connection(resources, 2, "mailchimp", MAILCHIMP_KEY)
        assert provider_for_connection(resources, other) is not client
        # A new key (or a switch to Brevo) makes a new client.
        rekeyed = connection(resources, 1, "mailchimp", "f" * 32 + "-us9")
        assert provider_for_connection(resources, rekeyed) is not client
        brevo = connection(resources, 1, "brevo", "xkeysib-" + "a" * 64)
        assert provider_for_connection(resources, brevo).name == "brevo"

    async def test_a_client_is_built_afresh_after_its_time_to_live(
        self, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        row = connection(resources, 3, "mailchimp", MAILCHIMP_KEY)
        client = provider_for_connection(resources, row)
        monkeypatch.setattr(factory, "CLIENT_TTL_S", 0.0)
        assert provider_for_connection(resources, row) is not client

    async def test_the_cache_is_bounded(
        self, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(factory, "CLIENT_CACHE_SIZE", 3)
        rows = [connection(resources, 10 + n, "mailchimp", MAILCHIMP_KEY) for n in range(5)]
        clients = [provider_for_connection(resources, row) for row in rows]
        assert len(resources.parts.provider_clients) == 3
        assert provider_for_connection(resources, rows[-1]) is clients[-1]
        assert provider_for_connection(resources, rows[0]) is not clients[0]


class TestRegistry:
    def test_labels_and_status_pages_come_from_the_client_classes(self) -> None:
        assert provider_label("mailchimp") == "Mailchimp"
        assert provider_label("brevo") == "Brevo"
        assert provider_status_page("brevo").startswith("https://status.brevo")
        assert provider_label("unknown") == "unknown"
        assert provider_status_page("unknown") == ""


class TestBatchSize:
    async def test_the_batcher_reads_the_clients_max_batch_size(self, settings: Settings) -> None:
        """The full sync's batch size is the client's `max_batch_size` (the protocol's), set
        from SYNC_BATCH_SIZE and BREVO_IMPORT_BATCH_SIZE, not chosen by the provider's name."""
        sized = settings.model_copy(
            update={"SYNC_BATCH_SIZE": 120, "BREVO_IMPORT_BATCH_SIZE": 1500}
        )
        resources = await create_resources(sized)
        try:
            mailchimp = connection(resources, 1, "mailchimp", MAILCHIMP_KEY)
            brevo = connection(resources, 2, "brevo", "xkeysib-" + "a" * 64)
            assert provider_for_connection(resources, mailchimp).max_batch_size == 120
            assert provider_for_connection(resources, brevo).max_batch_size == 1500
            assert batch_limit(resources, mailchimp) == 120
            assert batch_limit(resources, brevo) == 1500
            # A client asked for more than its service takes keeps the service's maximum.
            assert MailchimpClient(api_key=MAILCHIMP_KEY, max_batch_size=900).max_batch_size == 500
        finally:
            await resources.aclose()
