"""Routes onOffice opens (activation, iframe, webhook) and the session API of the iframe UI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel

from app.deps import ResourcesDep, SessionDep, SettingsDep
from app.errors import AppError, TenantNotActivated
from app.i18n import Language, pick_language
from app.tenants import pages
from app.tenants.auth import CurrentTenant
from app.tenants.schemas import (
    ErrorBody,
    SessionCreate,
    SessionInfo,
    SessionToken,
    WebhookAccepted,
)
from app.tenants.service import (
    ACTIVATION_REQUIRED,
    IFRAME_REQUIRED,
    WEBHOOK_REQUIRED,
    TenantDeactivated,
)
from app.tenants.service import tenant as tenant_service
from app.tenants.signed_url import Purpose, parse_query, verify_signed_params

ACTIVATE_PATH = "/onoffice/activate"
APP_PATH = "/onoffice/app"
WEBHOOK_PATH = "/onoffice/webhook"


router = APIRouter()

_ERROR = {"model": ErrorBody}
# The HTML pages answer errors as JSON: documented explicitly, or FastAPI would list the
# page's text/html for them.
_JSON_ERROR = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
}
SIGNED_URL_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        **_ERROR,
        "description": "The signed URL was rejected: missing parameter, invalid signature, "
        "stale or future timestamp, or already used (replay).",
    },
    503: {**_ERROR, "description": "ONOFFICE_PROVIDER_SECRET is not configured."},
}
PAGE_SIGNED_URL_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {**_JSON_ERROR, "description": value["description"]}
    for code, value in SIGNED_URL_ERRORS.items()
}
TENANT_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {**_ERROR, "description": "The connector is deactivated for this customer."},
    404: {**_ERROR, "description": "The customer has not activated the connector."},
}
BEARER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        **_ERROR,
        "description": "Missing, invalid or expired bearer token, or the customer is unknown "
        "or deactivated (with `WWW-Authenticate: Bearer`).",
    },
}


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


# -- activation ------------------------------------------------------------------------------


@router.get(
    ACTIVATE_PATH,
    tags=["onOffice marketplace"],
    summary="Activation page (opened by onOffice in the Marketplace)",
    description="Verifies the signed URL and shows a form for the customer's API key. Its "
    "button posts the same signed parameters plus `secret` to `POST /onoffice/activate` and "
    "forwards the plain-text answer to onOffice with `window.parent.postMessage`.",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **PAGE_SIGNED_URL_ERRORS},
)
async def activation_page(
    request: Request, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    pairs = _query_pairs(request)
    signed = verify_signed_params(
        pairs, settings=settings, path=ACTIVATE_PATH, required=ACTIVATION_REQUIRED
    )
    await tenant_service.require_unused(session, signed, Purpose.activation_page, settings=settings)
    language = pages.pick_language(
        signed.get("UserLanguage"), request.headers.get("accept-language")
    )
    return pages.render(
        request,
        "onoffice_activate.html",
        language,
        {
            # Every parameter goes back: the signature covers all of them, unknown ones too.
            "signed_params": pairs,
            "submit_url": settings.PUBLIC_BASE_URL.rstrip("/") + ACTIVATE_PATH,
            "customer_name": signed.get("customerName"),
            "customer_web_id": signed.get("customerWebId"),
            "onoffice_css": pages.ONOFFICE_UNLOCK_CSS,
        },
    )


class ActivationForm(BaseModel):
    """The signed activation parameters (all of them, as received) plus the pasted API key."""

    apiToken: str = ""
    apiClaim: str = ""
    customerName: str = ""
    customerWebId: str = ""
    userId: str = ""
    parameterCacheId: str = ""
    timestamp: str = ""
    signature: str = ""
    secret: str = ""


_TEXT = {"text/plain": {"schema": {"type": "string"}}}


@router.post(
    ACTIVATE_PATH,
    tags=["onOffice marketplace"],
    summary="Activate the connector for a customer (form post of the activation page)",
    description="Verifies the signed parameters, calls onOffice `do unlockProvider` with "
    "token=`apiToken`, the pasted `secret`, `parameterCacheId` and extendedclaim=`apiClaim`, "
    "and stores the customer with encrypted credentials. Answers `active` as text/plain on "
    "success; any other text (starting with `error:`) is a failure. A failed attempt does not "
    "use up the signed URL, so the key can be corrected and sent again.",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"example": "active"}}},
        400: {
            "content": _TEXT,
            "description": "Missing or rejected API key, unknown "
            "parameterCacheId, or onOffice refused the activation.",
        },
        401: {"content": _TEXT, "description": "The signed parameters were rejected."},
        502: {"content": _TEXT, "description": "onOffice is not reachable."},
        503: {"content": _TEXT, "description": "ONOFFICE_PROVIDER_SECRET is not configured."},
    },
)
async def activate(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    _form: Annotated[ActivationForm, Form()],
) -> PlainTextResponse:
    form = await request.form()
    pairs = [(k, v) for k, v in form.multi_items() if k != "secret" and isinstance(v, str)]
    secret = form.get("secret")
    try:
        signed = verify_signed_params(
            pairs,
            settings=resources.settings,
            path=ACTIVATE_PATH,
            required=ACTIVATION_REQUIRED,
        )
        await tenant_service.activate(
            session,
            resources=resources,
            signed=signed,
            secret=secret if isinstance(secret, str) else "",
        )
    except AppError as exc:
        language = pick_language(
            str(form.get("UserLanguage") or ""),
            request.headers.get("accept-language"),
            default=Language.en,
        )
        message = exc.render(language)
        text = message if message.startswith("error:") else f"error: {message}"
        return PlainTextResponse(text, status_code=exc.status_code)
    return PlainTextResponse("active")


# -- service iframe and sessions ---------------------------------------------------------------


@router.get(
    APP_PATH,
    tags=["onOffice marketplace"],
    summary="Settings and status UI (the service iframe in onOffice)",
    description="Verifies the signed URL, stores its `apiClaim` as the customer's latest claim "
    "and serves the UI, which exchanges the same signed query for a bearer token at "
    "`POST /api/v1/sessions`.",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}},
        **PAGE_SIGNED_URL_ERRORS,
        403: {"content": {"text/html": {}}, "description": "The connector is deactivated."},
        404: {"content": {"text/html": {}}, "description": "The customer never activated it."},
    },
)
async def app_page(request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    signed = verify_signed_params(
        _query_pairs(request), settings=settings, path=APP_PATH, required=IFRAME_REQUIRED
    )
    language = pages.pick_language(
        signed.get("UserLanguage"), request.headers.get("accept-language")
    )
    try:
        await tenant_service.open_app(
            session, settings=settings, signed=signed, purpose=Purpose.iframe
        )
    except (TenantNotActivated, TenantDeactivated) as exc:
        texts = pages.TEXTS[language]
        key = "deactivated" if isinstance(exc, TenantDeactivated) else "not_activated"
        return pages.render(
            request,
            "onoffice_message.html",
            language,
            {"title": texts["not_activated_title"], "message": texts[key]},
            status_code=exc.status_code,
        )
    return pages.render(
        request,
        "onoffice_app.html",
        language,
        {"query": request.url.query, "api_base": settings.PUBLIC_BASE_URL.rstrip("/")},
    )


@router.post(
    "/api/v1/sessions",
    tags=["sessions"],
    summary="Exchange the signed iframe query for a bearer token",
    description="`query` must be the query string onOffice signed for `/onoffice/app`. Each "
    "signed query can be exchanged once. The token is bound to customerWebId, groupId (when "
    "present) and userId, and is valid for SESSION_TTL_S seconds.",
    response_model=SessionToken,
    status_code=201,
    responses={**SIGNED_URL_ERRORS, **TENANT_ERRORS},
)
async def create_session(
    body: SessionCreate, session: SessionDep, resources: ResourcesDep
) -> SessionToken:
    signed = verify_signed_params(
        parse_query(body.query),
        settings=resources.settings,
        path=APP_PATH,
        required=IFRAME_REQUIRED,
    )
    token, expires_at = await tenant_service.create_session(
        session, resources=resources, signed=signed
    )
    return SessionToken(token=token, expires_at=expires_at)


@router.get(
    "/api/v1/session",
    tags=["sessions"],
    summary="Who is signed in (customer, group and user of the bearer token)",
    response_model=SessionInfo,
    responses=BEARER_ERRORS,
)
async def read_session(context: CurrentTenant, session: SessionDep) -> SessionInfo:
    tenant = await tenant_service.get_tenant(session, context)
    return SessionInfo(
        tenant_id=context.tenant_id,
        customer_web_id=context.customer_web_id,
        customer_name=tenant.customer_name,
        group_id=context.group_id,
        user_id=context.user_id,
    )


# -- marketplace webhook -----------------------------------------------------------------------


@router.get(
    WEBHOOK_PATH,
    tags=["onOffice marketplace"],
    summary='Marketplace webhook "address saved"',
    description="Signed like the iframe URL, plus the address id in the parameter named by "
    "ONOFFICE_WEBHOOK_ID_PARAM (default `recordId`). The event is stored and acknowledged "
    "at once; it is processed asynchronously. A repeated delivery of the same signed URL is "
    "acknowledged with `duplicate: true` and not stored again.",
    response_model=WebhookAccepted,
    responses={
        400: {**_ERROR, "description": "The address id parameter is missing or not a number."},
        **SIGNED_URL_ERRORS,
        **TENANT_ERRORS,
    },
)
async def address_webhook(
    request: Request, session: SessionDep, settings: SettingsDep
) -> WebhookAccepted:
    signed = verify_signed_params(
        _query_pairs(request), settings=settings, path=WEBHOOK_PATH, required=WEBHOOK_REQUIRED
    )
    event_id = await tenant_service.record_address_webhook(
        session, settings=settings, signed=signed
    )
    return WebhookAccepted(duplicate=event_id is None)
