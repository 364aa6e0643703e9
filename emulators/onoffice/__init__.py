"""onOffice enterprise API emulator: a real ASGI app for tests and benchmarks.

Serves `POST /api/stable/api.php` and `/api/latest/api.php` the way the documented API
behaves (token + HMAC v2, ±120 s timestamps, marketplace `extendedclaim`, in-band error
envelopes), and a JSON control API under `/_control/` to seed data, add customers, inject
faults and read back everything the client did. A customer added with `address_range` reads
only the addresses with ids in that range (many tenants in one emulator), and
`GET /_control/change-reads` lists, per token, when it read addresses by `Aenderung`.

One module per part: `state`, `envelope` (answers), `actions` (checks and handlers),
`addresses` (the address actions), `control` and `app` (the pipeline of `emulators._kit`).
Run standalone: `python -m emulators.onoffice --port 8081 --seed-addresses 1000`.
"""

from emulators.onoffice.app import create_app, main
from emulators.onoffice.state import (
    ALL_RIGHTS,
    DEFAULT_SECRET,
    DEFAULT_TOKEN,
    Customer,
    Fault,
    OnOfficeState,
    Settings,
)

__all__ = [
    "ALL_RIGHTS",
    "DEFAULT_SECRET",
    "DEFAULT_TOKEN",
    "Customer",
    "Fault",
    "OnOfficeState",
    "Settings",
    "create_app",
    "main",
]
