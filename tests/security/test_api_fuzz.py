"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document (schemathesis on
the ASGI app, embedded mode on SQLite), without and with a valid session: no server error and
no response that contradicts the document (status code, content type, body schema)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Environment, Settings
from app.crypto import KeyPurpose, SecretBox, generate_key
from app.db.migrate import migrate
from app.main import create_app
from app.tenants.auth import TenantContext, issue_session_token
from emulators.brevo import BrevoState
from emulators.brevo import create_app as create_brevo
from emulators.mailchimp import MailchimpState
from emulators.mailchimp import create_app as create_mailchimp
from emulators.onoffice import OnOfficeState
from emulators.onoffice import create_app as create_onoffice

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_target(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    db = tmp_path / "fuzz.db"
    url = f"sqlite+aiosqlite:///{db}"
    migrate(url)
    settings = Settings(
        ENV=Environment.testing,
        DATABASE_URL=url,
        REDIS_URL=None,
        ENCRYPTION_KEY=generate_key(),  # type: ignore[arg-type]
        ONOFFICE_PROVIDER_SECRET="fuzz-provider-secret",  # type: ignore[arg-type]
        PUBLIC_BASE_URL="http://testserver",
        ONOFFICE_API_URL="http://onoffice.test/api/stable/api.php",
        MAILCHIMP_API_URL="http://mailchimp.test/3.0",
        BREVO_API_URL="http://brevo.test/v3",
        PROVIDER_MAX_RETRIES=0,
        LOG_LEVEL="CRITICAL",
    )
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(db) as conn:
        cursor = conn.execute(
            "INSERT INTO tenant (customer_web_id, customer_name, active, activated_at, "
            "created_at, updated_at) VALUES ('fuzz', 'Fuzz GmbH', 1, ?, ?, ?)",
            (now, now, now),
        )
        tenant_id = int(cursor.lastrowid or 0)
    token, _ = issue_session_token(
        SecretBox.from_settings(settings, KeyPurpose.session),
        TenantContext(tenant_id=tenant_id, customer_web_id="fuzz", group_id="", user_id="1"),
        ttl_s=settings.SESSION_TTL_S,
    )
    http = httpx.AsyncClient(
        mounts={
            "http://onoffice.test": httpx.ASGITransport(app=create_onoffice(OnOfficeState())),
            "http://mailchimp.test": httpx.ASGITransport(app=create_mailchimp(MailchimpState())),
            "http://brevo.test": httpx.ASGITransport(app=create_brevo(BrevoState())),
        }
    )
    yield create_app(settings, http=http), {"Authorization": f"Bearer {token}"}


def test_fuzz_the_openapi_document_without_and_with_a_session(
    fuzz_target: tuple[Any, dict[str, str]],
) -> None:
    app, session_headers = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    calls = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    def fuzz(operation: Any, headers: dict[str, str]) -> None:
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(headers=headers)
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as exc:  # collect every failing operation, not just the first
                kinds = sorted({type(e).__name__ for e in exc.exceptions})
                failures.append(f"{case.operation.label} -> {response.status_code}: {kinds}")

        run()

    for operation in operations:
        for headers in ({}, session_headers):
            fuzz(operation, headers)
    assert not failures, "\n".join(sorted(set(failures)))
    assert calls >= len(operations) * 2
