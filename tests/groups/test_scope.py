"""The scope decision on its own (app/contacts/scope.py): pure, no I/O."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.contacts.scope import ScopeDefinition, address_scope, in_scope, member_keys
from onoffice_client.models import Address
from onoffice_client.scope import Group, User

USERS = [User("1", "anna", "Anna", "Alt"), User("2", "ben", "Ben", "Bauer")]
NORD = Group("7", "Nord", ("1",))


def _address(**extra: list[str]) -> Address:
    return Address(id=1, email="x@y.de", extra=extra)


def test_defaults_by_group() -> None:
    from app.contacts.scope import scope_definition

    assert scope_definition("", None).kind == "customer"
    assert scope_definition("7", None).kind == "group_users"
    stored = {"kind": "field", "field": "Branche", "values": ["Nord"]}
    assert scope_definition("7", stored).field == "Branche"


def test_a_field_scope_needs_field_and_values() -> None:
    with pytest.raises(ValidationError):
        ScopeDefinition(kind="field", field="Branche")
    with pytest.raises(ValidationError):
        ScopeDefinition(kind="field", field="not a field;", values=["x"])
    with pytest.raises(ValidationError):  # the connector's own filter field
        ScopeDefinition(kind="field", field="newsletter_aktiv", values=["1"])


@pytest.mark.parametrize("benutzer", ["anna", "ANNA ", "Anna Alt", "1"])
def test_a_member_is_recognised_by_name_full_name_or_id(benutzer: str) -> None:
    definition = ScopeDefinition(kind="group_users")
    keys = member_keys(USERS[:1])
    assert in_scope(definition, keys, _address(Benutzer=[benutzer]))


def test_others_and_addresses_without_support_user_are_out() -> None:
    definition = ScopeDefinition(kind="group_users")
    keys = member_keys(USERS[:1])
    assert not in_scope(definition, keys, _address(Benutzer=["ben"]))
    assert not in_scope(definition, keys, _address())


def test_the_group_scope_filters_marks_and_checks() -> None:
    scope = address_scope(
        ScopeDefinition(kind="group_users"), group=NORD, users=USERS, claim_user_id="1"
    )
    assert scope.fields == ("Benutzer",)
    assert scope.criteria == {"Benutzer": [{"op": "in", "val": ["1", "anna"]}]}
    assert scope.create_fields == {"Benutzer": "anna"}
    assert scope.accepts(_address(Benutzer=["anna"]))
    assert not scope.accepts(_address(Benutzer=["ben"]))  # not a member of Nord


def test_a_claim_user_outside_the_group_creates_for_its_first_member() -> None:
    scope = address_scope(
        ScopeDefinition(kind="group_users"), group=NORD, users=USERS, claim_user_id="2"
    )
    assert scope.create_fields == {"Benutzer": "anna"}


def test_an_empty_or_unknown_group_covers_nothing() -> None:
    scope = address_scope(ScopeDefinition(kind="group_users"), group=None, users=USERS)
    assert not scope.accepts(_address(Benutzer=["anna"])) and scope.create_fields == {}


def test_the_customer_scope_covers_everything() -> None:
    scope = address_scope(ScopeDefinition(kind="customer"))
    assert scope.accepts(_address()) and not scope.criteria and not scope.fields


def test_a_multiselect_field_scope_creates_with_a_list() -> None:
    definition = ScopeDefinition(kind="field", field="Merkmal", values=["Nord"], multiselect=True)
    scope = address_scope(definition)
    assert scope.create_fields == {"Merkmal": ["Nord"]}
    assert scope.accepts(_address(Merkmal=["Sued", "nord"]))
