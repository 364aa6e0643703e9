"""Every string of the settings/status page (the service iframe), from the one catalogue.

The template renders the static labels from it and hands the whole dictionary to the page's
JavaScript for everything it shows later. `{name}` marks a placeholder the script fills in.
The texts themselves live in app/i18n/catalogue.py under `ui.*`.
"""

from __future__ import annotations

from typing import Final

from app.i18n import LANGUAGES, texts

APP_TEXTS: Final[dict[str, dict[str, str]]] = {lang: texts(lang, "ui.") for lang in LANGUAGES}
