"""Incremental sync, onOffice → provider: the push of changed addresses to the provider.

Both triggers (the "address saved" webhook, `drain.py`, and polling by modification time,
`poll.py`) feed `push_addresses`. An address is compared with what the connector last synced
(`contact`): equal values cause no provider call, which is also what ends echo loops (a provider
webhook applied to onOffice comes back as an "address saved" that changes nothing).

Per address: newsletter Yes → create/update the contact (names, greeting, tags added and
removed); an email change moves the provider contact; newsletter not Yes (No, cancellation, not
specified, DOI pending) or an archived address → unsubscribe (Brevo: blacklist). What to send is
decided by the consent rule (app.contacts.rules).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import DataError, IntegrityError

from app.contacts.repository import ContactRepository
from app.contacts.values import by_person, check_email
from app.contacts.writer import LedgerWriter
from app.db.models import Connection, Contact
from app.db.session import Database
from app.inbox.repository import InboundEventRepository
from app.incremental.address import AddressPush, PushStats
from app.incremental.failures import retry_later
from app.syncs.common import default_language
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import Address
from providers.base import NewsletterProvider, ProviderError, ProviderTransientError

__all__ = ["PushStats", "push_addresses", "read_person_addresses"]

log = logging.getLogger(__name__)


async def push_addresses(
    db: Database,
    provider: NewsletterProvider,
    connection: Connection,
    addresses: Sequence[Address],
    onoffice: OnOfficeClient | None = None,
) -> PushStats:
    """Bring the provider (the connection's client) in line with these onOffice addresses
    (idempotent). Each address's person (its email with all its onOffice addresses, read from
    `onoffice` in one request; without a client, the addresses not given keep the values last
    seen) is planned by `app.contacts.person.plan_person`; `AddressPush` executes the plan.

    One address never holds up the others: its ledger writes (`LedgerWriter`) are saved in a
    transaction of its own once the provider answered, so a write the database refuses
    (logged, counted as `unrecorded`) leaves the other addresses recorded; a change the
    provider refuses is recorded on the contact (`rejected_reason`, shown in the status) and a
    transient failure is queued to be retried on its own (an "address saved" event for that
    address)."""
    stats = PushStats()
    if not connection.list_id or not addresses:
        return stats
    language = default_language(connection)
    async with db.sessionmaker() as session:
        repo = ContactRepository.from_session(session)
        held_back = await InboundEventRepository.from_session(session).pending_opt_outs(
            connection.id
        )
        by_address = await repo.by_address_ids(connection.id, [a.id for a in addresses])
        checks = [check_email(a.email) for a in addresses]
        emails = {c.email for c in checks if c.problem is None}
        found = await repo.by_emails(connection.id, emails)
    rows: dict[str, Contact | None] = {email: found.get(email) for email in emails}
    others = await read_person_addresses(onoffice, addresses) if onoffice else None
    push = AddressPush(db, provider, connection, language, held_back, stats, others, rows)
    for address in addresses:
        ledger = LedgerWriter.for_push(connection)
        transient: ProviderTransientError | None = None
        try:
            await push.one(address, by_address.get(address.id), ledger)
        except ProviderTransientError as exc:
            stats.retrying += 1
            transient = exc
        except ProviderError as exc:
            stats.refused += 1
            log.warning(
                "incremental.refused",
                extra={
                    "connection_id": connection.id,
                    "address_id": address.id,
                    "reason": exc.message,
                },
            )
            ledger.refused(address.id, check_email(address.email).email, exc.message)
        await _save(db, connection, address, ledger, stats)
        if transient is not None:
            await retry_later(db, connection, address.id, transient)
    log.info("incremental.pushed", extra={"connection_id": connection.id, **stats.__dict__})
    return stats


async def _save(
    db: Database, connection: Connection, address: Address, ledger: LedgerWriter, stats: PushStats
) -> None:
    """One address's ledger writes in one transaction; a write the database refuses (a
    constraint, a value it cannot store) is this address's alone. Other database errors (a
    lock, a lost connection) end the push as before: the job is retried, and the addresses
    recorded so far stay recorded."""
    try:
        async with db.transaction() as session:
            await ledger.save(session)
    except (IntegrityError, DataError):
        stats.unrecorded += 1
        log.exception(
            "incremental.unrecorded",
            extra={"connection_id": connection.id, "address_id": address.id},
        )


async def read_person_addresses(
    onoffice: OnOfficeClient, addresses: Sequence[Address]
) -> dict[str, list[Address]]:
    """Every onOffice address (any Newsletter value, archived ones too) with these addresses'
    valid emails, by normalised email, in one request: a person is decided from all of its
    addresses (the full sync's pages hold only the newsletter-Yes ones). Invalid emails are
    not asked for: they are problems, never a person (and a few invalid values such as "a@b",
    each carried by many addresses, would make every read page through all of them)."""
    checks = (check_email(a.email) for a in addresses)
    emails = sorted({c.email for c in checks if c.problem is None})
    return by_person(await onoffice.find_addresses_by_emails(emails))
