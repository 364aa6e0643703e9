"""Golden tests of the message catalogue: both languages complete, every used key present."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from app.i18n import LANGUAGES, encode, has_key, placeholders, render_stored, t
from app.i18n import reasons as reason_codes
from app.i18n.catalogue import CATALOGUE
from app.i18n.reasons import render_reason
from app.webhooks.activities import activity_note as _note
from providers.base import ProviderEvent, ProviderEventType, RejectReason

APP = Path(__file__).resolve().parents[2] / "app"
# Texts that are the same word in both languages.
SAME_IN_BOTH = {
    "page.app_title", "ui.title", "ui.none", "ui.sync_title", "ui.sync_run", "ui.status_title",
    "ui.signed_in", "ui.progress_live", "ui.batches_of", "ui.progress_of", "ui.status_page",
    "landing.title", "landing.version", "landing.demo_title", "ui.col_status", "ui.col_email",
    "reason.legacy", "err.provider_limit", "cli.summary_title", "activity.hard_bounce",
    "cli.where", "landing.links",
}  # fmt: skip


def test_both_languages_have_the_same_keys() -> None:
    assert set(LANGUAGES) == set(CATALOGUE)
    assert set(CATALOGUE["de"]) == set(CATALOGUE["en"]), set(CATALOGUE["de"]) ^ set(CATALOGUE["en"])


@pytest.mark.parametrize("key", sorted(CATALOGUE["en"]))
def test_entries_are_complete_and_translated(key: str) -> None:
    de, en = CATALOGUE["de"][key], CATALOGUE["en"][key]
    assert de.strip() and en.strip(), key
    assert placeholders(de) == placeholders(en), key
    if key not in SAME_IN_BOTH:
        assert de != en, f"{key} is not translated"


def test_every_key_the_code_uses_exists() -> None:
    """String literals that look like catalogue keys (err.*, run.*, ui.*, …) in app/."""
    used: set[str] = set()
    pattern = re.compile(r"[\"'@]((?:err|run|reason|activity|cli|ui|landing|page)\.[a-z_.]+)[\"']")
    for path in APP.rglob("*.py"):
        if path.parent.name == "i18n" and path.name in ("catalogue.py", "de.py", "en.py"):
            continue
        used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert used, "no keys found"
    missing = sorted(k for k in used if not has_key(k) and not k.endswith((".", ".html", ".py")))
    assert not missing, missing


def test_every_reason_code_has_a_text() -> None:
    codes = [v for k, v in vars(reason_codes).items() if k.isupper() and isinstance(v, str)]
    codes += sorted(reason_codes.HELD_BACK_CODES)
    for code in codes:
        assert has_key(f"reason.{code}"), code


@pytest.mark.parametrize(
    "email",
    ["no-at-sign.example.de", "a@@b.de", "@example.de", "anna@", "anna@example", "an na@ex.de",
     "anna@exa_mple.de", "anna..b@example.de", "anna@-ex.de"],
)  # fmt: skip
def test_validator_messages_map_to_translated_codes(email: str) -> None:
    with pytest.raises(EmailNotValidError) as info:
        validate_email(email, check_deliverability=False)
    code = reason_codes.email_reason(str(info.value))
    assert has_key(f"reason.{code}"), code
    german = render_reason("de", "invalid_email", code, None, str(info.value))
    assert german == CATALOGUE["de"][f"reason.{code}"]
    # The validator's English message is no detail on the German page (it is in English).
    assert reason_codes.problem_detail("invalid_email", code, str(info.value), "de") == ""
    assert reason_codes.problem_detail("invalid_email", code, str(info.value), "en")


def test_provider_rejections_are_translated_and_keep_the_text() -> None:
    text = "Member In Compliance State: a@b.de is in a compliance state"
    code = reason_codes.rejection_code(RejectReason.compliance)
    assert code == "provider_compliance"
    params = {"provider": "Mailchimp", "repeat": True}
    assert render_reason("de", "rejected", code, params, text).endswith(
        "(unverändert seit dem letzten Versuch)"
    )
    assert reason_codes.problem_detail("rejected", code, text, "en", params) == (
        f"Original message of Mailchimp: {text}"
    )
    assert reason_codes.rejection_code(RejectReason.unknown) == "provider_rejected"
    assert reason_codes.rejection_code(None) == "provider_rejected"


@pytest.mark.parametrize("reason", list(RejectReason))
def test_every_rejection_code_of_the_boundary_has_a_text(reason: RejectReason) -> None:
    code = reason_codes.rejection_code(reason)
    assert code in reason_codes.PROVIDER_CODES
    assert has_key(f"reason.{code}"), code
    assert CATALOGUE["de"][f"reason.{code}"] != CATALOGUE["en"][f"reason.{code}"]


def test_stored_messages_render_per_language() -> None:
    stored = encode("run.stale_held_back", stale=80, allowed=50)
    assert render_stored("de", stored).startswith("80 früher synchronisierte Kontakte")  # type: ignore[union-attr]
    assert render_stored("en", stored).startswith("80 contacts synced earlier")  # type: ignore[union-attr]
    assert render_stored("de", "plain old text") == "plain old text"
    # A parameter can name another entry, rendered in the same language.
    assert "läuft" in t("de", "err.sync_active", run=3, status="@ui.st_running")


def test_activity_notes_follow_the_customer_language() -> None:
    event = ProviderEvent(
        type=ProviderEventType.unsubscribe,
        email="a@b.de",
        reason="manual",
        raw_type="unsubscribe",
        dedupe_key="k",
    )
    assert _note("mailchimp", event, "de") == "Mailchimp: Newsletter abgemeldet – Grund: manual"
    assert _note("mailchimp", event, "en") == "Mailchimp: Newsletter unsubscribed – Reason: manual"
