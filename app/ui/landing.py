"""The page at `/`: what this service is, its version and health, where to look next.

In demo mode (`connector demo` / `make run`) it also hands out fresh signed iframe links for the
demo customer (a button: signed links work once).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from app import __version__
from app.config import Environment
from app.deps import ResourcesDep
from app.errors import NotFound
from app.health.repository import ping_database
from app.i18n import LANGUAGES, Language, pick_language, texts
from app.tenants.pages import PAGE_HEADERS, TEMPLATES
from onoffice_client.signature import sign_url_params

router = APIRouter(tags=["operations"])

README = Path(__file__).resolve().parent.parent.parent / "README.md"
README_SECTIONS = [
    ("the-two-commands", "The two commands"),
    ("production", "Production"),
    ("configuration", "Configuration"),
    ("using-it", "Using it"),
    ("architecture", "Architecture"),
]


@dataclass(frozen=True)
class DemoCustomer:
    """The customer `connector demo` activated; the landing page signs iframe links for it."""

    customer_web_id: str
    customer_name: str
    user_id: str = "1"
    api_claim: str = "demo-claim"


def demo_iframe_url(base_url: str, secret: str, demo: DemoCustomer, language: str) -> str:
    params = {
        "customerWebId": demo.customer_web_id,
        "customerName": demo.customer_name,
        "userId": demo.user_id,
        "apiClaim": demo.api_claim,
        "timestamp": str(int(time.time())),
        "UserLanguage": "ENG" if language == "en" else "DEU",
    }
    params["signature"] = sign_url_params(f"{base_url}/onoffice/app", params, secret)
    return f"{base_url}/onoffice/app?{urlencode(params)}"


async def _healthy(resources: ResourcesDep) -> bool:
    async def probe() -> None:
        await ping_database(resources.engine)
        await resources.queue.ping()

    try:
        await asyncio.wait_for(probe(), 3.0)
    except Exception:
        return False
    return True


LANDING_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@router.get("/", summary="Landing page", response_class=HTMLResponse, include_in_schema=False)
async def landing(request: Request, resources: ResourcesDep) -> HTMLResponse:
    query, header = request.query_params.get("lang"), request.headers.get("accept-language")
    lang = pick_language(query, header, default=Language.en)
    demo: DemoCustomer | None = getattr(request.app.state, "demo", None)
    settings = resources.settings
    if demo is not None:
        mode = "mode_demo"
    elif Environment.production == settings.ENV:
        mode = "mode_production"
    else:
        mode = "mode_embedded" if settings.REDIS_URL is None else "mode_production"
    other = next(code for code in LANGUAGES if code != lang)
    nonce = secrets.token_urlsafe(16)
    production = Environment.production == settings.ENV
    return TEMPLATES.TemplateResponse(
        request,
        "landing.html",
        {
            "lang": lang,
            "other_lang": other,
            "l": texts(lang, "landing."),
            "t": texts(lang, "page."),
            "version": __version__,
            "healthy": await _healthy(resources),
            "mode": mode,
            "demo": demo is not None,
            "readme": README.exists(),
            "sections": README_SECTIONS,
            "csp_nonce": nonce,
            "docs": not production,
            "metrics": not production
            or bool(settings.METRICS_TOKEN and settings.METRICS_TOKEN.get_secret_value()),
        },
        # Never framed (the demo button is no clickjacking target); only its own script.
        headers={**PAGE_HEADERS, "Content-Security-Policy": LANDING_CSP.format(nonce=nonce)},
    )


@router.post("/demo/iframe-link", include_in_schema=False)
async def demo_link(request: Request, resources: ResourcesDep) -> JSONResponse:
    """A fresh signed iframe URL for the demo customer (demo mode only)."""
    demo: DemoCustomer | None = getattr(request.app.state, "demo", None)
    secret = resources.settings.ONOFFICE_PROVIDER_SECRET
    if demo is None or secret is None:
        raise NotFound("err.not_found")
    lang = pick_language(request.query_params.get("lang"), None, default=Language.de)
    base = resources.settings.PUBLIC_BASE_URL.rstrip("/")
    url = demo_iframe_url(base, secret.get_secret_value(), demo, lang)
    return JSONResponse({"url": url}, headers=PAGE_HEADERS)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """No icon (and no 404 in every browser console)."""
    return Response(status_code=204)


@router.get("/readme", include_in_schema=False)
async def readme() -> Response:
    if not README.exists():
        raise NotFound("err.not_found")
    content = await asyncio.to_thread(README.read_text, encoding="utf-8")
    return PlainTextResponse(content, media_type="text/markdown; charset=utf-8")
