"""Why an address was not synced: a stable code stored with the problem, text per language.

The sync stores `problem.reason_code` (+ `reason_params`) and keeps the raw validator or
provider text in `problem.reason` as the detail. A provider's rejection arrives as a code
(`providers.base.RejectReason`, which each provider maps from its own words) plus its words;
the code is stored (`rejection_code`), the words are shown only as the labelled original.
The API, the UI and the CSV render `reason.<code>` from the catalogue in the reader's
language. A new code only needs its `reason.<code>` entry in both languages of the catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.i18n import decode, encode, has_key, t
from providers.base import RejectReason

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


# A provider's rejection code (`providers.base.RejectReason`, mapped from the provider's own
# words by the provider's table) -> the reason code stored with the problem. The codes stored
# before `RejectReason` existed are the same strings, so their rows still render.
PROVIDER_COMPLIANCE = "provider_compliance"
PROVIDER_FORGOTTEN = "provider_forgotten"
PROVIDER_TAGS = "provider_tags"
PROVIDER_INVALID_EMAIL = "provider_invalid_email"
PROVIDER_BLACKLISTED = "provider_blacklisted"
PROVIDER_RATE_LIMITED = "provider_rate_limited"
PROVIDER_MERGE_FIELD = "provider_merge_field"
PROVIDER_DUPLICATE = "provider_duplicate"
PROVIDER_INVALID_REQUEST = "provider_invalid_request"
REJECTION_CODES: Mapping[RejectReason, str] = {
    RejectReason.invalid_email: PROVIDER_INVALID_EMAIL,
    RejectReason.compliance: PROVIDER_COMPLIANCE,
    RejectReason.forgotten: PROVIDER_FORGOTTEN,
    RejectReason.blacklisted: PROVIDER_BLACKLISTED,
    RejectReason.rate_limited: PROVIDER_RATE_LIMITED,
    RejectReason.merge_field: PROVIDER_MERGE_FIELD,
    RejectReason.duplicate: PROVIDER_DUPLICATE,
    RejectReason.invalid_request: PROVIDER_INVALID_REQUEST,
    RejectReason.tags: PROVIDER_TAGS,
    RejectReason.no_result: PROVIDER_NO_RESULT,
    RejectReason.unknown: PROVIDER_REJECTED,
}


def rejection_code(code: RejectReason | None) -> str:
    """The stored reason code of a provider's rejection (no code: a plain rejection)."""
    return REJECTION_CODES.get(code, PROVIDER_REJECTED) if code else PROVIDER_REJECTED


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
    extra = {k: v for k, v in values.items() if k not in ("repeat", "detail")}
    text = t(lang, key, detail=detail, **extra)
    if values.get("repeat"):
        text = f"{text} {t(lang, 'reason.repeat')}"
    return text


# Codes whose stored text is the newsletter service's own message (shown as the labelled
# original next to the translated reason). Every other stored text is the connector's own
# English wording of the reason, which the translated reason already says.
PROVIDER_CODES = frozenset(REJECTION_CODES.values())


def problem_detail(
    kind: str,
    code: str,
    detail: str,
    lang: str = "en",
    params: Mapping[str, Any] | None = None,
) -> str:
    """The provider's own text as the labelled original next to the translated reason
    ("Originalmeldung von Mailchimp: …"; "" when there is none). The email validator's messages
    are English: shown in English only; the connector's own (English) wording of a reason is
    never shown (issue 20: no stray English on the German page)."""
    resolved = code_for(kind, code, detail)
    if resolved in PROVIDER_CODES:
        # Rows stored before `reason.repeat` existed carry the connector's note in the text.
        original = detail.removesuffix(" (unchanged since the last attempt)")
        if not original:
            return ""
        provider = (params or {}).get("provider")
        if provider:
            return t(lang, "reason.original", provider=provider, detail=original)
        return t(lang, "reason.original_unnamed", detail=original)
    if lang == "en" and resolved.startswith(INVALID_EMAIL):
        return detail
    return ""


def rejection_problem(
    code: RejectReason | None, detail: str | None, provider: str
) -> dict[str, Any]:
    """The reason columns of a problem row for a provider's rejection: the code, the provider's
    words as the detail, and its label for the labelled original."""
    return {
        "reason": detail or "",
        "reason_code": rejection_code(code),
        "reason_params": {"provider": provider},
    }


def stored_rejection(code: RejectReason | None, detail: str | None, provider: str) -> str:
    """The ledger's `rejected_reason` for a provider's rejection: the code with the provider's
    words, rendered later in the reader's language (`read_rejection`)."""
    return encode(f"reason.{rejection_code(code)}", detail=detail or "", provider=provider)


def read_rejection(stored: str | None) -> tuple[str, str, dict[str, Any]]:
    """(reason code, the provider's words, params) of a ledger's `rejected_reason`. Text stored
    before codes existed is a plain rejection whose text is the original."""
    found = decode(stored)
    if found is not None and found[0].startswith("reason."):
        key, params = found
        detail = str(params.pop("detail", "") or "")
        return key.removeprefix("reason."), detail, params
    return PROVIDER_REJECTED, stored or "", {}


def render_rejection(lang: str, stored: str | None) -> str:
    """A ledger's `rejected_reason` in `lang`: the reason, then the labelled original."""
    code, detail, params = read_rejection(stored)
    text = render_reason(lang, "rejected", code, params, detail)
    original = problem_detail("rejected", code, detail, lang, params)
    return f"{text} {original}" if original else text
