"""Marketplace activation over HTTP, against the onOffice emulator."""

from __future__ import annotations

import hashlib
import hmac
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.crypto import SecretBox
from onoffice_client.signature import canonical_url
from tests.tenants.conftest import (
    ACTIVATION_CLAIM,
    API_SECRET,
    API_TOKEN,
    BASE,
    CACHE_ID,
    CUSTOMER_WEB_ID,
    PROVIDER_SECRET,
    Harness,
    activation_params,
    fetch_all,
    form_of,
    signed_query,
)

PATH = "/onoffice/activate"


class TestActivationPage:
    async def test_renders_a_german_form_with_all_signed_parameters(self, harness: Harness) -> None:
        query = signed_query(PATH, activation_params(extra="kept"))
        response = await harness.client.get(f"{PATH}?{query}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["referrer-policy"] == "no-referrer"
        html = response.text
        assert '<html lang="de">' in html
        assert "Jetzt aktivieren" in html
        assert f'name="apiToken" value="{API_TOKEN}"' in html
        # Unknown parameters are signed too, so the form must send them back.
        assert 'name="extra" value="kept"' in html
        assert 'name="secret"' in html
        assert f'action="{BASE}{PATH}"' in html
        assert "window.parent.postMessage(answer" in html

    async def test_speaks_english_for_user_language_or_accept_language(
        self, harness: Harness
    ) -> None:
        query = signed_query(PATH, activation_params(UserLanguage="ENG"))
        by_param = await harness.client.get(f"{PATH}?{query}")
        query = signed_query(PATH, activation_params())
        by_header = await harness.client.get(
            f"{PATH}?{query}", headers={"Accept-Language": "en-GB,en;q=0.9"}
        )
        for response in (by_param, by_header):
            assert response.status_code == 200
            assert '<html lang="en">' in response.text
            assert "Activate now" in response.text

    async def test_rejects_a_tampered_url_as_json(self, harness: Harness) -> None:
        query = signed_query(PATH, activation_params()).replace(CUSTOMER_WEB_ID, "99999")
        response = await harness.client.get(f"{PATH}?{query}")
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signed_url"
        assert "signature is invalid" in response.json()["message"]

    async def test_a_page_url_is_accepted_once(self, harness: Harness) -> None:
        query = signed_query(PATH, activation_params())
        assert (await harness.client.get(f"{PATH}?{query}")).status_code == 200
        replay = await harness.client.get(f"{PATH}?{query}")
        assert replay.status_code == 401
        assert "already used" in replay.json()["message"]


class TestActivate:
    async def test_unlocks_at_onoffice_and_stores_the_tenant_encrypted(
        self, harness: Harness, engine: AsyncEngine, settings: Settings
    ) -> None:
        query = signed_query(PATH, activation_params())
        # The page and its form post are separate purposes: both accept the same URL once.
        assert (await harness.client.get(f"{PATH}?{query}")).status_code == 200
        response = await harness.client.post(PATH, data=form_of(query, "  " + API_SECRET + "\n"))

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == "active"
        assert harness.onoffice.customers[API_TOKEN].unlocked
        assert harness.onoffice.request_counts["do:unlockProvider"] == 1
        (row,) = await fetch_all(engine, "SELECT * FROM tenant")
        assert row["customer_web_id"] == CUSTOMER_WEB_ID
        assert row["customer_name"] == "Muster Immobilien GmbH"
        assert row["api_claim"] == ACTIVATION_CLAIM
        assert row["activated_at"] is not None and row["active"] is True
        stored_secret, stored_token = row["api_secret_encrypted"], row["api_token_encrypted"]
        assert API_SECRET.encode() not in stored_secret and API_TOKEN.encode() not in stored_token
        box = SecretBox.from_settings(settings)
        assert box.decrypt(stored_secret) == API_SECRET
        assert box.decrypt(stored_token) == API_TOKEN

    async def test_reactivation_updates_the_same_tenant(
        self, harness: Harness, engine: AsyncEngine
    ) -> None:
        assert (await harness.activate()).text == "active"
        harness.onoffice.parameter_caches["param-cache-2"] = "claim-2"
        again = await harness.activate(
            parameterCacheId="param-cache-2", apiClaim="claim-2", customerName="Neuer Name"
        )
        assert again.text == "active"
        rows = await fetch_all(engine, "SELECT customer_name, api_claim FROM tenant")
        assert rows == [{"customer_name": "Neuer Name", "api_claim": "claim-2"}]

    async def test_a_rejected_key_can_be_corrected_with_the_same_url(
        self, harness: Harness, engine: AsyncEngine
    ) -> None:
        query = signed_query(PATH, activation_params())
        wrong = await harness.client.post(PATH, data=form_of(query, "not-the-key"))
        assert wrong.status_code == 400
        assert wrong.text.startswith("error: the API key was rejected by onOffice")
        assert await fetch_all(engine, "SELECT id FROM tenant") == []
        # The failed attempt did not use up the signed URL.
        right = await harness.client.post(PATH, data=form_of(query))
        assert right.text == "active"

    async def test_one_url_allows_a_few_attempts_not_unlimited_unlocks(
        self, harness: Harness
    ) -> None:
        query = signed_query(PATH, activation_params())
        answers = [
            await harness.client.post(PATH, data=form_of(query, f"wrong-{i}")) for i in range(8)
        ]
        assert [a.status_code for a in answers] == [400] * 5 + [429] * 3
        assert "too many attempts" in answers[-1].text
        # Even the right key is refused now (so no unlock was attempted): the user restarts
        # the activation.
        assert (await harness.client.post(PATH, data=form_of(query))).status_code == 429

    async def test_an_empty_key_is_refused_without_calling_onoffice(self, harness: Harness) -> None:
        query = signed_query(PATH, activation_params())
        response = await harness.client.post(PATH, data=form_of(query, "   "))
        assert response.status_code == 400
        assert response.text.startswith("error: please enter the API key")
        assert harness.onoffice.http_requests == 0

    async def test_an_overlong_claim_is_refused_before_unlocking(self, harness: Harness) -> None:
        harness.onoffice.parameter_caches[CACHE_ID] = "c" * 5000
        response = await harness.activate(apiClaim="c" * 5000)
        assert response.status_code == 422
        assert response.text.startswith("error: the apiClaim is longer than 4096")
        assert harness.onoffice.http_requests == 0

    async def test_unknown_parameter_cache(self, harness: Harness, engine: AsyncEngine) -> None:
        response = await harness.activate(parameterCacheId="expired-cache")
        assert response.status_code == 400
        assert "parameterCacheId" in response.text and response.text.startswith("error:")
        assert not harness.onoffice.customers[API_TOKEN].unlocked
        assert await fetch_all(engine, "SELECT id FROM tenant") == []

    async def test_tampered_signature(self, harness: Harness, engine: AsyncEngine) -> None:
        query = signed_query(PATH, activation_params())
        form = form_of(query) | {"customerWebId": "99999"}
        response = await harness.client.post(PATH, data=form)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text.startswith("error: the URL signature is invalid")
        assert harness.onoffice.http_requests == 0
        assert await fetch_all(engine, "SELECT id FROM tenant") == []

    async def test_signed_with_another_secret(self, harness: Harness) -> None:
        query = signed_query(PATH, activation_params(), secret="someone-else")
        response = await harness.client.post(PATH, data=form_of(query))
        assert response.status_code == 401
        assert "signature is invalid" in response.text

    async def test_stale_timestamp(self, harness: Harness, settings: Settings) -> None:
        old = str(int(time.time()) - settings.SIGNATURE_MAX_AGE_S - 5)
        query = signed_query(PATH, activation_params(timestamp=old))
        response = await harness.client.post(PATH, data=form_of(query))
        assert response.status_code == 401
        assert "expired" in response.text
        assert harness.onoffice.http_requests == 0

    async def test_future_timestamp(self, harness: Harness) -> None:
        query = signed_query(PATH, activation_params(timestamp=str(int(time.time()) + 600)))
        response = await harness.client.post(PATH, data=form_of(query))
        assert response.status_code == 401
        assert "future" in response.text

    async def test_small_clock_skew_is_tolerated(self, harness: Harness) -> None:
        query = signed_query(PATH, activation_params(timestamp=str(int(time.time()) + 10)))
        assert (await harness.client.post(PATH, data=form_of(query))).text == "active"

    async def test_replayed_submit(self, harness: Harness) -> None:
        query = signed_query(PATH, activation_params())
        assert (await harness.client.post(PATH, data=form_of(query))).text == "active"
        replay = await harness.client.post(PATH, data=form_of(query))
        assert replay.status_code == 401
        assert "already used" in replay.text
        assert harness.onoffice.request_counts["do:unlockProvider"] == 1

    async def test_missing_parameter(self, harness: Harness) -> None:
        params = activation_params()
        del params["parameterCacheId"]
        response = await harness.client.post(PATH, data=form_of(signed_query(PATH, params)))
        assert response.status_code == 401
        assert "missing the parameter `parameterCacheId`" in response.text

    async def test_missing_signature(self, harness: Harness) -> None:
        form = form_of(signed_query(PATH, activation_params()))
        del form["signature"]
        response = await harness.client.post(PATH, data=form)
        assert response.status_code == 401
        assert "missing the parameter `signature`" in response.text


class TestPlusVariants:
    """A `+` in a value is `%2B` in PHP's encoding; onOffice was seen signing a literal `+`."""

    async def _post_signed_over(self, harness: Harness, variant: str) -> str:
        params = {"timestamp": str(int(time.time())), **activation_params()}
        assert "+" in params["apiClaim"]
        message = canonical_url(BASE + PATH, params)
        if variant == "literal":
            message = message.replace("%2B", "+")
        signature = hmac.new(PROVIDER_SECRET.encode(), message.encode(), hashlib.sha256)
        form = {**params, "signature": signature.hexdigest(), "secret": API_SECRET}
        response = await harness.client.post(PATH, data=form)
        return response.text

    async def test_percent_encoded_plus(self, harness: Harness) -> None:
        assert await self._post_signed_over(harness, "percent") == "active"

    async def test_literal_plus(self, harness: Harness) -> None:
        assert await self._post_signed_over(harness, "literal") == "active"
        assert harness.onoffice.parameter_caches.get(CACHE_ID) is None
