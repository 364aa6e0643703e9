"""The provider boundary, enforced: nothing in app/ names a provider outside the factory.

The factory (app/connections/factory.py) maps provider names to client classes; everything
else asks the provider object (label, status page, batch size, tag support). Texts for people
(the i18n catalogue, HTML templates) may of course say "Mailchimp".
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMES = re.compile(r"ProviderName\.(mailchimp|brevo)|[\"'](mailchimp|brevo)[\"']")
# The factory; texts and settings for people; the OpenAPI example of the connection schema.
EXEMPT = {
    "app/connections/factory.py",
    "app/i18n/de.py",
    "app/i18n/en.py",
    "app/config.py",
    "app/connections/schemas.py",
}


def offenders() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in EXEMPT:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if NAMES.search(code):
                found.setdefault(rel, []).append(f"{rel}:{number}: {line.strip()}")
    return found


def test_app_names_no_provider_outside_the_factory() -> None:
    found = offenders()
    assert not found, "provider names outside the factory:\n" + "\n".join(
        line for lines in found.values() for line in lines
    )


def test_the_rule_sees_a_name() -> None:
    assert NAMES.search('if connection.provider == "brevo":')
    assert NAMES.search("if provider != ProviderName.mailchimp:")
    assert not NAMES.search("provider_label(connection.provider)")
