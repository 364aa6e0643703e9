"""The parts of reading the addresses that carry given emails (`OnOfficeClient.email_query`,
`email_answers`, `find_addresses_by_emails`): the actions of one such read, kept apart from
their answer so that a caller can send them in the request of another read (the full sync
packs a page's person read into the request of a later page, app/syncs/persons.py), and the
local matching of what came back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from onoffice_client.models import Address
from onoffice_client.results import cntabsolute
from onoffice_client.transport import Action, chunks

MAX_LIST_LIMIT = 500  # hard limit of records per read and of `recordids` per action


@dataclass(frozen=True)
class EmailQuery:
    """The wanted emails (stripped, casefolded) and the read actions that find them: `in`
    reads on `Email`, then reads by id of records known to carry one of them."""

    wanted: frozenset[str]
    actions: tuple[Action, ...]


def wanted_emails(emails: Iterable[str]) -> frozenset[str]:
    return frozenset(e.strip().casefold() for e in emails if e.strip())


def in_filter(values: Sequence[str]) -> dict[str, Any]:
    """An `in` filter on `Email` (onOffice compares like MySQL: case-insensitive, trailing
    spaces ignored); each email is also asked for with one leading space, the usual stray space
    of a pasted value."""
    return {"Email": [{"op": "in", "val": [*values, *(f" {e}" for e in values)]}]}


def overflowed(action: Action, total: int | None, records: int) -> list[str] | None:
    """The values of an `in` read that matched more records than one answer holds."""
    criteria = action.parameters.get("filter")
    if not isinstance(criteria, Mapping) or total is None or total <= records:
        return None
    return list(criteria["Email"][0]["val"])


class EmailMatches:
    """Addresses by wanted email, each address once, sorted by id at the end."""

    def __init__(self, wanted: Iterable[str]) -> None:
        self.found: dict[str, list[Address]] = {email: [] for email in wanted}
        self._seen: set[int] = set()

    def take(self, records: Iterable[Address]) -> None:
        for address in records:
            key = address.email.strip().casefold()
            if key in self.found and address.id not in self._seen:
                self._seen.add(address.id)
                self.found[key].append(address)

    def result(self) -> dict[str, list[Address]]:
        for addresses in self.found.values():
            addresses.sort(key=lambda a: a.id)
        return self.found


class EmailReads:
    """The client's reads by email (a part of `OnOfficeClient`, which provides the rest)."""

    if TYPE_CHECKING:

        async def ensure_ready(self) -> None: ...
        def _read_action(
            self,
            *,
            filter: Mapping[str, Any],
            offset: int,
            limit: int | None = None,
            sort: bool = True,
        ) -> Action: ...
        def _ids_action(self, ids: Sequence[int]) -> Action: ...
        async def _read_with_fallbacks(self, actions: Sequence[Action]) -> list[dict[str, Any]]: ...
        def _addresses_of(self, result: Mapping[str, Any]) -> list[Address]: ...
        def _iter_addresses(self, criteria: Mapping[str, Any]) -> AsyncIterator[list[Address]]: ...

    async def find_addresses_by_email(self, email: str) -> list[Address]:
        """Addresses whose main email equals `email`, ignoring case and surrounding spaces."""
        wanted = email.strip().casefold()
        if not wanted:
            return []
        # `like` with wildcards also finds values stored with stray spaces; the exact match
        # (and LIKE's "_" wildcard) is settled locally.
        criteria = {"Email": [{"op": "like", "val": f"%{email.strip()}%"}]}
        found: list[Address] = []
        async for page in self._iter_addresses(criteria):
            found.extend(a for a in page if a.email.strip().casefold() == wanted)
        return found

    def email_query(self, emails: Sequence[str], *, known_ids: Sequence[int] = ()) -> EmailQuery:
        """The read actions of `find_addresses_by_emails` (after `ensure_ready`), to be sent
        alone (`email_answers`) or in the request of a page (`read_newsletter_page`)."""
        wanted = wanted_emails(emails)
        if not wanted:
            return EmailQuery(wanted, ())
        actions = [
            self._read_action(filter=in_filter(c), offset=0, limit=MAX_LIST_LIMIT, sort=False)
            # Several emails may share many addresses (duplicates): chunks well below a page.
            for c in chunks(sorted(wanted), MAX_LIST_LIMIT // 2)
        ]
        ids = sorted({int(i) for i in known_ids})
        actions += [self._ids_action(c) for c in chunks(ids, MAX_LIST_LIMIT)]
        return EmailQuery(wanted, tuple(actions))

    async def email_answers(
        self, queries: Sequence[EmailQuery], results: Sequence[dict[str, Any]] | None = None
    ) -> list[dict[str, list[Address]]]:
        """Each query's addresses by wanted email, from `results` (its actions' results, in
        order, when they were sent with another read) or read now, all in one request."""
        actions = [a for q in queries for a in q.actions]
        if results is None:
            results = await self._read_with_fallbacks(actions) if actions else []
        answers, at = [], 0
        for query in queries:
            matches, overflow = EmailMatches(query.wanted), []
            mine = results[at : at + len(query.actions)]
            for action, result in zip(query.actions, mine, strict=True):
                records = self._addresses_of(result)
                if (values := overflowed(action, cntabsolute(result), len(records))) is not None:
                    overflow.append(values)
                matches.take(records)
            at += len(query.actions)
            for values in overflow:
                # More matches than one page (many duplicates): the same `in` read, page by
                # page (one request per page, not one `like` scan per email).
                async for page in self._iter_addresses({"Email": [{"op": "in", "val": values}]}):
                    matches.take(page)
            answers.append(matches.result())
        return answers

    async def find_addresses_by_emails(
        self, emails: Sequence[str], *, known_ids: Sequence[int] = ()
    ) -> dict[str, list[Address]]:
        """Addresses whose main email is one of `emails` (case and surrounding spaces ignored),
        by wanted email (casefolded), in one request: an `in` read on `Email` (see
        `emails.in_filter`) and a read of `known_ids` (records the caller knows carry one of
        these emails, e.g. with other leading whitespace), matched locally."""
        await self.ensure_ready()
        (found,) = await self.email_answers([self.email_query(emails, known_ids=known_ids)])
        return found
