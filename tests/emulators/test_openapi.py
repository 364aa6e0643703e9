import json

import pytest

from emulators._openapi import OpenAPIRequestValidator, load_spec
from emulators._shared import shared_dir

SPECS = shared_dir() / "specs"
BREVO = SPECS / "brevo-v3.yml"
MAILCHIMP = SPECS / "mailchimp-marketing.ballerina-derived.openapi.json"
JSON = "application/json"


@pytest.fixture(scope="module")
def brevo() -> OpenAPIRequestValidator:
    return OpenAPIRequestValidator(BREVO, server_prefix="/v3")


@pytest.fixture(scope="module")
def mailchimp() -> OpenAPIRequestValidator:
    return OpenAPIRequestValidator(MAILCHIMP, server_prefix="/3.0")


def body(data: object) -> bytes:
    return json.dumps(data).encode()


class TestBrevoSpec:
    def test_conforming_create_contact(self, brevo: OpenAPIRequestValidator) -> None:
        payload = {
            "email": "a@example.de",
            "attributes": {"VORNAME": "Max"},
            "listIds": [3],
            "updateEnabled": True,
        }
        assert brevo.validate("POST", "/v3/contacts", {}, {}, body(payload), JSON) == []

    def test_wrong_types_are_all_reported(self, brevo: OpenAPIRequestValidator) -> None:
        payload = {"email": 5, "listIds": ["x"]}
        problems = brevo.validate("POST", "/v3/contacts", {}, {}, body(payload), JSON)
        assert len(problems) == 2
        assert any("body.email" in p and "'string'" in p for p in problems)
        assert any("body.listIds[0]" in p for p in problems)

    def test_query_limits_and_unknown_parameters(self, brevo: OpenAPIRequestValidator) -> None:
        ok = brevo.validate(
            "GET", "/v3/contacts/lists", {"limit": "50", "offset": "0"}, {}, None, None
        )
        assert ok == []
        problems = brevo.validate("GET", "/v3/contacts/lists", "limit=500&bogus=1", {}, None, None)
        assert any("maximum of 50" in p for p in problems)
        assert any("bogus" in p for p in problems)

    def test_literal_segment_beats_template(self, brevo: OpenAPIRequestValidator) -> None:
        # /contacts/lists must not be taken for /contacts/{identifier} (which has no POST body
        # of this shape)
        problems = brevo.validate(
            "POST", "/v3/contacts/lists", {}, {}, body({"name": "onoffice", "folderId": 1}), JSON
        )
        assert problems == []
        assert brevo.validate("POST", "/v3/contacts/lists", {}, {}, body({"name": "x"}), JSON)

    def test_one_of_without_required_is_checked_as_any_of(
        self, brevo: OpenAPIRequestValidator
    ) -> None:
        path = "/v3/contacts/lists/7/contacts/remove"
        assert brevo.validate("POST", path, {}, {}, body({"emails": ["a@x.de"]}), JSON) == []
        assert brevo.validate("POST", path, {}, {}, body(["a@x.de"]), JSON)

    def test_encoded_identifier_and_unknown_path(self, brevo: OpenAPIRequestValidator) -> None:
        assert brevo.validate("GET", "/v3/contacts/a%2Bb%40x.de", {}, {}, None, None) == []
        assert "no such path" in brevo.validate("GET", "/v3/nope", {}, {}, None, None)[0]
        assert (
            "outside the server prefix" in brevo.validate("GET", "/contacts", {}, {}, None, None)[0]
        )

    def test_method_body_and_content_type(self, brevo: OpenAPIRequestValidator) -> None:
        assert (
            "method not in the spec"
            in brevo.validate("PATCH", "/v3/contacts", {}, {}, None, None)[0]
        )
        assert "required" in brevo.validate("POST", "/v3/webhooks", {}, {}, None, JSON)[0]
        assert (
            "content type"
            in brevo.validate("POST", "/v3/contacts", {}, {}, b"a=b", "text/plain")[0]
        )
        assert (
            "not valid JSON"
            in brevo.validate(
                "POST", "/v3/contacts", {}, {}, b"{", "application/json; charset=utf-8"
            )[0]
        )


class TestMailchimpSpec:
    def test_conforming_member_upsert(self, mailchimp: OpenAPIRequestValidator) -> None:
        payload = {
            "email_address": "a@example.de",
            "status_if_new": "subscribed",
            "merge_fields": {"FNAME": "Max"},
        }
        path = "/3.0/lists/abc123/members/0cc175b9c0f1b6a831c399e269772661"
        assert mailchimp.validate("PUT", path, {}, {}, body(payload), JSON) == []

    def test_bad_enum_value(self, mailchimp: OpenAPIRequestValidator) -> None:
        payload = {"email_address": "a@example.de", "status_if_new": "bogus"}
        path = "/3.0/lists/abc123/members/0cc175b9c0f1b6a831c399e269772661"
        problems = mailchimp.validate("PUT", path, {}, {}, body(payload), JSON)
        assert len(problems) == 1
        assert "status_if_new" in problems[0]
        # reported with the spec's template, whatever the parameter names are called there
        assert problems[0].startswith("PUT /lists/{")


def test_spec_is_parsed_once() -> None:
    assert load_spec(BREVO) is load_spec(BREVO)
