"""Tags by three-way merge (pure: no I/O).

A contact's tags live on both sides: onOffice's `NewsletterTag` keys and the provider's tags
(mapped to those keys). The ledger keeps the set last synced (`contact.tags`): the common
ancestor. Each side's change since then is kept, tag by tag: a tag one side added is added to
the other, a tag one side removed is removed from the other. When both sides changed the same
tag differently, onOffice wins (it is the master of the address); a tag neither side changed
keeps its last synced state. Without a last synced set (never synced) no removal can be told
from an addition: both sides' tags are kept (the union), as a first sync transfers them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def merge_tags(
    base: Iterable[str] | None, onoffice: Iterable[str], provider: Iterable[str]
) -> list[str]:
    """The tag set both sides should have (sorted): `base` is the set last synced (None:
    unknown), `onoffice` and `provider` what each side has now."""
    ours, theirs = set(onoffice), set(provider)
    if base is None:
        return sorted(ours | theirs)
    last = set(base)
    merged: set[str] = set()
    for tag in last | ours | theirs:
        was = tag in last
        if (tag in ours) != was:  # onOffice changed it: its value, also in a conflict
            keep = tag in ours
        elif (tag in theirs) != was:  # only the provider changed it
            keep = tag in theirs
        else:
            keep = was
        if keep:
            merged.add(tag)
    return sorted(merged)


def address_tag_writes(
    base: Iterable[str] | None, provider: Iterable[str], addresses: Mapping[int, Iterable[str]]
) -> dict[int, list[str]]:
    """The tag pull-back onto every onOffice address of a person (`addresses`: each address's
    tags now, by id): each address is merged three ways on its own (`merge_tags(base, its
    tags, provider)`, so a change an agent made on that address alone is kept), and only the
    addresses whose tags change are returned, with their merged set."""
    writes: dict[int, list[str]] = {}
    for address_id, tags in addresses.items():
        ours = set(tags)
        merged = merge_tags(base, ours, provider)
        if set(merged) != ours:
            writes[address_id] = merged
    return writes


def tags_to_send(
    base: Iterable[str] | None, onoffice: Iterable[str], provider: Iterable[str] | None
) -> list[str]:
    """The tags a full sync's batch sends for a contact (app/syncs/send.py): onOffice's tags,
    except those the provider removed since the last sync (the merge keeps that removal; the
    tag pull-back then removes them in onOffice). `provider`: the member's tags as this run
    read them (None: not in the list, everything is sent)."""
    ours = set(onoffice)
    if base is None or provider is None:
        return sorted(ours)
    have = {t.strip().lower() for t in provider}
    theirs = {t for t in set(base) | ours if t.lower() in have}
    return sorted(ours & set(merge_tags(base, ours, theirs)))


def provider_tags_after(
    provider: Iterable[str], removed: Iterable[str], sent: Iterable[str]
) -> list[str]:
    """A member's tags after a batch removed `removed` and sent `sent` (names compared
    without case, as the provider does), in the provider's order."""
    gone = {t.strip().lower() for t in removed}
    after = [t for t in provider if t.strip().lower() not in gone]
    have = {t.strip().lower() for t in after}
    after += [t for t in sent if t.strip().lower() not in have]
    return after


def push_tags(base: Iterable[str] | None, onoffice: Iterable[str]) -> tuple[list[str], list[str]]:
    """The incremental push (which does not read the provider's tags): onOffice's changes
    since the set last synced, as (tags to add, tags to remove). A tag both had is left alone,
    so one the provider removed since is not added back (the merge keeps that removal; the
    next full sync's pull-back takes it out of onOffice too). Never synced: add them all."""
    ours = set(onoffice)
    if base is None:
        return sorted(ours), []
    last = set(base)
    return sorted(ours - last), sorted(last - ours)
