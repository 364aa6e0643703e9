"""Why an address was not synced: a stable code stored with the problem, text per language.

The sync stores `problem.reason_code` (+ `reason_params`) and keeps the raw validator or
provider text in `problem.reason` as the detail. The API, the UI and the CSV render
`reason.<code>` from the catalogue in the reader's language. A new code only needs its
`reason.<code>` entry in both languages of the catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.i18n import has_key, t

MISSING_EMAIL = "missing_email"
INVALID_EMAIL = "invalid_email"
DUPLICATE = "duplicate"
HELD_BACK_UNSUBSCRIBED = "held_back_unsubscribed"
PROVIDER_REJECTED = "provider_rejected"
PROVIDER_NO_RESULT = "provider_no_result"
LEGACY = "legacy"
# Consent outcomes of the full sync (app.contacts.rules).
OPTED_OUT_PROVIDER = "opted_out_provider"
REMOVED_PROVIDER = "removed_provider"
BOUNCED_PROVIDER = "bounced_provider"
ARCHIVED_PROVIDER = "archived_provider"
PENDING_OPTIN = "pending_optin"
OPTED_OUT_DURING_SYNC = "opted_out_during_sync"
# One person across duplicates (app.contacts.person).
OPTED_OUT_ONOFFICE = "opted_out_onoffice"
DUPLICATE_CONFLICT = "duplicate_conflict"

# Codes of contacts the connector holds back on purpose (consent rules), shown with their
# count on the status card; add a code here when a new rule holds contacts back.
HELD_BACK_CODES: set[str] = {
    HELD_BACK_UNSUBSCRIBED,
    OPTED_OUT_PROVIDER,
    REMOVED_PROVIDER,
    BOUNCED_PROVIDER,
    ARCHIVED_PROVIDER,
    PENDING_OPTIN,
    OPTED_OUT_DURING_SYNC,
}
# Problem kinds whose codes may hold contacts back.
HELD_BACK_KINDS = ("rejected", "opted_out", "pending_optin", "bounced", "archived")


def email_reason(message: str) -> str:
    """The code for an email-validator message (its English text stays the detail)."""
    text = message.lower()
    if "too long" in text:
        return "invalid_email.length"
    if "space" in text or "whitespace" in text:
        return "invalid_email.spaces"
    if "@-sign" in text and ("must have" in text or "exactly one" in text):
        return "invalid_email.at_sign"
    if "before the @-sign" in text and "invalid characters" not in text:
        return "invalid_email.local"
    if "after the @-sign" in text or "period" in text or "domain" in text:
        return "invalid_email.domain"
    if "invalid character" in text or "not allowed" in text:
        return "invalid_email.characters"
    return INVALID_EMAIL


def provider_reason(text: str | None) -> str:
    """The code for a provider's rejection text (the text itself stays the detail)."""
    lowered = (text or "").lower()
    if "no result" in lowered:
        return PROVIDER_NO_RESULT
    if "compliance state" in lowered:
        return "provider_compliance"
    if "permanently deleted" in lowered or "forgotten" in lowered:
        return "provider_forgotten"
    if "tags could not be set" in lowered:
        return "provider_tags"
    if "invalid" in lowered and ("email" in lowered or "e-mail" in lowered):
        return "provider_invalid_email"
    if "fake" in lowered:
        return "provider_invalid_email"
    return PROVIDER_REJECTED


def code_for(kind: str, code: str, detail: str) -> str:
    """The code to render: rows stored before codes existed fall back by kind."""
    if code:
        return code
    if kind == MISSING_EMAIL:
        return MISSING_EMAIL
    return LEGACY


def render_reason(
    lang: str, kind: str, code: str, params: Mapping[str, Any] | None, detail: str
) -> str:
    key = f"reason.{code_for(kind, code, detail)}"
    values = dict(params or {})
    if not has_key(key):
        key = f"reason.{PROVIDER_REJECTED}" if kind == "rejected" else f"reason.{INVALID_EMAIL}"
    text = t(lang, key, detail=detail, **{k: v for k, v in values.items() if k != "repeat"})
    if values.get("repeat"):
        text = f"{text} {t(lang, 'reason.repeat')}"
    return text


# Codes whose stored text is the newsletter service's own message (shown as the labelled
# original next to the translated reason). Every other stored text is the connector's own
# English wording of the reason, which the translated reason already says.
PROVIDER_CODES = frozenset(
    {
        PROVIDER_REJECTED,
        PROVIDER_NO_RESULT,
        "provider_compliance",
        "provider_forgotten",
        "provider_tags",
        "provider_invalid_email",
    }
)


def problem_detail(kind: str, code: str, detail: str, lang: str = "en") -> str:
    """The provider's own text shown as the labelled original next to the translated reason
    ("" when there is none). The email validator's messages are English: shown in English only;
    the connector's own (English) wording of a reason is never shown (issue 20: no stray English
    on the German page)."""
    resolved = code_for(kind, code, detail)
    if resolved in PROVIDER_CODES:
        # A repeated rejection's stored text carries the connector's note (translated in the
        # reason as `reason.repeat`).
        return detail.removesuffix(" (unchanged since the last attempt)")  # app.syncs.classify
    if lang == "en" and resolved.startswith(INVALID_EMAIL):
        return detail
    return ""
