"""Which count an accepted contact of a full sync goes to (a pure decision, no I/O)."""

from __future__ import annotations

ACCEPTED_KEYS = ("created", "updated", "unchanged")


def counted_as(provider_says: str, listed_at_start: bool | None) -> str:
    """`provider_says`: the provider's own answer (created, updated, unchanged, or
    synced_unspecified when it does not tell). `listed_at_start`: whether the email was in the
    list state the run read at its start (None: not known, e.g. a batch built without it).

    New to the list at the run's start: "created", whatever the provider answered. A batch is
    sent again when its answer was lost (a worker killed, the database gone before the answer was
    recorded), and the provider then answers "updated" or "unchanged" for members its first
    request created: counting by that answer would make the run's counts depend on the crash.
    Listed at the start: the provider's answer ("created" too, when the member was deleted
    since the read). A provider that does not tell keeps "synced_unspecified"."""
    if listed_at_start is False and provider_says in ACCEPTED_KEYS:
        return "created"
    return provider_says
