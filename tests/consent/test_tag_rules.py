"""The pure three-way tag merge (app/contacts/tags.py), table and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.contacts.tags import address_tag_writes, merge_tags, provider_tags_after, tags_to_send

TAGS = st.frozensets(st.sampled_from(["Kaeufer", "Mieter", "Investor", "Gewerbe", "Neubau"]))


@pytest.mark.parametrize(
    ("base", "onoffice", "provider", "merged"),
    [
        # nothing changed
        ({"K"}, {"K"}, {"K"}, ["K"]),
        # onOffice removed a tag (N6: it must not come back)
        ({"K", "M"}, {"K"}, {"K", "M"}, ["K"]),
        # onOffice added a tag
        ({"K"}, {"K", "V"}, {"K"}, ["K", "V"]),
        # the provider added a tag
        ({"K"}, {"K"}, {"K", "M"}, ["K", "M"]),
        # the provider removed a tag
        ({"K", "M"}, {"K", "M"}, {"K"}, ["K"]),
        # both removed it, both added it
        ({"K", "M"}, {"K", "V"}, {"K", "V"}, ["K", "V"]),
        # changes on both sides, different tags: all kept
        ({"K", "M", "G"}, {"K", "G", "N"}, {"M", "G", "I"}, ["G", "I", "N"]),
        # never synced: a removal cannot be told from an addition, both sides' tags are kept
        (None, {"K"}, {"M"}, ["K", "M"]),
        (None, set(), set(), []),
    ],
)
def test_merge_table(
    base: set[str] | None, onoffice: set[str], provider: set[str], merged: list[str]
) -> None:
    assert merge_tags(base, onoffice, provider) == merged


@given(TAGS, TAGS, TAGS)
def test_each_sides_change_since_the_base_is_kept(
    base: frozenset[str], onoffice: frozenset[str], provider: frozenset[str]
) -> None:
    merged = set(merge_tags(base, onoffice, provider))
    for tag in base | onoffice | provider:
        if (tag in onoffice) != (tag in base):
            assert (tag in merged) == (tag in onoffice)  # onOffice's change, first
        elif (tag in provider) != (tag in base):
            assert (tag in merged) == (tag in provider)  # the provider's change
        else:
            assert (tag in merged) == (tag in base)  # nobody changed it
    assert merged <= base | onoffice | provider


@given(TAGS, TAGS)
def test_one_sided_changes_and_idempotence(base: frozenset[str], side: frozenset[str]) -> None:
    # Only one side changed: the result is that side, whichever it is.
    assert merge_tags(base, side, base) == sorted(side)
    assert merge_tags(base, base, side) == sorted(side)
    # Both sides agree: nothing to merge.
    assert merge_tags(base, side, side) == sorted(side)


@given(TAGS, TAGS, TAGS)
def test_merging_the_result_again_changes_nothing(
    base: frozenset[str], onoffice: frozenset[str], provider: frozenset[str]
) -> None:
    merged = merge_tags(base, onoffice, provider)
    # Both sides written with the result, which becomes the new base: a fixpoint.
    assert merge_tags(merged, merged, merged) == merged
    # A side that already has the result keeps it when the other did not change since.
    assert merge_tags(merged, merged, merged) == merge_tags(onoffice, merged, onoffice)


@given(TAGS, TAGS, TAGS)
def test_unknown_base_is_the_union(
    base: frozenset[str], onoffice: frozenset[str], provider: frozenset[str]
) -> None:
    assert merge_tags(None, onoffice, provider) == sorted(onoffice | provider)


def test_tags_to_send_keeps_a_provider_removal() -> None:
    # The provider removed "Mieter" since the last sync: the batch does not add it back.
    assert tags_to_send(["Kaeufer", "Mieter"], ["Kaeufer", "Mieter"], ["kaeufer"]) == ["Kaeufer"]
    # onOffice's own additions are sent; a member the run did not find gets everything.
    assert tags_to_send(["Kaeufer"], ["Kaeufer", "Mieter"], ["Kaeufer"]) == ["Kaeufer", "Mieter"]
    assert tags_to_send(["Kaeufer"], ["Kaeufer", "Mieter"], None) == ["Kaeufer", "Mieter"]
    assert tags_to_send(None, ["Kaeufer"], []) == ["Kaeufer"]


def test_provider_tags_after_a_batch() -> None:
    assert provider_tags_after(["Kaeufer", "VIP", "Mieter"], ["mieter"], ["Kaeufer", "Neubau"]) == [
        "Kaeufer",
        "VIP",
        "Neubau",
    ]


def test_each_address_of_a_person_is_merged_on_its_own() -> None:
    """The pull-back onto a person's addresses: the marketer removed K and added M since the
    last sync (base {K}); address 2 also carries N, an agent's change on it alone (kept);
    address 3 already matches (not written); address 4 had K removed by an agent (onOffice's
    change wins there)."""
    writes = address_tag_writes({"K"}, {"M"}, {1: ["K"], 2: ["K", "N"], 3: ["M"], 4: []})
    assert writes == {1: ["M"], 2: ["M", "N"], 4: ["M"]}
    assert address_tag_writes({"K"}, {"K"}, {1: ["K"], 2: ["K", "N"]}) == {}  # nothing moved


@given(TAGS, TAGS, st.dictionaries(st.integers(1, 5), TAGS, max_size=4))
def test_address_writes_are_each_addresses_merge_where_it_changes(
    base: frozenset[str], provider: frozenset[str], addresses: dict[int, frozenset[str]]
) -> None:
    writes = address_tag_writes(base, provider, addresses)
    for address_id, tags in addresses.items():
        merged = merge_tags(base, tags, provider)
        assert writes.get(address_id, sorted(tags)) == merged
        assert (address_id in writes) == (set(merged) != set(tags))
