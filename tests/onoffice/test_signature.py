from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from emulators._shared import shared_dir
from onoffice_client.signature import (
    canonical_url,
    hmac_v2,
    php_urlencode,
    sign_url_params,
    verify_url_signature,
)

VECTORS = json.loads(shared_dir().joinpath("docs", "onoffice-signature-vectors.json").read_text())
GET = "urn:onoffice-de-ns:smart:2.5:smartml:action:get"


class TestHmacV2:
    def test_docs_vector(self) -> None:
        got = hmac_v2("dX5hkIIU6W", "dhY8h7FeU9", 123456789, "estateCategories", GET)
        assert got == "F9OXyaJv7p+bLkwGDGV7ZUmfYgjH2E24zpsxY5/nVDk="
        assert got == VECTORS["hmac_v2_docs_vector"]

    def test_every_input_is_covered(self) -> None:
        base = hmac_v2("tok", "sec", 1, "address", GET)
        assert base != hmac_v2("tok", "sec", 2, "address", GET)
        assert base != hmac_v2("tok", "sec", 1, "fields", GET)
        assert base != hmac_v2("tok2", "sec", 1, "address", GET)
        assert base != hmac_v2("tok", "sec2", 1, "address", GET)


class TestPhpUrlencode:
    @pytest.mark.parametrize(
        ("raw", "encoded"),
        [
            ("a b", "a+b"),
            ("a+b", "a%2Bb"),
            ("~", "%7E"),
            ("a/b", "a%2Fb"),
            ("Müller & Söhne", "M%C3%BCller+%26+S%C3%B6hne"),
            ("ß", "%C3%9F"),
            ("", ""),
            ("A-z_0.9", "A-z_0.9"),
            ("=?#", "%3D%3F%23"),
        ],
    )
    def test_like_php(self, raw: str, encoded: str) -> None:
        assert php_urlencode(raw) == encoded


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["base"].rsplit("/", 1)[-1])
class TestVectors:
    def test_signed_string(self, case: dict[str, object]) -> None:
        assert canonical_url(case["base"], case["params"]) == case["signed_string"]  # type: ignore[arg-type]

    def test_signature(self, case: dict[str, object]) -> None:
        got = sign_url_params(case["base"], case["params"], VECTORS["secret"])  # type: ignore[arg-type]
        assert got == case["signature"]

    def test_verify_parsed_url(self, case: dict[str, str]) -> None:
        # The way app/ will use it: the query as a web framework decodes it.
        params = parse_qsl(urlsplit(case["url"]).query, keep_blank_values=True)
        assert verify_url_signature(case["base"], params, VECTORS["secret"])
        assert not verify_url_signature(case["base"], params, VECTORS["secret"] + "x")
        assert not verify_url_signature(case["base"] + "/", params, VECTORS["secret"])

    def test_tampered_value_fails(self, case: dict[str, str]) -> None:
        params = dict(parse_qsl(urlsplit(case["url"]).query, keep_blank_values=True))
        params["userId"] = params["userId"] + "0"
        assert not verify_url_signature(case["base"], params, VECTORS["secret"])


class TestUrlSignature:
    BASE = "https://connector.example.com:8443/onoffice/app"
    SECRET = "s3cr3t"

    def test_sorted_by_byte_order_and_signature_dropped(self) -> None:
        params = {"b": "2", "a": "1", "Z": "0", "signature": "abc"}
        assert canonical_url(self.BASE, params) == f"{self.BASE}?Z=0&a=1&b=2"

    def test_special_characters_round_trip(self) -> None:
        params = {
            "customerName": "Weiß ~ Groß/Partner + Co",
            "empty": "",
            "UserLanguage": "DEU",
            "apiClaim": "a+b/c=d",
            "timestamp": "1764230400",
        }
        signature = sign_url_params(self.BASE, params, self.SECRET)
        assert len(signature) == 64 and signature == signature.lower()
        assert verify_url_signature(self.BASE, params | {"signature": signature}, self.SECRET)
        assert verify_url_signature(
            self.BASE, [*params.items(), ("signature", signature.upper())], self.SECRET
        )
        assert "customerName=Wei%C3%9F+%7E+Gro%C3%9F%2FPartner+%2B+Co" in canonical_url(
            self.BASE, params
        )

    def test_empty_value_is_signed_not_dropped(self) -> None:
        with_empty = sign_url_params(self.BASE, {"a": "1", "b": ""}, self.SECRET)
        without = sign_url_params(self.BASE, {"a": "1"}, self.SECRET)
        assert with_empty != without
        assert verify_url_signature(
            self.BASE, {"a": "1", "b": "", "signature": with_empty}, self.SECRET
        )
        assert not verify_url_signature(self.BASE, {"a": "1", "signature": with_empty}, self.SECRET)

    def test_literal_plus_variant_accepted(self) -> None:
        params = {"apiClaim": "a+b", "userId": "1"}
        # onOffice-side signing with "+" in place of "%2B" (seen by area-butler).
        variant = canonical_url(self.BASE, params).replace("%2B", "+")
        signature = hmac.new(self.SECRET.encode(), variant.encode(), hashlib.sha256).hexdigest()
        assert verify_url_signature(self.BASE, params | {"signature": signature}, self.SECRET)
        standard = sign_url_params(self.BASE, params, self.SECRET)
        assert verify_url_signature(self.BASE, params | {"signature": standard}, self.SECRET)

    def test_missing_signature_or_secret_fails(self) -> None:
        assert not verify_url_signature(self.BASE, {"a": "1"}, self.SECRET)
        signature = sign_url_params(self.BASE, {"a": "1"}, "")
        assert not verify_url_signature(self.BASE, {"a": "1", "signature": signature}, "")

    def test_mixed_case_keys_are_distinct(self) -> None:
        lower = sign_url_params(self.BASE, {"userid": "1"}, self.SECRET)
        assert not verify_url_signature(self.BASE, {"userId": "1", "signature": lower}, self.SECRET)
