# ruff: noqa: E501 - texts are one line each, like de.py and en.py
"""The texts of the status page's list of unconfirmed provider events, in both languages (kept
apart from de.py/en.py, which are near their size limit; merged into `app.i18n.catalogue`).

`ui.uc_claim_<kind>`: what the webhook claimed (the event kinds `app.contacts.confirm`
confirms); `ui.uc_shown_<status>`: what the provider showed (`app.contacts.confirm.shown_in`).
"""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, dict[str, str]]] = {
    "de": {
        "ui.s_unconfirmed_list": "Nicht bestätigte Ereignisse",
        "ui.s_unconfirmed_hint": "Webhooks, denen der aktuelle Stand beim Newsletter-Dienst widersprach (gefälscht oder durch eine spätere Änderung überholt). Es wurde nichts geändert. Die neuesten:",
        "ui.s_unconfirmed_item": "{time} · {email}: gemeldet „{claimed}“, {provider} zeigte „{shown}“",
        "ui.s_unconfirmed_more": "… und {count} ältere",
        "ui.uc_claim_subscribe": "Anmeldung",
        "ui.uc_claim_unsubscribe": "Abmeldung",
        "ui.uc_claim_profile": "Profiländerung",
        "ui.uc_claim_email_changed": "E-Mail-Änderung auf {new}",
        "ui.uc_claim_deleted": "Archivierung/Löschung",
        "ui.uc_claim_cleaned": "Bounce (bereinigt)",
        "ui.uc_shown_subscribed": "angemeldet",
        "ui.uc_shown_unsubscribed": "abgemeldet",
        "ui.uc_shown_blacklisted": "gesperrt (Blacklist)",
        "ui.uc_shown_cleaned": "bereinigt (Bounce)",
        "ui.uc_shown_archived": "archiviert",
        "ui.uc_shown_not_in_list": "nicht in der Liste",
        "ui.uc_shown_pending": "Bestätigung ausstehend",
        "ui.uc_shown_transactional": "nur Transaktionsmails",
        "ui.uc_shown_none": "keinen solchen Kontakt",
        "ui.uc_shown_unknown": "einen unbekannten Stand",
    },
    "en": {
        "ui.s_unconfirmed_list": "Events not confirmed",
        "ui.s_unconfirmed_hint": "Webhooks the newsletter service's current state contradicted (forged, or overtaken by a later change). Nothing was changed. The newest:",
        "ui.s_unconfirmed_item": "{time} · {email}: claimed “{claimed}”, {provider} showed “{shown}”",
        "ui.s_unconfirmed_more": "… and {count} older ones",
        "ui.uc_claim_subscribe": "sign-up",
        "ui.uc_claim_unsubscribe": "unsubscribe",
        "ui.uc_claim_profile": "profile change",
        "ui.uc_claim_email_changed": "email change to {new}",
        "ui.uc_claim_deleted": "archive/delete",
        "ui.uc_claim_cleaned": "bounce (cleaned)",
        "ui.uc_shown_subscribed": "subscribed",
        "ui.uc_shown_unsubscribed": "unsubscribed",
        "ui.uc_shown_blacklisted": "blacklisted",
        "ui.uc_shown_cleaned": "cleaned (bounce)",
        "ui.uc_shown_archived": "archived",
        "ui.uc_shown_not_in_list": "not in the list",
        "ui.uc_shown_pending": "awaiting confirmation",
        "ui.uc_shown_transactional": "transactional only",
        "ui.uc_shown_none": "no such contact",
        "ui.uc_shown_unknown": "an unknown state",
    },
}  # fmt: skip
