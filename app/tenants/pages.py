"""The HTML pages onOffice shows in its iframes (German and English, no external assets)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import Settings
from app.i18n import LANGUAGES, Language, texts
from app.i18n import pick_language as i18n_pick_language
from app.ui.texts import APP_TEXTS

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "ui" / "templates")

# Optional styling onOffice publishes for activation iframes; the page works without it.
ONOFFICE_UNLOCK_CSS = (
    "https://smart.onoffice.de/smart/gui/smart/resources/css/layout/smart/themes/marketplace/"
    "marketplaceUnlockIFrame.css"
)

# The URLs carry the customer's API token and claim: keep them out of caches and Referer headers.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings, nonce: str) -> str:
    """Only our own script (by nonce) and API, onOffice's stylesheet, and framing by onOffice
    (ONOFFICE_FRAME_ANCESTORS) only."""
    api = _origin(settings.PUBLIC_BASE_URL)
    ancestors = " ".join(settings.ONOFFICE_FRAME_ANCESTORS.split()) or "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            f"style-src 'self' 'unsafe-inline' {_origin(ONOFFICE_UNLOCK_CSS)}",
            "img-src 'self' data:",
            f"connect-src 'self' {api}",
            f"form-action 'self' {api}",
            "base-uri 'none'",
            f"frame-ancestors {ancestors}",
        ]
    )


# The activation and message pages' texts (catalogue keys `page.*`).
TEXTS: dict[Language, dict[str, str]] = {lang: texts(lang, "page.") for lang in LANGUAGES}


def pick_language(user_language: str | None, accept_language: str | None) -> Language:
    """onOffice's `UserLanguage` (e.g. DEU, ENG) first, then Accept-Language, else German."""
    return i18n_pick_language(user_language, accept_language, default=Language.de)


def render(
    request: Request,
    template: str,
    language: Language,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    settings: Settings = request.app.state.resources.settings
    nonce = secrets.token_urlsafe(16)
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "lang": language,
            "t": TEXTS[language],
            "ui": APP_TEXTS[language],
            "csp_nonce": nonce,
            "onoffice_origin": settings.ONOFFICE_ORIGIN,
            **context,
        },
        status_code=status_code,
        headers={
            **PAGE_HEADERS,
            "Content-Security-Policy": content_security_policy(settings, nonce),
        },
    )
