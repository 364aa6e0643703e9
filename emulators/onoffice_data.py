"""Address records, field configuration, filter engine and test-data generator of the
onOffice emulator (see `emulators.onoffice`)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

SALUTATIONS = {
    "Herr": "Herr",
    "Frau": "Frau",
    "Firma": "Firma",
    "Familie": "Familie",
    "Eheleute": "Eheleute",
}
NEWSLETTER_VALUES = {
    "0": "Nein",
    "1": "Ja",
    "2": "Absage",
    "3": "Double Opt-In ausstehend",
    "4": "keine Angabe",
    "5": "unbekannt",
}
NEWSLETTER_TAGS = {
    "Kaeufer": "Käufer",
    "Verkaeufer": "Verkäufer",
    "Mieter": "Mieter",
    "Vermieter": "Vermieter",
    "Investor": "Investor",
    "Gewerbe": "Gewerbe",
    "Neubau": "Neubauprojekte",
}
ORIGINS = {
    "Newsletter": "Newsletter",
    "webseite_system": "Webseite",
    "immobilienscout24_system": "ImmobilienScout24",
    "Empfehlung": "Empfehlung",
}
LANGUAGES = {"DEU": "Deutsch", "ENG": "Englisch", "FRA": "Französisch", "TUR": "Türkisch"}
STATUS_VALUES = {"1": "Aktiv", "0": "Archiviert"}

MULTISELECT_FIELDS = {"NewsletterTag": NEWSLETTER_TAGS, "HerkunftKontakt": ORIGINS}
SINGLESELECT_FIELDS = {
    "Anrede": SALUTATIONS,
    "newsletter_aktiv": NEWSLETTER_VALUES,
    "SpracheKontakt": LANGUAGES,
    "Status": STATUS_VALUES,
}
TEXT_FIELDS = {"Titel": 80, "Vorname": 80, "Name": 80, "Email": 100, "Benutzer": 80}
INTEGER_FIELDS = {"id", "KdNr", "Status", "newsletter_aktiv"}
WRITABLE_FIELDS = {"Anrede", "Titel", "Vorname", "Name", "SpracheKontakt", "Status"} | {
    "Benutzer",
    "newsletter_aktiv",
    *MULTISELECT_FIELDS,
}
CONTACT_TYPES = {"email", "email_private", "email_business"}

DEFAULT_ACTION_KINDS: list[dict[str, Any]] = [
    {
        "key": "Newsletter",
        "label": "Newsletter",
        "types": {
            "bestellt": "ordered",
            "nicht bestellt": "not ordered",
            "Double Opt-In versendet": "sent Double Opt-In",
            "versendet": "sent",
            "geöffnet": "opened",
            "geklickt": "clicked",
        },
    },
    {"key": "Email", "label": "E-Mail", "types": {"Ausgang": "outgoing", "Eingang": "incoming"}},
    {"key": "Sonstiges", "label": "Other", "types": []},
]


def field_config() -> dict[str, dict[str, Any]]:
    """`get fields` elements of the address module, with labels."""
    config: dict[str, dict[str, Any]] = {
        "id": {"type": "integer", "length": None, "permittedvalues": [], "label": "Datensatznr"},
        "KdNr": {"type": "integer", "length": None, "permittedvalues": [], "label": "KdNr"},
        "Aenderung": {
            "type": "datetime",
            "length": None,
            "permittedvalues": [],
            "label": "Änderung",
        },
    }
    for name, length in TEXT_FIELDS.items():
        config[name] = {"type": "varchar", "length": length, "permittedvalues": [], "label": name}
    for name, values in SINGLESELECT_FIELDS.items():
        config[name] = {"type": "singleselect", "length": None, "permittedvalues": dict(values)}
    for name, values in MULTISELECT_FIELDS.items():
        config[name] = {"type": "multiselect", "length": None, "permittedvalues": dict(values)}
    config["newsletter_aktiv"] |= {"label": "Newsletter", "default": "4"}
    for name, spec in config.items():
        spec.setdefault("label", name)
        spec.setdefault("default", None)
    return config


READABLE_FIELDS = frozenset(field_config())


@dataclass(slots=True)
class EmuAddress:
    """One address; slots keep 100k of them within a few dozen MB."""

    id: int
    kdnr: int
    anrede: str = ""
    titel: str = ""
    vorname: str = ""
    name: str = ""
    emails: list[str] = field(default_factory=list)  # index 0 is the main ("default") one
    newsletter: str = "4"
    tags: list[str] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)
    status: int = 1
    language: str = ""
    modified: str = ""
    benutzer: str = ""  # support user: a user name

    @property
    def email(self) -> str:
        return self.emails[0] if self.emails else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "KdNr": self.kdnr,
            "Anrede": self.anrede,
            "Titel": self.titel,
            "Vorname": self.vorname,
            "Name": self.name,
            "Email": self.email,
            "emails": list(self.emails),
            "newsletter_aktiv": self.newsletter,
            "NewsletterTag": list(self.tags),
            "HerkunftKontakt": list(self.origin),
            "Status": self.status,
            "SpracheKontakt": self.language,
            "Aenderung": self.modified,
            "Benutzer": self.benutzer,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, id: int, modified: str) -> EmuAddress:
        emails = data.get("emails")
        if emails is None:
            emails = [data["Email"]] if data.get("Email") else []
        return cls(
            id=id,
            kdnr=int(data.get("KdNr") or id),
            anrede=str(data.get("Anrede") or ""),
            titel=str(data.get("Titel") or ""),
            vorname=str(data.get("Vorname") or ""),
            name=str(data.get("Name") or ""),
            emails=[str(e) for e in emails],
            newsletter=str(data.get("newsletter_aktiv", "4")),
            tags=split_multiselect(data.get("NewsletterTag")),
            origin=split_multiselect(data.get("HerkunftKontakt")),
            status=int(data.get("Status", 1)),
            language=str(data.get("SpracheKontakt") or ""),
            modified=str(data.get("Aenderung") or modified),
            benutzer=str(data.get("Benutzer") or ""),
        )


def split_multiselect(value: Any) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, list) else str(value).split("|")
    return [str(i) for i in items if str(i)]


_GETTERS: dict[str, Callable[[EmuAddress], Any]] = {
    "id": lambda a: a.id,
    "KdNr": lambda a: a.kdnr,
    "Anrede": lambda a: a.anrede,
    "Titel": lambda a: a.titel,
    "Vorname": lambda a: a.vorname,
    "Name": lambda a: a.name,
    "Email": lambda a: a.email,
    "newsletter_aktiv": lambda a: a.newsletter,
    "NewsletterTag": lambda a: a.tags,
    "HerkunftKontakt": lambda a: a.origin,
    "Status": lambda a: a.status,
    "SpracheKontakt": lambda a: a.language,
    "Aenderung": lambda a: a.modified,
    "Benutzer": lambda a: a.benutzer,
}


def get_value(address: EmuAddress, name: str) -> Any:
    return _GETTERS[name](address)


def output_elements(
    address: EmuAddress, data: Iterable[str], *, formatoutput: bool
) -> dict[str, Any]:
    """`elements` of one read record, as `formatoutput` false (keys) or true (labels)."""
    out: dict[str, Any] = {"id": address.id}
    for name in data:
        if name in CONTACT_TYPES:
            # Contact pseudo-fields come back once per entry, keyed "<type>__<entry id>".
            for index, value in enumerate(address.emails):
                out[f"{name}__{address.id * 100 + index}"] = value
            continue
        value = get_value(address, name)
        if name in MULTISELECT_FIELDS:
            labels = MULTISELECT_FIELDS[name]
            out[name] = (
                [labels.get(v, v) for v in value]
                if formatoutput
                else "".join(f"|{v}|" for v in value)
            )
        elif formatoutput and name in SINGLESELECT_FIELDS:
            out[name] = SINGLESELECT_FIELDS[name].get(str(value), str(value))
        elif name in ("id", "KdNr"):
            out[name] = value
        else:
            out[name] = str(value)
    return out


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------


class FilterError(Exception):
    def __init__(self, errorcode: int, message: str) -> None:
        super().__init__(message)
        self.errorcode = errorcode
        self.message = message


SCALAR_OPS = {"=", "is", "!=", "<>", "<", "<=", ">", ">=", "in", "not in", "like", "not like"}
SCALAR_OPS |= {"between"}
MULTISELECT_OPS = {"=", "is", "!=", "<>", "like", "not like", "in", "not in"}
FILTERABLE_FIELDS = READABLE_FIELDS | {"email"}

Predicate = Callable[[EmuAddress], bool]


def like_regex(pattern: str) -> re.Pattern[str]:
    parts = ("." if ch == "_" else ".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _norm(value: Any, numeric: bool) -> Any:
    if numeric:
        try:
            return int(str(value).strip())
        except ValueError:
            return str(value)
    # MySQL's default collation: case-insensitive, trailing spaces ignored.
    return str(value).rstrip().casefold()


def _scalar_test(op: str, val: Any, numeric: bool) -> Callable[[Any], bool]:
    if op in ("in", "not in", "between"):
        if not isinstance(val, list):
            raise FilterError(257, f"Error while validating the filter: {op} needs an array")
        values = [_norm(v, numeric) for v in val]
        if op == "between":
            if len(values) != 2:
                raise FilterError(257, "Error while validating the filter: between needs 2 values")
            low, high = values
            return lambda x: low <= x <= high
        wanted = set(values)
        return (lambda x: x in wanted) if op == "in" else (lambda x: x not in wanted)
    if op in ("like", "not like"):
        regex = like_regex(str(val))
        if op == "like":
            return lambda x: regex.fullmatch(str(x)) is not None
        return lambda x: regex.fullmatch(str(x)) is None
    target = _norm(val, numeric)
    tests: dict[str, Callable[[Any], bool]] = {
        "=": lambda x: x == target,
        "is": lambda x: x == target,
        "!=": lambda x: x != target,
        "<>": lambda x: x != target,
        "<": lambda x: x < target,
        "<=": lambda x: x <= target,
        ">": lambda x: x > target,
        ">=": lambda x: x >= target,
    }
    return tests[op]


def _compile_condition(name: str, op: str, val: Any) -> Predicate:
    if name in MULTISELECT_FIELDS or name == "email":
        if op not in MULTISELECT_OPS:
            raise FilterError(232, f"Multiselect filter operator not allowed: {op}")
        if name == "email":
            # All contact entries, compared like a text field.
            test = _scalar_test(op, val, numeric=False)
            positive = op in ("=", "is", "in", "like")
            if positive:
                return lambda a: any(test(_norm(e, False)) for e in a.emails)
            return lambda a: all(test(_norm(e, False)) for e in a.emails)
        keys = set(val if isinstance(val, list) else [val])
        keys = {str(k) for k in keys}
        getter = _GETTERS[name]
        if op in ("like", "not like"):
            regex = like_regex(str(val))
            hit: Predicate = lambda a: any(regex.fullmatch(v) for v in getter(a))  # noqa: E731
            return hit if op == "like" else (lambda a: not hit(a))
        if op in ("=", "is", "in"):
            return lambda a: not keys.isdisjoint(getter(a))
        return lambda a: keys.isdisjoint(getter(a))
    numeric = name in INTEGER_FIELDS
    test = _scalar_test(op, val, numeric)
    getter = _GETTERS[name]
    return lambda a: test(_norm(getter(a), numeric))


def compile_filter(spec: Any) -> list[Predicate]:
    """`filter` parameter -> predicates (ANDed). Raises FilterError like the API would."""
    if spec in (None, [], {}):
        return []
    if not isinstance(spec, Mapping):
        raise FilterError(257, "Error while validating the filter: filter must be an object")
    predicates: list[Predicate] = []
    for name, conditions in spec.items():
        if name not in FILTERABLE_FIELDS:
            raise FilterError(141, f"Unknown field in filter: {name}")
        if not isinstance(conditions, list):
            raise FilterError(257, f"Error while validating the filter for {name}")
        for condition in conditions:
            if not isinstance(condition, Mapping) or "op" not in condition:
                raise FilterError(257, f"Error while validating the filter for {name}")
            op = str(condition["op"]).strip().lower()
            if op not in SCALAR_OPS:
                raise FilterError(142, f"Unknown operator: {condition['op']}")
            predicates.append(_compile_condition(name, op, condition.get("val")))
    return predicates


def sort_key(name: str) -> Callable[[EmuAddress], Any]:
    getter = _GETTERS[name]
    if name in INTEGER_FIELDS:
        return lambda a: (_norm(getter(a), True), a.id)
    return lambda a: (str(getter(a)).casefold(), a.id)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------

_FIRST_NAMES = [
    "Jürgen", "Björn", "Grete", "Ömer", "Sören", "Anna", "Max", "Erika", "Lukas", "Zoë",
    "Hans-Peter", "Marie-Luise", "Ayşe", "Frédéric", "Käthe", "Jörg", "Lena", "Noah",
]  # fmt: skip
_LAST_NAMES = [
    "Müller", "Weiß", "Groß", "Schäfer", "Öztürk", "Meyer", "Schmidt", "Strauß", "Bäcker",
    "Mustermann", "Krüger", "von Löwenstein", "Nguyen", "Jäger", "Fuß", "Becker",
]  # fmt: skip
_COMPANIES = ["Immobilien Süd GmbH", "Häuser & Höfe KG", "Baugrund AG", "Weißbach Verwaltung"]
_DOMAINS = ["example.de", "example.com", "beispiel.de", "mail.example.org"]
_INVALID_EMAILS = ["max.mustermann@", "kein Email", "a@b", "@example.de", "müller at web.de"]
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "ş": "s", "ë": "e"})


def _mailbox(first: str, last: str, n: int) -> str:
    local = f"{first}.{last}".lower().translate(_ASCII)
    local = re.sub(r"[^a-z0-9.-]", "", local)
    return f"{local}{n}"


def generate_address_book(
    n: int, seed: int = 0, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """`n` realistic address dicts (seed format of the emulator), deterministic for `seed`.

    Includes duplicate emails differing in case and surrounding spaces, invalid and missing
    emails, every newsletter key, archived records, umlauts/ß and every salutation.
    """
    rng = random.Random(seed)
    base = now or datetime(2026, 1, 1, 12, 0, 0)
    book: list[dict[str, Any]] = []
    salutations = ["Herr", "Frau", "Firma", "Familie", "Eheleute", ""]
    weighted_salutations = salutations * 3 + ["Herr"] * 6
    tag_keys, origin_keys = list(NEWSLETTER_TAGS), list(ORIGINS)
    for i in range(n):
        # Cycle the rare cases on fixed positions so even small books contain each of them.
        salutation = salutations[i % 6] if i < 12 else rng.choice(weighted_salutations)
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        if salutation == "Firma":
            first, last = "", rng.choice(_COMPANIES)
        email = f"{_mailbox(first or 'info', last, i)}@{rng.choice(_DOMAINS)}"
        roll = rng.random()
        if i % 50 == 7 or (i >= 50 and roll < 0.03):
            email = ""
        elif i % 50 == 13 or (i >= 50 and roll < 0.05):
            email = rng.choice(_INVALID_EMAILS)
        elif book and (i % 50 == 21 or roll < 0.09):
            # A duplicate of an earlier address, in another case and with stray spaces.
            earlier = rng.choice(book)["Email"].strip() or email
            email = rng.choice([earlier.upper(), f" {earlier} ", earlier.title(), f"{earlier}  "])
        newsletter = str(i % 6) if i < 6 else rng.choice("011111112223444445")
        tags = sorted(rng.sample(tag_keys, rng.choice([0, 0, 1, 1, 2, 3])))
        book.append(
            {
                "Anrede": salutation,
                "Titel": rng.choice(["", "", "", "", "Dr.", "Prof. Dr."]) if first else "",
                "Vorname": first,
                "Name": last,
                "Email": email,
                "newsletter_aktiv": newsletter,
                "NewsletterTag": tags,
                "HerkunftKontakt": rng.sample(origin_keys, rng.choice([0, 1])),
                "Status": 0 if (i % 20 == 19 or rng.random() < 0.04) else 1,
                "SpracheKontakt": rng.choice(["DEU"] * 8 + ["ENG", ""]),
                "Aenderung": (base - timedelta(seconds=rng.randrange(0, 730 * 86400))).strftime(
                    DATETIME_FORMAT
                ),
            }
        )
    return book
