"""Bearer sessions of the iframe UI: `CurrentTenant` guards every tenant-scoped /api/v1 route.

A session token is a Fernet token (app.crypto.SecretBox: AES-CBC + HMAC, with its issue time
inside) over a small JSON document, so it needs no table, survives key rotation (MultiFernet)
and expires through Fernet's own `ttl` check. Its key is derived for sessions only (HKDF), so
an encrypted secret at rest is never accepted as a session token.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from app.crypto import DecryptionError, SecretBox
from app.db.base import aware
from app.deps import ResourcesDep, SessionDep
from app.errors import Unauthorized
from app.quotas import TokenBuckets
from app.tenants.repository import TenantRepository

TOKEN_VERSION = 1

# auto_error=False: a missing header gets our own 401 with a message, not FastAPI's 403.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="The `token` from `POST /api/v1/sessions`.",
)


@dataclass(frozen=True)
class TenantContext:
    """Who is calling: the onOffice customer (tenant), the user's group ("" = none) and user."""

    tenant_id: int
    customer_web_id: str
    group_id: str
    user_id: str
    language: str = ""  # "de"/"en" from onOffice's UserLanguage at sign-in ("" = not given)
    issued_at: int = 0  # the session's issue time (Unix seconds); not part of the token body


def _claims(context: TenantContext) -> dict[str, Any]:
    claims = asdict(context)
    claims.pop("issued_at")
    return claims


class SessionError(Unauthorized):
    code = "invalid_session"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": "Bearer"}


def issue_session_token(
    session_box: SecretBox, context: TenantContext, *, ttl_s: int, now: datetime | None = None
) -> tuple[str, datetime]:
    """A bearer token bound to `context`, and when it expires."""
    issued = now or datetime.now(UTC)
    claims = {"v": TOKEN_VERSION, **_claims(context), "iat": int(issued.timestamp())}
    body = json.dumps(claims, separators=(",", ":"))
    token = session_box.encrypt(body).decode("ascii")
    # Fernet stores whole seconds; the token dies at issue second + ttl.
    expires_at = issued.replace(microsecond=0) + timedelta(seconds=ttl_s)
    return token, expires_at


def read_session_token(session_box: SecretBox, token: str, *, ttl_s: int) -> TenantContext:
    """The context inside a token; SessionError when it is forged, foreign or expired."""
    try:
        body = session_box.decrypt(token.encode("ascii"), ttl=ttl_s)
    except (DecryptionError, UnicodeEncodeError):
        # Fernet does not tell "expired" from "forged"; both need a fresh session.
        raise SessionError("err.session_invalid") from None
    unknown = SessionError("err.session_format")
    try:
        data: Any = json.loads(body)
    except ValueError:
        raise unknown from None
    if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
        raise unknown
    tenant_id = data.get("tenant_id")
    fields = [data.get(name) for name in ("customer_web_id", "group_id", "user_id")]
    if type(tenant_id) is not int or not all(isinstance(f, str) for f in fields):
        raise unknown
    if not 0 < tenant_id < 2**63:
        raise unknown
    issued_at = data.get("iat", 0)  # tokens from before revocation existed count as old
    if type(issued_at) is not int:
        raise unknown
    return TenantContext(
        tenant_id=tenant_id,
        customer_web_id=str(fields[0]),
        group_id=str(fields[1]),
        user_id=str(fields[2]),
        language=str(data.get("language") or ""),
        issued_at=issued_at,
    )


async def require_session(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> TenantContext:
    """The caller's TenantContext from `Authorization: Bearer <token>`, or 401."""
    if credentials is None or not credentials.credentials:
        raise SessionError("err.session_missing")
    context = read_session_token(
        resources.session_box, credentials.credentials, ttl_s=resources.settings.SESSION_TTL_S
    )
    buckets: TokenBuckets | None = getattr(request.app.state, "api_buckets", None)
    if buckets is not None:
        buckets.check(context.tenant_id)  # 429 before the database is asked
    tenant = await TenantRepository.from_session(session).get(context.tenant_id)
    if tenant is None or tenant.customer_web_id != context.customer_web_id:
        raise SessionError("err.session_unknown_customer")
    if not tenant.active:
        raise SessionError("err.session_deactivated")
    valid_after = tenant.sessions_valid_after
    # Issue times are whole seconds: a session of the revocation's own second is refused too.
    if valid_after is not None and context.issued_at < math.ceil(aware(valid_after).timestamp()):
        raise SessionError("err.session_revoked")
    if context.language:
        request.state.language = context.language  # error messages in the user's language
    return context


CurrentTenant = Annotated[TenantContext, Depends(require_session)]


def session_tenant(scope: Scope, token: str) -> int | None:
    """The tenant of a bearer session, for the fair-share limit (app/quotas.py); None when the
    token does not decrypt (the route answers 401) or the app has not started."""
    resources = getattr(scope["app"].state, "resources", None) if "app" in scope else None
    if resources is None:
        return None
    try:
        context = read_session_token(
            resources.session_box, token, ttl_s=resources.settings.SESSION_TTL_S
        )
    except SessionError:
        return None
    return context.tenant_id
