"""Classifying one onOffice page: problems recorded, duplicates resolved against the `contact`
table, the consent rule applied (app.contacts.rules), unchanged contacts counted and the rest
written into the open `sync_batch`, whose job is enqueued after the commit.

Duplicate rule: the first address in onOffice read order (the client's stable sort) keeps the
email; every later address with the same normalised email is reported as a duplicate of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from app.connections.errors import PROVIDER_LABELS
from app.contacts.ledger import push_person_later, write_back_opt_out, write_back_person_opt_out
from app.contacts.person import PersonPlan, dump_memory, load_memory, person_addresses, plan_person
from app.contacts.repository import ContactRepository, provider_signal
from app.contacts.rows import LedgerRow
from app.contacts.rules import (
    SUBSCRIBED,
    Action,
    Signal,
    bounce_known,
)
from app.contacts.values import (
    Language,
    check_email,
    contact_from_address,
    contact_hash,
)
from app.db.base import utcnow
from app.db.models import (
    Connection,
    ProblemKind,
    SyncBatch,
)
from app.history.writer import FULL_SYNC, PROVIDER, Entry, onoffice_seen, signal_entry
from app.history.writer import record as record_history
from app.i18n import reasons
from app.syncs.jobs import enqueue_batch
from app.syncs.repository import SyncRepository
from onoffice_client.models import Address


async def process_page(
    session: Any,
    run_id: int,
    connection: Connection,
    page: Sequence[Address],
    language: Language,
    *,
    force: bool = False,
    batch_limit: int = 500,
    held_back: frozenset[str] = frozenset(),
    list_state_known: bool = False,
    others: Mapping[str, Sequence[Address]] | None = None,
    defer_write_backs: bool = False,
) -> None:
    """Classify one page of addresses and queue what must be sent.

    Every address gets exactly one outcome. What happens to a person (an email with all its
    onOffice addresses: the page's and `others`, every address onOffice has with the page's
    emails, by normalised email) is planned by `app.contacts.person.plan_person` from the
    ledger and this run's read of the provider's list (`list_state_known`: a contact missing
    from it or not subscribed there is resent even when its values are unchanged); this
    function executes the plan. `defer_write_backs` (the paged read): a person's No for its
    other addresses is marked on the problem row and written after reading (`read.py`)."""
    repo = SyncRepository.from_session(session)
    contacts = ContactRepository.from_session(session)
    now = utcnow()
    # Pages can overlap (a resumed read, records moving between pages): an address this run
    # already handled is skipped. Problems are found by (run, address); synced addresses by
    # their contact row below, which is fetched by email anyway (no query whose plan depends
    # on table statistics: a fresh, unanalysed contact table made that one O(contacts)).
    seen = await repo.problem_addresses(run_id, [a.id for a in page])
    fresh = [a for a in page if a.id not in seen]
    problems: list[dict[str, Any]] = []
    candidates: list[tuple[Address, str]] = []
    invalid = missing = 0
    for address in fresh:
        check = check_email(address.email)
        if check.problem is not None:
            problems.append(
                problem_row(run_id, address, check.problem, check.reason, code=check.code)
            )
            if check.problem == ProblemKind.missing_email:
                missing += 1
            else:
                invalid += 1
            continue
        candidates.append((address, check.email))

    emails = [email for _, email in candidates]
    # Plain rows, written for the whole page at once at the end (no ORM objects per row).
    await contacts.ensure_statistics()
    existing = await contacts.ledger_rows(connection.id, emails)
    members = (
        await contacts.member_states(connection.id, run_id, emails) if list_state_known else {}
    )
    owners: dict[str, int] = {}
    to_send: list[dict[str, Any]] = []
    counts = {"duplicates": 0, "unchanged": 0, "rejected": 0}
    counts |= {"opted_out": 0, "pending_optin": 0, "bounced": 0, "archived": 0}
    already_synced = 0
    touched: list[LedgerRow] = []
    write_backs: list[tuple[str, Signal]] = []
    person_write_backs: list[PersonPlan] = []
    push_later: list[PersonPlan] = []
    plans: dict[str, PersonPlan] = {}
    history: list[Entry] = []
    by_email: dict[str, list[Address]] = {}
    for address, email in candidates:
        by_email.setdefault(email, []).append(address)
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    for address, email in candidates:
        row = existing.get(email)
        if row is not None and row.last_run_id == run_id and row.address_id == address.id:
            already_synced += 1  # handled by an earlier page of this run
            continue
        owner = owners.get(email)
        if owner is None and row is not None and row.last_run_id == run_id:
            owner = row.address_id
        if owner is not None and owner != address.id:
            counts["duplicates"] += 1
            problems.append(duplicate_row(run_id, address, owner, plans.get(email)))
            continue
        owners[email] = address.id
        member = members.get(email)
        provider = provider_signal(row, member)
        person, complete = person_addresses(email, by_email[email], others)
        memory = load_memory(
            row.onoffice_addresses if row else None,
            owner=row.address_id if row else None,
            ledger=Signal(row.onoffice_status, row.onoffice_changed_at) if row else Signal(None),
        )
        plan = plan_person(
            email,
            person,
            memory,
            provider,
            now,
            subscribed=row.subscribed if row else None,
            complete=complete,
        )
        plans[email] = plan
        onoffice = plan.signal.signal
        action = plan.action
        if row is None:
            row = LedgerRow(id=None, address_id=address.id, email=email, last_run_id=run_id)
            existing[email] = row
        elif row.address_id == address.id:
            row.set(last_run_id=run_id)  # claimed by this run (the duplicate rule reads it)
        else:
            row.set(address_id=address.id, last_run_id=run_id)
        touched.append(row)
        if (row.onoffice_status, row.onoffice_changed_at) != (onoffice.status, onoffice.at):
            row.set(onoffice_status=onoffice.status, onoffice_changed_at=onoffice.at)
            history.append(onoffice_seen(email, plan.signal, FULL_SYNC, run_id))
        remembered = dump_memory(plan.memory)
        if row.onoffice_addresses != remembered:
            row.set(onoffice_addresses=remembered)
        if email in held_back:
            # The person opted out at the provider and onOffice does not know yet: sending
            # "subscribed" now would undo it (the lost-unsubscribe problem).
            counts["opted_out"] += 1
            row.set(subscribed=False)
            reason = f"opted out at {label}; the change is being written to onOffice"
            problems.append(
                problem_row(
                    run_id,
                    address,
                    ProblemKind.opted_out,
                    reason,
                    email,
                    code=reasons.HELD_BACK_UNSUBSCRIBED,
                )
            )
            continue
        if plan.kept:
            counts["unchanged"] += 1  # the provider's newer subscribe stands
            continue
        if not plan.wants:
            # Another address of the person opted out in onOffice (this one says Yes).
            counts["opted_out"] += 1
            params: dict[str, Any] = {"address": plan.signal.carrier}
            if plan.unsubscribe:
                push_later.append(plan)  # the incremental push unsubscribes, then carries it
            else:
                row.set(subscribed=False)
                if plan.set_no and defer_write_backs:
                    params[DEFERRED] = True
                elif plan.set_no:
                    person_write_backs.append(plan)
            problems.append(
                problem_row(
                    run_id,
                    address,
                    ProblemKind.opted_out,
                    f"opted out in onOffice on address {plan.signal.carrier}",
                    email,
                    code=reasons.OPTED_OUT_ONOFFICE,
                    params=params,
                )
            )
            continue
        if action in (Action.write_back, Action.bounced, Action.archived):
            assert provider.status is not None
            known = Signal(row.provider_status, row.provider_changed_at)
            if known != provider:
                history.append(
                    signal_entry(
                        email, PROVIDER, provider.status, FULL_SYNC, run_id, at=provider.at
                    )
                )
            row.set(provider_status=provider.status, provider_changed_at=provider.at)
            row.set(subscribed=False)
            # Archived/deleted: neither re-added nor written back (Archive All is a clean-up);
            # a bounce keeps onOffice's value: only its activity, once.
            archived = action == Action.archived
            if action == Action.write_back or not (archived or bounce_known(known)):
                write_backs.append((email, provider))
            when = f" ({provider.at:%Y-%m-%d %H:%M} UTC)" if provider.at else ""
            params = {"provider": label, "when": when}
            if action == Action.bounced:
                counts["bounced"] += 1
                kind, code = ProblemKind.bounced, reasons.BOUNCED_PROVIDER
            elif action == Action.archived:
                counts["archived"] += 1
                kind, code = ProblemKind.archived, reasons.ARCHIVED_PROVIDER
            else:
                counts["opted_out"] += 1
                kind, code = ProblemKind.opted_out, reasons.OPTED_OUT_PROVIDER
            reason = f"{provider.status} at {label}{when}"
            problems.append(
                problem_row(run_id, address, kind, reason, email, code=code, params=params)
            )
            continue
        if action == Action.pending:
            counts["pending_optin"] += 1
            reason = f"waiting for the double opt-in confirmation at {label}"
            problems.append(
                problem_row(
                    run_id,
                    address,
                    ProblemKind.pending_optin,
                    reason,
                    email,
                    code=reasons.PENDING_OPTIN,
                    params={"provider": label},
                )
            )
            continue
        contact = contact_from_address(address, email, language)
        fingerprint = contact_hash(contact)
        previous_tags = sorted(row.tags or []) if row.synced_hash else []
        at_provider = not list_state_known or (member is not None and member.status == SUBSCRIBED)
        if (
            not force
            and action == Action.send
            and at_provider
            and row.synced_hash == fingerprint
            and previous_tags == contact.tags
        ):
            counts["unchanged"] += 1
            continue
        if (
            not force
            and action == Action.send
            and row.rejected_hash == rejection_hash(fingerprint, contact.tags)
        ):
            # Rejected before with these very values: sending again would fail the same way.
            counts["rejected"] += 1
            reason = f"{row.rejected_reason} (unchanged since the last attempt)"
            code = reasons.provider_reason(row.rejected_reason)
            problems.append(
                problem_row(
                    run_id,
                    address,
                    ProblemKind.rejected,
                    reason,
                    email,
                    code=code,
                    params={"repeat": True},
                )
            )
            continue
        removed = sorted(set(previous_tags) - set(contact.tags))
        contact.resubscribe = action == Action.resubscribe
        to_send.append(
            contact.model_dump()
            | {"hash": fingerprint, "address_id": address.id, "removed_tags": removed}
            # In the list read at the run's start: what the run counts it as (contacts.counts).
            | {"listed": (member is not None) if list_state_known else None}
        )
    await contacts.save_ledger_rows(connection.id, touched)
    await record_history(session, connection.id, history)
    await repo.add_problems(problems)
    for email, signal in write_backs:
        await write_back_opt_out(session, connection.provider, connection.id, email, signal)
    for plan in person_write_backs:
        assert plan.signal.carrier is not None
        await write_back_person_opt_out(
            session,
            connection.provider,
            connection.id,
            plan.email,
            plan.signal.carrier,
            plan.signal.signal,
        )
    for plan in push_later:
        assert plan.signal.carrier is not None
        await push_person_later(
            session, connection.tenant_id, connection.id, plan.signal.carrier, f"run:{run_id}"
        )
    await repo.increment(
        run_id,
        addresses_read=len(page),
        onoffice_newsletter_total=len(fresh) - already_synced,
        invalid_emails=invalid,
        missing_emails=missing,
        **counts,
    )
    if to_send:
        await add_to_open_batch(repo, run_id, to_send, batch_limit)


DEFERRED = "write_back_pending"  # reason_params key: the person's No is written after reading


async def add_to_open_batch(
    repo: SyncRepository, run_id: int, to_send: list[dict[str, Any]], limit: int
) -> None:
    """Store the page's contacts in the open batch, filling it to `limit` (the rest of the page
    goes into the next one), and close batches that are full: a run costs ceil(contacts /
    limit) provider calls, not one per page (500 addresses make about 440 contacts to send)."""
    while to_send:
        batch_no, chunk_no, open_size = await repo.run_state(run_id)
        if open_size >= limit:  # the limit was lowered since the batch was opened
            await close_open_batch(repo, run_id)
            continue
        part, to_send = to_send[: limit - open_size], to_send[limit - open_size :]
        repo.add_batch(
            SyncBatch(
                run_id=run_id, chunk_no=chunk_no, batch_no=batch_no, size=len(part), payload=part
            )
        )
        await repo.increment(run_id, chunks_total=1, open_batch_size=len(part))
        if open_size + len(part) >= limit:
            await close_open_batch(repo, run_id)


async def close_open_batch(repo: SyncRepository, run_id: int) -> None:
    """Hand the open batch to a job (sent after this transaction commits)."""
    batch_no, _chunks, open_size = await repo.run_state(run_id)
    if not open_size:
        return
    await repo.set_run(run_id, open_batch_size=0)
    await repo.increment(run_id, batches_total=1)
    enqueue_batch(run_id, batch_no)


def rejection_hash(fingerprint: str, tags: Sequence[str]) -> str:
    return hashlib.sha256(f"{fingerprint}|{'|'.join(sorted(tags))}".encode()).hexdigest()


def duplicate_row(
    run_id: int, address: Address, owner: int, plan: PersonPlan | None
) -> dict[str, Any]:
    """A duplicate: the first address in read order keeps the email; when the person's
    addresses disagree (Yes beside No/Cancellation) the row names them."""
    if plan is not None and address.id in plan.conflicts:
        named = ", ".join(str(i) for i in plan.conflicts)
        return problem_row(
            run_id,
            address,
            ProblemKind.duplicate,
            f"same email as address {owner}; Newsletter values of addresses {named} conflict",
            code=reasons.DUPLICATE_CONFLICT,
            params={"owner": owner, "addresses": named},
        )
    return problem_row(
        run_id,
        address,
        ProblemKind.duplicate,
        f"same email as address {owner}",
        code=reasons.DUPLICATE,
        params={"owner": owner},
    )


def problem_row(
    run_id: int,
    address: Address,
    kind: str,
    reason: str,
    email: str | None = None,
    *,
    code: str = "",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "address_id": address.id,
        "email": email if email is not None else address.email.strip(),
        "kind": str(kind),
        "reason": reason,
        "reason_code": code,
        "reason_params": params,
        "created_at": utcnow(),
    }
