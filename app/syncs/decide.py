"""The decision of one onOffice page, as a pure function: every address gets exactly one
outcome from the ledger, this run's read of the provider's list and the person planner
(`app.contacts.person.plan_person`). `classify.process_page` executes it (ledger, problems,
batches, write-backs); the preview (`app/syncs/preview.py`) only reports it. Both decide
through this one function, so a preview says exactly what a run would do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.contacts.person import PersonPlan, dump_memory, load_memory, person_addresses, plan_person
from app.contacts.repository import provider_signal
from app.contacts.rows import LedgerRow
from app.contacts.rules import SUBSCRIBED, Action, Signal, bounce_known
from app.contacts.values import Language, check_email, contact_from_address, contact_hash
from app.db.base import utcnow
from app.db.models import ProblemKind
from app.history.writer import FULL_SYNC, PROVIDER, Entry, onoffice_seen, signal_entry
from app.i18n import reasons
from onoffice_client.models import Address

DEFERRED = "write_back_pending"  # reason_params key: the person's No is written after reading
OUTCOME_KEYS: tuple[str, ...] = ("duplicates", "unchanged", "rejected", "opted_out")
OUTCOME_KEYS += ("pending_optin", "bounced", "archived", "invalid_emails", "missing_emails")


@dataclass
class PageDecision:
    """What a run does with one page (see `decide_page`)."""

    problems: list[dict[str, Any]] = field(default_factory=list)
    to_send: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOME_KEYS, 0))
    touched: list[LedgerRow] = field(default_factory=list)
    # Provider opt-outs/bounces that go to onOffice (the webhook applier writes them).
    write_backs: list[tuple[str, Signal]] = field(default_factory=list)
    # A person's No in onOffice written to its other addresses that still say Yes.
    person_write_backs: list[PersonPlan] = field(default_factory=list)
    # Persons the incremental push unsubscribes and carries later.
    push_later: list[PersonPlan] = field(default_factory=list)
    already_synced: int = 0
    # (address id, email) of the addresses counted unchanged (nothing sent).
    unchanged: list[tuple[int, str]] = field(default_factory=list)
    # The signals this page saw for the consent history (recorded by a run, not a preview).
    history: list[Entry] = field(default_factory=list)


def valid_candidates(
    run_id: int, fresh: Sequence[Address], decision: PageDecision
) -> list[tuple[Address, str]]:
    """The addresses with a usable email (normalised); the others become problems."""
    candidates: list[tuple[Address, str]] = []
    for address in fresh:
        check = check_email(address.email)
        if check.problem is not None:
            decision.problems.append(
                problem_row(run_id, address, check.problem, check.reason, code=check.code)
            )
            key = (
                "missing_emails" if check.problem == ProblemKind.missing_email else "invalid_emails"
            )
            decision.counts[key] += 1
            continue
        candidates.append((address, check.email))
    return candidates


def decide_page(
    run_id: int,
    label: str,
    fresh: Sequence[Address],
    existing: dict[str, LedgerRow],
    members: Mapping[str, Any],
    others: Mapping[str, Sequence[Address]] | None,
    language: Language,
    *,
    force: bool = False,
    held_back: frozenset[str] = frozenset(),
    list_state_known: bool = False,
    defer_write_backs: bool = False,
    now: datetime | None = None,
) -> PageDecision:
    """Decide every address of `fresh` (a page less the addresses this run already handled).

    `existing` holds the ledger rows of the page's emails and is updated in place (rows this
    run claims are added; `touched` lists the rows to save); `members` is this run's read of the
    provider's list by email; `label` names the provider in reasons."""
    now = now or utcnow()
    decision = PageDecision()
    counts = decision.counts
    problems = decision.problems
    candidates = valid_candidates(run_id, fresh, decision)
    owners: dict[str, int] = {}
    plans: dict[str, PersonPlan] = {}
    by_email: dict[str, list[Address]] = {}
    for address, email in candidates:
        by_email.setdefault(email, []).append(address)
    for address, email in candidates:
        row = existing.get(email)
        if row is not None and row.last_run_id == run_id and row.address_id == address.id:
            decision.already_synced += 1  # handled by an earlier page of this run
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
        decision.touched.append(row)
        if (row.onoffice_status, row.onoffice_changed_at) != (onoffice.status, onoffice.at):
            row.set(onoffice_status=onoffice.status, onoffice_changed_at=onoffice.at)
            decision.history.append(onoffice_seen(email, plan.signal, FULL_SYNC, run_id))
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
            decision.unchanged.append((address.id, email))
            continue
        if not plan.wants:
            # Another address of the person opted out in onOffice (this one says Yes).
            counts["opted_out"] += 1
            params: dict[str, Any] = {"address": plan.signal.carrier}
            if plan.unsubscribe:
                decision.push_later.append(plan)  # the push unsubscribes, then carries it
            else:
                row.set(subscribed=False)
                if plan.set_no and defer_write_backs:
                    params[DEFERRED] = True
                elif plan.set_no:
                    decision.person_write_backs.append(plan)
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
                decision.history.append(
                    signal_entry(
                        email, PROVIDER, provider.status, FULL_SYNC, run_id, at=provider.at
                    )
                )
            row.set(provider_status=provider.status, provider_changed_at=provider.at)
            archived = action == Action.archived
            if archived and member is not None and member.status == SUBSCRIBED:
                # This run's read shows the member subscribed at this list although the
                # person's newest signal is a removal, learned at another list (a return to
                # this one, `carry_opt_outs`): the push removes the member here too.
                decision.push_later.append(plan)
            else:
                row.set(subscribed=False)
            # Archived/deleted: neither re-added nor written back (Archive All is a clean-up);
            # a bounce keeps onOffice's value: only its activity, once.
            if action == Action.write_back or not (archived or bounce_known(known)):
                decision.write_backs.append((email, provider))
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
            decision.unchanged.append((address.id, email))
            continue
        if (
            not force
            and action == Action.send
            and row.rejected_hash == rejection_hash(fingerprint, contact.tags)
        ):
            # Rejected before with these very values: sending again would fail the same way.
            counts["rejected"] += 1
            code, detail, params = reasons.read_rejection(row.rejected_reason)
            problems.append(
                problem_row(
                    run_id,
                    address,
                    ProblemKind.rejected,
                    detail,
                    email,
                    code=code,
                    params=params | {"repeat": True},
                )
            )
            continue
        removed = sorted(set(previous_tags) - set(contact.tags))
        contact.resubscribe = action == Action.resubscribe
        decision.to_send.append(
            contact.model_dump()
            | {"hash": fingerprint, "address_id": address.id, "removed_tags": removed}
            # In the list read at the run's start: what the run counts it as (contacts.counts).
            | {"listed": (member is not None) if list_state_known else None}
        )
    return decision


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
