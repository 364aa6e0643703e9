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

from app.i18n import de, en, unconfirmed

CATALOGUE: Final[dict[str, dict[str, str]]] = {
    lang: texts | unconfirmed.TEXTS[lang] for lang, texts in (("de", de.TEXTS), ("en", en.TEXTS))
}
