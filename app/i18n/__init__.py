"""German and English texts from one catalogue (`app/i18n/catalogue.py`).

* `t(lang, key, **params)` renders one entry; a missing key is a programming error caught by the
  catalogue tests, and renders as the key itself rather than failing a request.
* `encode(key, **params)` stores a message in a text column (a run's error or warning) so that it
  can be rendered later in the reader's language by `render_stored(lang, text)`; plain text that
  was stored before keys existed is shown as it is.
* A parameter value "@key" is rendered from the catalogue in the same language.
* `pick_language()` chooses from onOffice's `UserLanguage` and then `Accept-Language`.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from app.i18n.catalogue import CATALOGUE


class Language(StrEnum):
    """The two languages of the UI, the texts and the greetings (one type for all of app/)."""

    de = "de"
    en = "en"


LANGUAGES: tuple[Language, ...] = (Language.de, Language.en)
ENCODED_PREFIX = "i18n:"

_ENGLISH = {"en", "eng"}
_GERMAN = {"de", "deu", "ger"}


def has_key(key: str) -> bool:
    return key in CATALOGUE["en"]


def _format(template: str, params: Mapping[str, Any]) -> str:
    if not params:
        return template
    try:
        return template.format_map(_Defaults(params))
    except (ValueError, IndexError):  # a stray brace in a param-free template
        return template


class _Defaults(dict[str, Any]):
    """format_map helper: an unknown placeholder stays visible instead of raising."""

    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


def t(lang: str, key: str, /, **params: Any) -> str:
    texts = CATALOGUE.get(lang) or CATALOGUE["en"]
    template = texts.get(key)
    if template is None:
        return key
    # A parameter "@other.key" is itself rendered in the same language (e.g. a status word).
    values = {
        name: t(lang, value[1:])
        if isinstance(value, str) and value[1:2] and value[0] == "@" and has_key(value[1:])
        else value
        for name, value in params.items()
    }
    return _format(template, values)


def texts(lang: str, prefix: str) -> dict[str, str]:
    """Every entry under `prefix` (e.g. "ui.") with the prefix removed (for templates/JS)."""
    source = CATALOGUE.get(lang) or CATALOGUE["en"]
    return {k[len(prefix) :]: v for k, v in source.items() if k.startswith(prefix)}


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def encode(key: str, /, **params: Any) -> str:
    """A message to store in a text column and render later in the reader's language."""
    return ENCODED_PREFIX + json.dumps({"k": key, "p": params}, separators=(",", ":"))


def decode(text: str | None) -> tuple[str, dict[str, Any]] | None:
    """(key, params) of an `encode`d message; None for plain text."""
    if text is None or not text.startswith(ENCODED_PREFIX):
        return None
    try:
        data = json.loads(text[len(ENCODED_PREFIX) :])
        return str(data["k"]), dict(data.get("p") or {})
    except (ValueError, KeyError, TypeError):
        return None


def render_stored(lang: str, text: str | None) -> str | None:
    found = decode(text)
    if found is None:
        return text
    try:
        return t(lang, found[0], **found[1])
    except (ValueError, KeyError, TypeError):
        return text


def pick_language(
    user_language: str | None, accept_language: str | None, default: Language = Language.de
) -> Language:
    """onOffice's `UserLanguage` (e.g. DEU, ENG) first, then Accept-Language, else `default`."""
    if user_language:
        code = user_language.strip().lower().split("-")[0].split("_")[0]
        if code in _ENGLISH:
            return Language.en
        if code in _GERMAN:
            return Language.de
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code == "en":
            return Language.en
        if code == "de":
            return Language.de
    return default
