"""The one message catalogue: every text a user can see, in German and English.

Keys are flat and dotted by area: `page.*` (activation and message pages), `ui.*` (the service
iframe), `landing.*` (the page at `/`), `err.*` (API and page errors, `AppError(key)`), `run.*`
(a sync run's error and warning), `reason.*` (why an address was not synced, by reason code),
`activity.*` (notes written to onOffice activities), `webhook.*` (what the webhook health
check repaired) and `cli.*`. `{name}` marks a placeholder.
Adding a reason code means adding `reason.<code>` to both languages;
tests/i18n/test_catalogue.py checks that both languages have the same keys and placeholders.
"""

from __future__ import annotations

from typing import Final

from app.i18n import de, en, history, security, trust, unconfirmed

# The consent history and decision lists, the onOffice access texts, the numbers, preview and
# attention panel texts and the unconfirmed events' texts keep their own modules.
CATALOGUE: Final[dict[str, dict[str, str]]] = {
    "de": de.TEXTS | history.DE | security.DE | trust.DE | unconfirmed.TEXTS["de"],
    "en": en.TEXTS | history.EN | security.EN | trust.EN | unconfirmed.TEXTS["en"],
}
