"""The HTML pages onOffice shows in its iframes (German and English, no external assets)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import Settings
from app.ui.texts import APP_TEXTS

Language = Literal["de", "en"]

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


TEXTS: dict[Language, dict[str, str]] = {
    "de": {
        "activate_title": "Newsletter Connector aktivieren",
        "activate_intro": "Bitte fügen Sie den API-Schlüssel ein, den onOffice Ihnen im "
        "Marketplace anzeigt, und klicken Sie auf „Jetzt aktivieren“.",
        "customer": "Kunde",
        "api_key": "API-Schlüssel",
        "activate_button": "Jetzt aktivieren",
        "activating": "Aktivierung läuft …",
        "activated": "Der Newsletter Connector ist aktiviert.",
        "failed": "Die Aktivierung ist fehlgeschlagen:",
        "network_error": "Der Dienst ist nicht erreichbar. Bitte versuchen Sie es erneut.",
        "app_title": "Newsletter Connector",
        "loading": "Anmeldung läuft …",
        "signed_in_as": "Angemeldet für",
        "user": "Benutzer",
        "group": "Gruppe",
        "session_failed": "Die Anmeldung ist fehlgeschlagen:",
        "not_activated_title": "Newsletter Connector nicht aktiviert",
        "not_activated": "Der Newsletter Connector ist für diesen Kunden noch nicht aktiviert. "
        "Bitte aktivieren Sie ihn zuerst im onOffice Marketplace.",
        "deactivated": "Der Newsletter Connector ist für diesen Kunden deaktiviert. Bitte "
        "aktivieren Sie ihn erneut im onOffice Marketplace.",
    },
    "en": {
        "activate_title": "Activate the Newsletter Connector",
        "activate_intro": "Please paste the API key that onOffice shows you in the Marketplace "
        'and click "Activate now".',
        "customer": "Customer",
        "api_key": "API key",
        "activate_button": "Activate now",
        "activating": "Activating …",
        "activated": "The Newsletter Connector is active.",
        "failed": "The activation failed:",
        "network_error": "The service cannot be reached. Please try again.",
        "app_title": "Newsletter Connector",
        "loading": "Signing in …",
        "signed_in_as": "Signed in for",
        "user": "User",
        "group": "Group",
        "session_failed": "Signing in failed:",
        "not_activated_title": "Newsletter Connector not activated",
        "not_activated": "The Newsletter Connector has not been activated for this customer "
        "yet. Please activate it in the onOffice Marketplace first.",
        "deactivated": "The Newsletter Connector is deactivated for this customer. Please "
        "activate it again in the onOffice Marketplace.",
    },
}

_ENGLISH = {"en", "eng"}
_GERMAN = {"de", "deu", "ger"}


def pick_language(user_language: str | None, accept_language: str | None) -> Language:
    """onOffice's `UserLanguage` (e.g. DEU, ENG) first, then Accept-Language, else German."""
    if user_language:
        code = user_language.strip().lower().split("-")[0].split("_")[0]
        if code in _ENGLISH:
            return "en"
        if code in _GERMAN:
            return "de"
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code == "en":
            return "en"
        if code == "de":
            return "de"
    return "de"


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
