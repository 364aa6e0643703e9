"""The plain ledger row the full sync reads and writes a page at a time (no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The ledger columns the full sync's page classification reads (app/syncs/classify.py).
LEDGER_COLUMNS = (
    "id",
    "address_id",
    "email",
    "last_run_id",
    "synced_hash",
    "tags",
    "subscribed",
    "rejected_hash",
    "rejected_reason",
    "onoffice_status",
    "onoffice_changed_at",
    "provider_status",
    "provider_changed_at",
    "provider_id",
    "onoffice_addresses",
)


@dataclass(slots=True)
class LedgerRow:
    """A plain (not ORM-tracked) ledger row read for one page of a full sync. Changes go
    through `set` and are written for the whole page at once (`save_ledger_rows`): no
    identity map and no per-row flush for 500 rows."""

    id: int | None
    address_id: int
    email: str
    last_run_id: int | None = None
    synced_hash: str | None = None
    tags: list[str] = field(default_factory=list)
    subscribed: bool | None = None
    rejected_hash: str | None = None
    rejected_reason: str | None = None
    onoffice_status: str | None = None
    onoffice_changed_at: datetime | None = None
    provider_status: str | None = None
    provider_changed_at: datetime | None = None
    provider_id: str | None = None
    onoffice_addresses: dict[str, Any] | None = None
    changes: dict[str, Any] = field(default_factory=dict)

    def set(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self, name, value)
            self.changes[name] = value
