"""Step 4 (`sync.pull_tags`, providers with tags): tags by three-way merge (app.contacts.tags)
between the set last synced (the ledger), onOffice's tags now and the provider's (the run's copy of
the list state, `provider_member`, updated by the run's own batches); the tag `onoffice` is
excluded and a label alias is written as the canonical onOffice key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.contacts.repository import ContactRepository
from app.contacts.rows import LedgerRow
from app.contacts.tags import address_tag_writes, merge_tags
from app.contacts.values import by_person
from app.contacts.writer import LedgerWriter
from app.db.models import (
    Connection,
)
from app.i18n import encode
from app.lifecycle.cancel import stopped
from app.resources import Resources
from app.syncs.common import READ_SLICE_S, fail_run, load_run, retry_or_fail_run
from app.syncs.finish import complete_run
from app.syncs.jobs import enqueue_pull_tags
from app.syncs.repository import ACTIVE_STATUSES, SyncRepository
from onoffice_client.models import Address, AddressUpdate, OnOfficeError, OnOfficeTransientError
from providers.base import (
    ProviderError,
    ProviderTransientError,
)

EXCLUDED_PULL_TAGS = {"onoffice"}


TAG_WRITE_CHUNK = 50


TAG_PAGE = 1000


async def pull_tags(
    resources: Resources, run_id: int, start: int, *, job_try: int = 1, max_tries: int = 10
) -> None:
    """Merge tags three ways (`_pull_page`) and write the result to onOffice `NewsletterTag`
    and to the provider, only where a side lacks it and only values onOffice knows (an unknown
    multiselect key would fail; `onoffice` is never taken). Reads this run's copy of the list
    state (no second pass over the audience), in time slices that each continue after the
    stored member id."""
    loaded = await load_run(resources, run_id)
    if loaded is None:
        return
    run, connection, tenant = loaded
    if run.status not in ACTIVE_STATUSES or run.phase != "tags" or run.tags_offset != start:
        return  # finished, failed, or a stale duplicate of an earlier slice
    assert connection.list_id is not None
    onoffice = onoffice_for_connection(resources, tenant, connection)
    provider = provider_for_connection(resources, connection)
    deadline = time.monotonic() + min(READ_SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    after = start
    try:
        allowed = await _allowed_tags(onoffice)
        while True:
            if await stopped(resources, run_id):
                return  # cancelled: no further tags are written
            async with resources.sessionmaker() as session:
                page = await ContactRepository.from_session(session).member_page(
                    connection.id, run_id, after, TAG_PAGE
                )
            if not page:
                break
            after = await _pull_page(
                resources, run_id, connection, onoffice, provider, allowed, page
            )
            if time.monotonic() > deadline:
                async with resources.transaction():
                    enqueue_pull_tags(run_id, after)
                return
    except (ProviderTransientError, OnOfficeTransientError) as exc:
        message = encode("run.tags_failed", detail=str(exc))
        await retry_or_fail_run(
            resources, run_id, exc, message, job_try=job_try, max_tries=max_tries
        )
        return
    except (ProviderError, OnOfficeError) as exc:
        await fail_run(resources, run_id, encode("run.tags_failed", detail=str(exc)))
        return
    await complete_run(resources, run_id, connection)


def canonical_tag(tag: str, allowed: dict[str, str] | None) -> str | None:
    """The one name of a tag in both directions: the onOffice `NewsletterTag` key (what the
    push sends). A Mailchimp tag typed as the key's label maps to the key; `onoffice` and tags
    onOffice does not know have none."""
    key = tag.strip().lower()
    if not key or key in EXCLUDED_PULL_TAGS:
        return None
    if allowed is None:
        return tag.strip()
    return allowed.get(key)


async def _pull_page(
    resources: Resources,
    run_id: int,
    connection: Connection,
    onoffice: Any,
    provider: Any,
    allowed: dict[str, str] | None,
    page: Sequence[Any],
) -> int:
    """Merge one page of members' tags three ways (app.contacts.tags): the set last synced
    (the ledger), onOffice's tags now and the provider's (this run's list state, kept current
    by the run's own batches). onOffice is re-read in bulk only for members whose tags differ
    from the ledger, every address of the person (`_person_addresses`). The provider and the
    ledger get the main address's merge; each address of the person gets its own merge,
    written only where it changes the address's tags; advance."""
    async with resources.sessionmaker() as session:
        # Plain rows (no ORM objects): every member of the list passes here once per run.
        rows = await ContactRepository.from_session(session).ledger_rows(
            connection.id, (m.email for m in page)
        )
    found: list[tuple[Any, LedgerRow, set[str], bool]] = []
    for member in page:
        row = rows.get(member.email)
        if row is None or row.last_run_id != run_id or not row.synced_hash:
            continue
        theirs: set[str] = set()
        aliased = False
        for tag in member.tags:
            name = canonical_tag(tag, allowed)
            if name is None:
                continue
            theirs.add(name)
            aliased = aliased or name != tag  # e.g. the label "Käufer" for the key "Kaeufer"
        if theirs != set(row.tags or []) or aliased:
            found.append((member, row, theirs, aliased))
    differing = [row for _m, row, theirs, _a in found if theirs != set(row.tags or [])]
    people = await _person_addresses(onoffice, differing) if differing else {}
    writes: list[tuple[int, list[str]]] = []
    ledger: list[tuple[str, list[str]]] = []
    assert connection.list_id is not None
    for member, row, theirs, _aliased in found:
        base = set(row.tags or [])
        merged = base
        if theirs != base:
            person = people.get(row.email, {})
            main = person.get(row.address_id)
            if main is None:
                continue  # the address is gone or has another email: the next run settles it
            # The person's tags are its main address's (the full sync and the push send that
            # address): the provider and the ledger get its merge. Every address of the person
            # gets its own merge, so a duplicate keeps no tag removed at the provider (it would
            # come back once that address became the main one) and lacks none added there.
            merged = set(merge_tags(base, set(main.tags), theirs))
            tags_now = {a.id: a.tags for a in person.values()}
            writes.extend(sorted(address_tag_writes(base, theirs, tags_now).items()))
        # The provider gets the merged set, each tag under its one name (a label alias is
        # replaced by the key, so the next push does not add a second tag for one thing).
        present = {t for t in member.tags if canonical_tag(t, allowed) == t}
        add = sorted(merged - present)
        remove = sorted(
            t
            for t in member.tags
            if (name := canonical_tag(t, allowed)) is not None and (name not in merged or name != t)
        )
        if add or remove:
            await provider.set_tags(connection.list_id, member.email, add=add, remove=remove)
        if merged != base:
            ledger.append((row.email, sorted(merged)))
    for begin in range(0, len(writes), TAG_WRITE_CHUNK):
        chunk = writes[begin : begin + TAG_WRITE_CHUNK]
        await onoffice.modify_addresses([(aid, AddressUpdate(tags=tags)) for aid, tags in chunk])
    async with resources.transaction() as session:
        contacts = ContactRepository.from_session(session)
        stored = await contacts.by_emails(connection.id, (email for email, _ in ledger))
        writer = LedgerWriter.for_run(connection, run_id)
        for email, tags in ledger:
            if email in stored:
                writer.tags_merged(stored[email], tags)
        await writer.save(session)
        new_offset = int(page[-1].id)
        repo = SyncRepository.from_session(session)
        await repo.increment(run_id, tags_pulled=len(writes))
        await repo.set_run(run_id, tags_offset=new_offset)
    return new_offset


async def _person_addresses(
    onoffice: Any, rows: Sequence[LedgerRow]
) -> dict[str, dict[int, Address]]:
    """Every onOffice address in the connection's scope (the client's) of each row's email, by
    normalised email and id, in one request (more only for an email read that overflows): an
    `in` read on `Email` and a read by id of the main address and of the addresses this run's
    person read remembered for the email (the ledger's `onoffice_addresses`), kept only while
    they still carry the email."""
    known: set[int] = set()
    for row in rows:
        known.add(row.address_id)
        known.update(int(i) for i in (row.onoffice_addresses or {}) if str(i).isdigit())
    found = await onoffice.find_addresses_by_emails(
        [row.email for row in rows], known_ids=sorted(known)
    )
    return {email: {a.id: a for a in group} for email, group in by_person(found).items()}


async def _allowed_tags(onoffice: Any) -> dict[str, str] | None:
    """onOffice `NewsletterTag` keys by lower-cased key and label (tags are pushed as keys;
    a marketer may have typed the label in Mailchimp)."""
    try:
        fields = await onoffice.get_fields(["NewsletterTag"])
    except OnOfficeError:
        return None
    permitted = (fields.get("NewsletterTag") or {}).get("permittedvalues")
    if isinstance(permitted, list):
        permitted = {str(k): str(k) for k in permitted}
    if not isinstance(permitted, dict):
        return None
    keys: dict[str, str] = {}
    for key, label in permitted.items():
        keys[str(label).strip().lower()] = str(key)
    for key in permitted:
        keys[str(key).strip().lower()] = str(key)
    return keys
