"""The invariants I1-I5 of the consent model, checked against the real product's world after
a step settled (the queues drained). Each check names the invariant and the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.consent.model_product import Product, member_time
from tests.consent.model_truth import REMOVALS, SLACK, TIE, YES, Truth, allowed_onoffice


@dataclass
class Frozen:
    """Addresses whose Newsletter value must not change: an Archive-All burst (I5) or a bounce
    (I2) left them as they were. An email leaves this record with its next signal."""

    values: dict[int, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)  # email -> "I5 burst" | "I2 bounce"

    def freeze(self, truth: Truth, product: Product, email: str, why: str) -> None:
        self.why[email] = why
        for a in truth.of(email):
            self.values[a.id] = product.newsletter(a.id)

    def thaw(self, truth: Truth, email: str) -> None:
        if self.why.pop(email, None) is not None:
            for a in truth.of(email):
                self.values.pop(a.id, None)


def check_i1(truth: Truth, product: Product) -> None:
    """Nobody is subscribed whose newest explicit signal is an opt-out (a person who signed up
    again inside the provider, untouched by the product since, is the provider's own state)."""
    for email in truth.emails():
        if truth.newest(email) != "out":
            continue
        member = product.member(email)
        if member is None or member.status != "subscribed":
            continue
        own = [a for a in truth.actions if a.email == email and a.action == "subscribe"]
        if own and member.last_changed == member_time(max(a.at for a in own)):
            continue
        if _removal_only_read_at_another_list(truth, product, email):
            continue
        if _removal_at_another_list_awaits_sync(truth, product, email):
            continue
        raise AssertionError(
            f"I1: {email} is subscribed at the provider, but its newest explicit signal is an "
            f"opt-out: {truth.signals(email)}; onOffice {_values(truth, product, email)}"
        )


def _removal_only_read_at_another_list(truth: Truth, product: Product, email: str) -> bool:
    """The newest signal is an archive or delete at another list whose webhook the product
    never received: a list read cannot tell it from "Archive All", and the product's rule
    (README, "archived ... at the provider is not an opt-out") lists it as archived at that
    list and never writes it to onOffice, so it does not keep the person from the list the
    connection switched to (the old list does not re-add the member: I1 holds there)."""
    last = truth.last_provider_signal(email)
    return (
        last is not None
        and last.action in REMOVALS
        and not last.known
        and last.form.get("data[list_id]") != product.list_id
    )


def _removal_at_another_list_awaits_sync(truth: Truth, product: Product, email: str) -> bool:
    """The newest signal is a removal at another list, applied by a user's decision on its
    held burst after the connection left that list: the product confirms it there and writes
    "not specified" (I2 holds), and the current list's next full sync unsubscribes the person
    as "left onOffice" (README, "Consent comes first"); until then I1 does not count it."""
    last = truth.last_provider_signal(email)
    return (
        last is not None
        and last.action in REMOVALS
        and last.awaits_sync
        and last.form.get("data[list_id]") != product.list_id
    )


def check_i2(truth: Truth, product: Product, frozen: Frozen) -> None:
    """Every provider opt-out that is the newest signal shows on every onOffice address of the
    email (No; "not specified" for a single archive/delete); a bounce keeps onOffice's value."""
    for email in truth.emails():
        action = truth.provider_opt_out_wins(email)
        if action is None:
            continue
        allowed = allowed_onoffice(action.action)
        recorded = next(i for i, known in enumerate(truth.actions) if known is action)
        for a in truth.of(email):
            if action.action in REMOVALS and a.joined > recorded:
                # The agent gave this address the email after the archive/delete was applied:
                # the product's rule (README "Consent comes first": archived at the provider
                # is not an opt-out) lists the person as archived and writes nothing onto an
                # address that joins later; nothing is sent to it (I1 still holds).
                continue
            if a.changed is not None and a.changed[1] + TIE + SLACK > action.at:
                continue  # the agent set this address after the opt-out (e.g. "not specified")
            if a.edited > recorded and a.value != YES:
                # The agent set No, Cancellation or a neutral value after the opt-out had
                # happened (the model's provider clock may run ahead of the agent's): the
                # agent's later value stands (the product writes No only over Yes, and an
                # applier's write that came before the agent's edit is not repeated).
                continue
            if a.active and product.newsletter(a.id) not in allowed:
                raise AssertionError(
                    f"I2: {email}'s {action.action} at the provider (the newest signal) does not "
                    f"show on address {a.id}: {product.newsletter(a.id)!r}, expected one of "
                    f"{sorted(allowed)}; signals {truth.signals(email)}"
                )
    _check_frozen(product, frozen, "I2 bounce")


def check_i3(product: Product, acknowledged: set[tuple[str, ...]]) -> None:
    """No acknowledged provider event is lost (each is stored once and, once the queues
    drained, none is left pending or failed) or applied twice (stored twice)."""
    rows = product.sql(
        "SELECT status, connection_id, payload FROM inbound_event WHERE source = 'mailchimp'"
        " AND dedupe_key NOT LIKE 'reconcile:%' AND dedupe_key NOT LIKE 'person:%'"
    )
    if len(rows) != len(acknowledged):
        raise AssertionError(
            f"I3: {len(acknowledged)} distinct events acknowledged, {len(rows)} stored"
        )
    stuck = [(r[0], r[1]) for r in rows if r[0] in ("pending", "failed")]
    if stuck:
        raise AssertionError(f"I3: acknowledged events left unapplied after settling: {stuck}")


def check_i4(
    truth: Truth,
    product: Product,
    before: dict[str, str | None],
    yes_before: set[str],
    touched: set[str],
) -> None:
    """A person none of whose addresses turned to an opt-out and one of whose addresses stayed
    an active Yes through the step is not unsubscribed by it."""
    yes_after = active_yes(truth, product)
    for email in sorted(yes_before & yes_after - touched):
        if before.get(email) != "subscribed" or truth.newest(email) != "in":
            continue
        last = truth.last_provider_signal(email)
        if last is not None and last.action not in ("subscribe",):
            continue
        member = product.member(email)
        status = member.status if member else None
        if status != "subscribed":
            raise AssertionError(
                f"I4: {email} stayed an active Yes with no opt-out, yet the step left it "
                f"{status!r} at the provider; onOffice {_values(truth, product, email)}"
            )


def check_i5(product: Product, frozen: Frozen) -> None:
    """An Archive-All burst never changes onOffice (unless a person applied it)."""
    _check_frozen(product, frozen, "I5 burst")


def _check_frozen(product: Product, frozen: Frozen, why: str) -> None:
    for email, reason in frozen.why.items():
        if reason != why:
            continue
        for address_id, value in frozen.values.items():
            now = product.newsletter(address_id)
            if address_id in product.world.onoffice.addresses and now != value:
                owner = product.world.onoffice.addresses[address_id].email
                if owner == email:
                    raise AssertionError(
                        f"{why.split()[0]}: address {address_id} of {email} changed from "
                        f"{value!r} to {now!r} after a {why.split()[1]}; its events "
                        f"{_events(product, email)}"
                    )


def active_yes(truth: Truth, product: Product) -> set[str]:
    book = product.world.onoffice.addresses
    return {
        a.email
        for a in truth.addresses.values()
        if a.active and a.id in book and str(book[a.id].newsletter) == YES
    }


def statuses(truth: Truth, product: Product) -> dict[str, str | None]:
    return {e: (m.status if (m := product.member(e)) else None) for e in truth.emails()}


def _values(truth: Truth, product: Product, email: str) -> dict[int, str]:
    return {a.id: product.newsletter(a.id) for a in truth.of(email)}


def _events(product: Product, email: str) -> list[tuple[object, ...]]:
    """The stored events of `email` (evidence for a failure): id, status, type, action,
    received, applied, note."""
    rows = product.sql(
        "SELECT id, status, payload->>'type', payload->>'action', received_at, applied_at,"
        " last_error FROM inbound_event WHERE lower(payload->>'email') = :email ORDER BY id",
        email=email,
    )
    return [tuple(r) for r in rows]


def check_step(model: Any) -> None:
    """Every invariant after a step of `model` (tests/consent/test_model_product.py): the
    scope invariant (groups), I3 and I5 once, I1, I2 and I4 for each connection on its part
    of the record (its scope's addresses, its list's provider actions)."""
    from tests.consent.model_groups import lane_views

    product, truth = model.product, model.truth
    if model.grouped:
        model.observe()
        model.check_scopes()
    check_i3(product, model.acknowledged)
    check_i5(product, model.frozen)
    values = _agent_values(truth)
    for lane, view in lane_views(truth, product):
        with product.using(lane):
            check_i1(view, product)
            check_i2(view, product, model.frozen)
            # I4 is about what one step did: compare with the state after the previous step.
            if lane in model.before:
                statuses_before, yes_before, actions, values_before, list_id = model.before[lane]
                touched = {a.email for a in truth.actions[actions:]}
                touched |= {e for e, v in values.items() if v != values_before.get(e)}
                touched |= truth.pending_written() | model.written_now
                if list_id == product.list_id:
                    check_i4(view, product, statuses_before, yes_before, touched)
            model.before[lane] = (
                statuses(view, product),
                active_yes(view, product),
                len(truth.actions),
                values,
                product.list_id,
            )


def _agent_values(truth: Truth) -> dict[str, tuple[tuple[int, str, bool], ...]]:
    out: dict[str, list[tuple[int, str, bool]]] = {}
    for a in truth.addresses.values():
        out.setdefault(a.email, []).append((a.id, a.value, a.active))
    return {e: tuple(v) for e, v in out.items()}
