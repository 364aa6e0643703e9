"""Issue 20's trust features over HTTP (embedded jobs) against the emulators: the consent
suite's scenes."""

from __future__ import annotations

from tests.consent.conftest import consent_settings, scenes  # noqa: F401  (fixtures)
from tests.e2e.conftest import e2e_settings, http, world  # noqa: F401  (fixtures)
