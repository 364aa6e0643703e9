"""The grouped onOffice writes of a drained batch (`app.webhooks.batch`).

The modify actions of all planned events and their activities (one agentslog action per kind,
type, note and time, listing every address) travel several to a request. Each event owns its
actions, so an action onOffice rejects fails that event alone; the finished steps are stored on
the event, so a retry never writes anything twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from app.db.models import Connection, InboundEvent
from app.db.session import Database
from app.webhooks.activities import forget_kinds
from app.webhooks.outcomes import WAITS_FOR_ONOFFICE, settle
from app.webhooks.plan import ACTIVITY_UNSURE, Plan, Stop
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import (
    Address,
    AddressUpdate,
    OnOfficeError,
    OnOfficeTransientError,
)
from onoffice_client.transport import Action, RequestsFailed

if TYPE_CHECKING:
    from app.webhooks.apply import EventApplier

T = TypeVar("T")


class BatchApplier(Protocol):
    """What the grouped writes need of `app.webhooks.batch.BatchApplier` (a protocol, so that
    this module does not import the batch applier that imports it)."""

    applier: EventApplier
    db: Database
    max_attempts: int
    connection: Connection
    onoffice: OnOfficeClient
    addresses: dict[str, list[Address]]

    async def _or_stop(self, rows: Sequence[InboundEvent], call: Awaitable[T]) -> T: ...


async def write_grouped(batch: BatchApplier, plans: Sequence[Plan]) -> set[str]:
    """Send the grouped actions, then settle every plan by its own actions' outcomes; the
    emails whose events failed."""
    onoffice = batch.onoffice
    await _skip_written_activities(batch, plans)
    actions: list[Action] = []
    owners: list[list[tuple[Plan, str]]] = []  # per action: the plans and step it serves
    for plan in plans:
        for address_id, target in plan.modifies:
            action = onoffice.address_action(address_id, AddressUpdate(newsletter=target))
            if action is not None:
                actions.append(action)
                owners.append([(plan, "status")])
    merged: dict[tuple[Any, ...], list[Plan]] = defaultdict(list)
    for plan in plans:
        if plan.activity is not None:
            a = plan.activity
            merged[(a.kind, a.type, a.note, a.at)].append(plan)
    for group in merged.values():
        first = group[0].activity
        assert first is not None
        ids = sorted({i for p in group for i in (p.activity.address_ids if p.activity else [])})
        actions.append(onoffice.activity_action(first.model_copy(update={"address_ids": ids})))
        owners.append([(p, "activity") for p in group])
    outcomes: list[Any] = []
    stop: OnOfficeError | None = None
    if actions:
        try:
            outcomes = await onoffice.run_each(actions)
        except RequestsFailed as exc:
            outcomes, stop = exc.done, exc.error
    errors: dict[int, OnOfficeError] = {}
    step_ok: dict[int, dict[str, bool]] = defaultdict(dict)
    # The request that failed may have been applied: its activities may exist now.
    lost = isinstance(stop, OnOfficeTransientError) and stop.maybe_applied
    unsure: set[int] = set()
    for index, served in enumerate(owners):
        outcome = outcomes[index] if index < len(outcomes) else stop
        good = isinstance(outcome, dict)
        for plan, step in served:
            # A step is done only when all of its actions are (several modifies per email).
            step_ok[id(plan)][step] = step_ok[id(plan)].get(step, True) and good
            if not good:
                error = outcome if isinstance(outcome, OnOfficeError) else None
                errors.setdefault(id(plan), error or OnOfficeError("not sent"))
                if lost and step == "activity" and index >= len(outcomes):
                    unsure.add(id(plan))
    applier = batch.applier
    if any(step_ok[id(p)].get("activity") is False for p in plans):
        forget_kinds(applier.deps.kinds, applier.tenant_id)  # a changed kind or type?
    done_steps = {
        id(p): {step for step, good in step_ok[id(p)].items() if good}
        | ({ACTIVITY_UNSURE} if id(p) in unsure else set())
        for p in plans
    }
    succeeded = [p for p in plans if all(step_ok[id(p)].values())]
    done = {id(p) for p in succeeded}
    failed = [p for p in plans if id(p) not in done]  # by identity: a Plan compares by value
    settling = settle(
        batch.db, batch.connection.id, succeeded, failed, done_steps, errors, batch.max_attempts
    )
    if stop is None and not failed:
        # All written: the next batch goes on while this one's outcomes are committed.
        ids, emails = [p.row.id for p in plans], [p.email for p in plans]
        await applier.settling.defer(settling, ids, emails)
    else:
        await settling
    for plan in succeeded:
        if plan.record is not None:
            _remember(batch, plan)
    if stop is not None and not isinstance(stop, WAITS_FOR_ONOFFICE) and failed:
        raise Stop(attempts=max(p.row.attempts for p in failed))
    if failed and any(isinstance(e, WAITS_FOR_ONOFFICE) for e in errors.values()):
        raise Stop(waiting_for_login=True)
    return {p.email for p in failed}


async def _skip_written_activities(batch: BatchApplier, plans: Sequence[Plan]) -> None:
    """An activity an earlier try sent without learning the answer (ACTIVITY_UNSURE) is sent
    only to the addresses that do not have it; when all have it, it is done."""
    unsure = [p for p in plans if p.activity is not None and ACTIVITY_UNSURE in p.steps]
    if not unsure:
        return
    items = [p.activity for p in unsure if p.activity is not None]
    missing = await batch._or_stop([p.row for p in plans], batch.onoffice.missing_activities(items))
    for plan, item in zip(unsure, missing, strict=True):
        plan.activity = item


def _remember(batch: BatchApplier, plan: Plan) -> None:
    """The written values, for the next wave's decisions."""
    targets = dict(plan.modifies)
    if targets:
        batch.addresses[plan.email] = [
            a.model_copy(update={"newsletter": targets[a.id]}) if a.id in targets else a
            for a in batch.addresses.get(plan.email, [])
        ]
