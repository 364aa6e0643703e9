"""The consent model's action families and run profiles, picked through the environment:
`CONSENT_MODEL_ACTIONS=agent,provider,...` (or `all`; default `PASSING`) and
`CONSENT_MODEL_PROFILE` (`ci`: 100 examples, the default; `soak`: 2,000; `family`: 40; `dev`: 10).
"""

from __future__ import annotations

import os

FAMILIES = frozenset(
    {
        "agent",  # Newsletter Yes/No/Cancellation/not specified and tags, webhook or poll
        "duplicates",  # up to three onOffice addresses per email
        "archive_address",  # an address archived in onOffice
        "email_change",  # an address's email changed
        "provider",  # unsubscribe (user, admin), resubscribe; once/twice/late/never
        "removal",  # single archive, permanent delete
        "bounce",  # cleaned
        "burst",  # Archive All, then apply or dismiss
        "sync",  # full sync, normal or forced; approve held unsubscribes
        "crash",  # the process dies mid-run; the resume sweep finishes it
        "switch",  # another list (also while a run is going)
        "disconnect",  # disconnect and reconnect (also with an event pending)
        "paging",  # an address leaves the Yes filter while a full sync pages the book
        "groups",  # two groups, a connection and list each, scopes by support user; sign-ups
    }
)
# What the product passes (CI). At 14d94d8 only the first five passed; the consent v2 merges
# (one person across duplicates, Archive All, the connection's lifecycle, "left onOffice"
# re-reads) made duplicates, burst, disconnect and paging pass. Session 7: removal (I1: an
# archive whose webhook was lost was undone by the next push of that person; tests/consent/
# test_lost_removal.py) and bounce (I2: an unsubscribe after a bounce, its webhook lost, did not
# reach a "not specified" address; tests/consent/test_unseen_opt_out.py) pass since their fixes;
# switch and email_change since a connection's first poll pushes what changed since its full
# sync (the I1 after a reconnect; tests/consent/test_first_poll.py). burst's one I5 in CI was not
# reproduced (three CI runs and 80 random examples passed under load 5-12); the analysis found
# the burst check's span of all pending removals (one straggler seen with them undid the burst;
# now `is_removal_burst`). The model's Archive All follows the received times
# (`_singles_of_a_spread_burst`) and an I5 names the email's stored events.
# switch passed 40 examples on its branch, then failed the merged CI run with I1: a member the
# connector subscribed to list A, deleted at list B after a switch (onOffice: "not specified"),
# stays subscribed at A after switching back to A: the ledger of A was wiped by the first switch,
# so the run does not know the connector subscribed it (a per-list ledger kept across switches
# would). Session 8: each list's ledger is kept across switches and disconnects (parked per
# customer, group and list; tests/consent/test_model_lifecycle_bugs.py), and the I1 check no
# longer counts an archive/delete at another list whose webhook the product never received
# (the product's rule: only "archived at the provider" there); switch is in CI again.
# groups (issue 19) passed 40 examples with every other CI family, one example in two with
# two groups, and 40 with every example grouped (CONSENT_MODEL_GROUPS=all); it found no product
# bug (its first runs found two model errors: a connection's write was counted for the others
# before they polled, and a bounce was drawn for an unsubscribed member).
# Session 9: the soak's I1 (shard 2/3, load 13-17) was no spread burst: a refused mid-run switch
# had still renamed the audiences, so the reconnect landed on list A while B's Archive-All burst
# stayed held; "apply" confirmed B's removals at A ("subscribed") and lost them (product bug,
# tests/consent/test_burst_across_lists.py). The model now lets such a removal reach A with A's
# next full sync (`awaits_sync`), as the README's rule says. The blob failed again at load ~14
# (a lead's replay on a quieter machine did not; which timing decides was not established).
PASSING = frozenset(
    {"agent", "archive_address", "provider", "sync", "crash"}
    | {"duplicates", "burst", "disconnect", "paging"}
    | {"removal", "bounce", "email_change", "switch"}
    | {"groups"}
)


def enabled() -> frozenset[str]:
    chosen = os.environ.get("CONSENT_MODEL_ACTIONS", "").strip()
    if not chosen:
        return PASSING
    if chosen == "all":
        return FAMILIES
    names = frozenset(n.strip() for n in chosen.split(",") if n.strip())
    unknown = names - FAMILIES
    assert not unknown, f"unknown action families: {sorted(unknown)}"
    return names


ENABLED = enabled()
PROFILES = {
    "dev": {"max_examples": 10, "stateful_step_count": 12},
    "family": {"max_examples": 40, "stateful_step_count": 12},
    "ci": {"max_examples": 100, "stateful_step_count": 10},
    "soak": {"max_examples": 2000, "stateful_step_count": 15},
}
PROFILE = os.environ.get("CONSENT_MODEL_PROFILE", "ci")


def on(family: str) -> bool:
    return family in ENABLED


def every_example_grouped() -> bool:
    """Whether every example (not one in two) has two groups: `groups` alone, or
    CONSENT_MODEL_GROUPS=all."""
    return {"groups"} == ENABLED or os.environ.get("CONSENT_MODEL_GROUPS") == "all"
