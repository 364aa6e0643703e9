"""The consent model's rules around the connection's lifecycle and concurrent work: edits while
a full sync pages the book, "Archive All" and the decision on the held burst, a list switch,
disconnect and reconnect. A base of `ConsentModel` (tests/consent/test_model_product.py), whose
helpers (`_pick`, `_tick`, `_form`, `_member_email`, `_unsettled`, `_joins_held_burst`,
`_after_sync`) and record (`truth`, `frozen`, `acknowledged`, `product`) these rules use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from tests.consent.model_families import on
from tests.consent.model_product import member_time
from tests.consent.model_truth import ProviderAction


class LifecycleRules(RuleBasedStateMachine):
    product: Any
    truth: Any
    frozen: Any
    acknowledged: set[tuple[str, ...]]
    connected: bool

    scope_truth: Callable[[], Any]  # the current connection's part (GroupRules)

    @precondition(lambda self: on("paging") and self.connected)
    @rule(
        data=st.data(),
        change=st.sampled_from(["0", "2", "4", "archive"]),
        after_ms=st.sampled_from([0, 30, 80]),
    )
    def agent_edits_during_a_sync(self, data: st.DataObject, change: str, after_ms: int) -> None:
        """An address leaves the newsletter-Yes filter while a full sync reads the book page
        by page (slow onOffice); the change reaches the product through the run itself or
        the poll after it."""
        address = self._pick(data)
        if not address.active or self.product.newsletter(address.id) == change:
            return
        oo = self.product.world.onoffice
        oo.latency = 0.03
        try:
            run_id = self.product.start_sync()
            time.sleep(after_ms / 1000)
            self.frozen.thaw(self.truth, address.email)
            emu = oo.addresses[address.id]
            started = time.time()
            if change == "archive":
                emu.status, address.active = 0, False
            else:
                emu.newsletter, address.value = change, change
            oo.touch(emu)
            run = self.product.wait_run(run_id)
        finally:
            oo.latency = 0.0
        assert run["status"] == "completed", run
        self.product.poll()
        if change != "archive":
            address.changed = (started, time.time())
        self._after_sync()

    @precondition(lambda self: on("burst") and self.connected)
    @rule()
    def archive_all(self) -> None:
        """Mailchimp "Archive All": every member archived, one webhook each, at once."""
        lst = self.product.world.mailchimp.lists[self.product.list_id]
        view = self.scope_truth()
        emails = [e for e in view.emails() if (m := self.product.member(e)) is not None
                  and m.status != "archived" and not self._unsettled(e)]  # fmt: skip
        if len(emails) < self.product.settings.ARCHIVE_BURST_THRESHOLD:
            return
        joins_held = bool(self.product.pending_held())
        records = []
        for email in emails:
            at = self._tick(email)
            self.frozen.freeze(view, self.product, email, "I5 burst")
            self.product.world.mailchimp.member_action(lst.id, email, "archive", at=member_time(at))
            form = self._form("unsubscribe", email, at, action="archive")
            records.append(ProviderAction(email, "burst_archive", at, form,
                                          hook=self.product.hook_url,
                                          lane=self.product.lane))  # fmt: skip
        self.truth.actions.extend(records)
        acks = self.product.deliver_all([r.form for r in records], self.product.hook_url)
        for record, acknowledged in zip(records, acks, strict=True):
            if acknowledged:
                record.known = True
                self.acknowledged.add(tuple(sorted(record.form.items())))
        self.product.settle()
        if not joins_held:
            self._singles_of_a_spread_burst(records)

    def _singles_of_a_spread_burst(self, records: list[ProviderAction]) -> None:
        """The product's rule: ARCHIVE_BURST_THRESHOLD removals received within
        ARCHIVE_BURST_WINDOW_S are a burst (held). Deliveries made at once normally arrive
        within the model's short window; on a loaded machine they may spread wider, and then a
        removal with fewer than THRESHOLD received within a window around it is, by that rule,
        a single archive ("not specified" after the window). The model follows the received
        times; a removal the rule counts in a burst that was not held stays frozen (I5)."""
        settings = self.product.settings
        rows = self.product.sql(
            "SELECT DISTINCT ON (lower(payload->>'email')) lower(payload->>'email'),"
            " extract(epoch FROM received_at), status FROM inbound_event"
            " WHERE payload->>'type' = 'deleted' AND connection_id = :c"
            " ORDER BY lower(payload->>'email'), id DESC",
            c=self.product.connection_id(),
        )
        seen = {email: (float(at), status) for email, at, status in rows}
        times = sorted(seen[r.email][0] for r in records if r.known and r.email in seen)
        window, threshold = settings.ARCHIVE_BURST_WINDOW_S, settings.ARCHIVE_BURST_THRESHOLD
        for record in records:
            if not record.known or record.email not in seen or seen[record.email][1] == "held":
                continue
            at = seen[record.email][0]
            in_burst = any(
                start <= at <= start + window
                and sum(start <= t <= start + window for t in times) >= threshold
                for start in times
            )
            if not in_burst:
                record.action = "archive"
                self.frozen.thaw(self.truth, record.email)

    @precondition(lambda self: on("burst") and self.connected)
    @rule(decision=st.sampled_from(["apply", "dismiss"]))
    def decide_burst(self, decision: str) -> None:
        held = int(self.product.pending_held())
        if not held:
            return
        self.product.decide_held(decision)
        if decision == "apply":  # the person said: these archives are opt-outs after all
            for record in self.truth.actions:
                if record.action == "burst_archive" and record.lane == self.product.lane:
                    record.action = "archive"
                    self.frozen.thaw(self.truth, record.email)
                    # Held at a list the connection has left since (a switch, or a reconnect
                    # to another list): confirmed and applied there ("not specified" in
                    # onOffice), it reaches the current list with that list's next full sync
                    # (issue #17's soak I1: the model demanded it at once).
                    record.awaits_sync = record.form.get("data[list_id]") != self.product.list_id

    # -- the connector ----------------------------------------------------------------------

    @precondition(lambda self: on("switch") and self.connected)
    @rule(mid_run=st.booleans())
    def switch_list(self, mid_run: bool) -> None:
        """The customer moves the connection to another audience, then syncs."""
        if mid_run:
            self.product.start_sync()
        response = self.product.switch_list()
        assert response.status_code in (200, 409), response.text
        self.product.settle()
        run = self.product.sync()
        assert run["status"] == "completed", run
        self._after_sync()

    @precondition(lambda self: on("disconnect") and self.connected)
    @rule(data=st.data(), pending=st.booleans())
    def disconnect_and_reconnect(self, data: st.DataObject, pending: bool) -> None:
        """The customer disconnects (maybe while an acknowledged archive waits out its
        window), connects the same list again and syncs."""
        if pending and (email := self._member_email(data)) is not None:
            at = self._tick(email)
            self.product.world.mailchimp.member_action(
                self.product.list_id, email, "archive", at=member_time(at)
            )
            form = self._form("unsubscribe", email, at, action="archive")
            record = ProviderAction(
                email, "archive", at, form, hook=self.product.hook_url, lane=self.product.lane
            )
            self.truth.actions.append(record)
            self.frozen.thaw(self.truth, email)
            self._joins_held_burst(record)
            if self.product.deliver(form, record.hook):
                record.known = True
                self.acknowledged.add(tuple(sorted(form.items())))
        self.product.disconnect()
        response = self.product.connect()
        assert response.status_code == 200, response.text
        run = self.product.sync()
        assert run["status"] == "completed", run
        self._after_sync()
