"""The state of a `LedgerWriter` (app/contacts/writer.py) and how a verb records a row's values,
a history entry and a problem row until `save`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import object_session

from app.contacts.rows import LedgerRow
from app.contacts.rules import Signal
from app.db.base import utcnow
from app.db.models import Contact, ProblemKind
from app.history.writer import Entry
from app.i18n import reasons
from providers.base import RejectReason

Row = LedgerRow | Contact


@dataclass(frozen=True)
class Refusal:
    address_id: int
    email: str | None
    reason: str


class LedgerBase:
    def __init__(
        self,
        connection_id: int,
        source: str,
        run_id: int | None = None,
        *,
        provider: str = "",
        creates: bool = False,
    ) -> None:
        """`provider`: the connection's provider (names the write-back events it stores)."""
        self.connection_id = connection_id
        self.provider = provider
        self.source = source
        self.run_id = run_id
        self.creates = creates
        self.now = utcnow()
        self.problems: list[dict[str, Any]] = []
        self.history: list[Entry] = []
        self._plain: dict[int, LedgerRow] = {}
        self._updates: dict[int, dict[str, Any]] = {}
        self._new: dict[str, dict[str, Any]] = {}
        self._refusals: list[Refusal] = []
        self._opt_outs: list[tuple[str, Signal]] = []
        self._person_opt_outs: list[tuple[str, int, Signal]] = []
        self._push_later: list[tuple[int, int, str]] = []
        self._unsent: list[str] = []
        self._listed: list[dict[str, Any]] = []
        self._member_tags: dict[str, list[str]] = {}
        self._stale: dict[int, bool] = {}

    def _write(
        self, row: Row | None, address_id: int | None, email: str, values: Mapping[str, Any]
    ) -> None:
        """A plain row changes (written with its page or batch); an ORM contact gets an UPDATE
        and, when no session holds it, shows the values (the push reads it again); without a
        row the push creates one."""
        if isinstance(row, LedgerRow):
            row.set(**values)
            self._plain[id(row)] = row
        elif row is not None:
            if object_session(row) is None:
                for name, value in values.items():
                    setattr(row, name, value)
            self._updates.setdefault(row.id, {}).update(values)
        elif self.creates and address_id is not None:
            new = self._new.setdefault(email, {"address_id": address_id, "email": email})
            new.update(values)

    def _entry(self, entry: Entry) -> None:
        self.history.append(entry)

    def _problem(
        self,
        address_id: int,
        email: str,
        kind: ProblemKind,
        reason: str,
        code: str,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "address_id": address_id,
            "email": email,
            "kind": kind.value,
            "reason": reason,
            "reason_code": code,
            "reason_params": params,
            "created_at": utcnow(),
        }

    def _rejection(
        self,
        address_id: int,
        email: str,
        code: RejectReason | None,
        detail: str | None,
        provider: str,
    ) -> None:
        """A full sync's problem row for values the provider refused (`reasons.rejection_problem`:
        the code, the provider's words as the detail, its label for the labelled original)."""
        columns = reasons.rejection_problem(code, detail, provider)
        self.problems.append(
            self._problem(
                address_id,
                email,
                ProblemKind.rejected,
                columns["reason"],
                columns["reason_code"],
                columns["reason_params"],
            )
        )
