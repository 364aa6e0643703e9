"""Brevo API v3 emulator: an ASGI app serving `/v3/...` like api.brevo.com.

Every request is checked against the official OpenAPI file; a non-conforming request gets
400 `invalid_parameter` and is counted (`/_control/state` → `spec_violations`).

Behaviour notes (where Brevo's behaviour is uncertain the switch is in `BrevoConfig`):
- Writes to attributes that do not exist are dropped silently, as Brevo does.
- `POST /contacts/import` applies rows at once; its process reports `in_process` until
  `import_delay` has passed (then a given `notifyUrl` gets a POST `{processId, status}`).
  Rows with an invalid e-mail are skipped and counted.
- `upsert_replaces_lists`: `POST /contacts` with `updateEnabled` replaces list memberships
  (a historical Brevo bug) instead of adding.
- `unblacklist_ignored`: `emailBlacklisted:false` leaves a blacklisted contact blacklisted.
- `marketing_contact_events`: marketing webhooks accept contactUpdated/contactDeleted.
- `account_language`: `GET /account` includes a `language` field (not in the spec).

One module per resource (`lists`, `contacts`, `imports`, `webhooks`), the state in `state`,
the control API in `control`; `app` puts them behind the request pipeline of `emulators._kit`.
Run standalone: `python -m emulators.brevo --port 8025` (seeds keys `test-key-de`/`test-key-en`).
"""

from emulators.brevo.app import create_app, main
from emulators.brevo.state import (
    DEFAULT_ATTRIBUTES,
    SPEC_PATH,
    Account,
    BrevoConfig,
    BrevoState,
    Contact,
    Fault,
)

__all__ = [
    "DEFAULT_ATTRIBUTES",
    "SPEC_PATH",
    "Account",
    "BrevoConfig",
    "BrevoState",
    "Contact",
    "Fault",
    "create_app",
    "main",
]
