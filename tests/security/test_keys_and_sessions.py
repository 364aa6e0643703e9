"""No constant key (a generated, 0600 key file instead), HKDF-separated keys, session tokens
that are forged, foreign, expired or not JSON are refused (issue 9)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import stat
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.config import Environment, Settings
from app.crypto import KEY_FILE_NAME, KeyPurpose, SecretBox, derive_key, master_keys
from tests.security.conftest import World, bearer, open_world, tenant

# The constant the development fallback used to derive its key from.
OLD_DEV_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"newsletter-connector-dev").digest())


def dev_settings(tmp_path: Path, name: str = "c.db") -> Settings:
    return Settings(
        ENV=Environment.development,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / name}",
        ENCRYPTION_KEY=None,
    )


def session_body(tenant_id: int, web_id: str) -> bytes:
    return json.dumps(
        {"v": 1, "tenant_id": tenant_id, "customer_web_id": web_id, "group_id": "", "user_id": "1"}
    ).encode()


class TestNoConstantKey:
    def test_a_random_key_is_generated_once_stored_0600_beside_the_database_and_logged(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        first_dir, second_dir = tmp_path / "a", tmp_path / "b"
        first_dir.mkdir()
        second_dir.mkdir()
        with caplog.at_level(logging.WARNING, logger="app.crypto"):
            key = master_keys(dev_settings(first_dir))
        key_file = first_dir / KEY_FILE_NAME
        assert key == [key_file.read_text().strip().encode()]
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        (record,) = [r for r in caplog.records if r.getMessage() == "crypto.key_generated"]
        assert record.path == str(key_file)  # type: ignore[attr-defined]
        assert master_keys(dev_settings(first_dir)) == key  # reused, not regenerated
        assert master_keys(dev_settings(second_dir)) != key  # another installation
        assert OLD_DEV_KEY not in (key[0], master_keys(dev_settings(second_dir))[0])

    def test_data_dir_setting_chooses_where_the_key_lives(self, tmp_path: Path) -> None:
        settings = dev_settings(tmp_path).model_copy(update={"DATA_DIR": tmp_path / "state"})
        master_keys(settings)
        assert (tmp_path / "state" / KEY_FILE_NAME).exists()
        assert not (tmp_path / KEY_FILE_NAME).exists()

    async def test_a_token_minted_with_the_old_public_dev_key_is_refused(
        self, settings: Settings
    ) -> None:
        async with open_world(settings.model_copy(update={"ENCRYPTION_KEY": None})) as world:
            t = tenant(1)
            await world.activate(t)
            genuine = await world.session(t)
            tenant_id = (await world.client.get("/api/v1/session", headers=bearer(genuine))).json()[
                "tenant_id"
            ]
            forged = Fernet(OLD_DEV_KEY).encrypt(session_body(tenant_id, t.web_id)).decode()
            response = await world.client.get("/api/v1/connection", headers=bearer(forged))
            assert response.status_code == 401


class TestDerivedKeys:
    def test_session_and_data_keys_differ_and_differ_from_the_master(self) -> None:
        master = Fernet.generate_key()
        data, session = derive_key(master, KeyPurpose.data), derive_key(master, KeyPurpose.session)
        assert len({master, data, session}) == 3

    async def test_a_secret_encrypted_at_rest_is_not_a_session_token(self, world: World) -> None:
        t = tenant(1)
        await world.activate(t)
        genuine = await world.session(t)
        tenant_id = (await world.client.get("/api/v1/session", headers=bearer(genuine))).json()[
            "tenant_id"
        ]
        data_box = SecretBox.from_settings(world.settings, KeyPurpose.data)
        token = data_box.encrypt(session_body(tenant_id, t.web_id).decode()).decode()
        assert (await world.client.get("/api/v1/session", headers=bearer(token))).status_code == 401

    async def test_a_decryptable_token_that_is_not_json_is_401(self, world: World) -> None:
        session_box = SecretBox.from_settings(world.settings, KeyPurpose.session)
        for body in (
            "not json",
            "[1, 2]",
            '{"v": 1, "tenant_id": "1"}',
            '{"v":1,"tenant_id":1e400}',
        ):
            token = session_box.encrypt(body).decode()
            response = await world.client.get("/api/v1/session", headers=bearer(token))
            assert response.status_code == 401, (body, response.text)


class TestSessions:
    async def test_an_expired_session_is_refused(self, world: World) -> None:
        t = tenant(1)
        await world.activate(t)
        genuine = await world.session(t)
        who = (await world.client.get("/api/v1/session", headers=bearer(genuine))).json()
        masters = master_keys(world.settings)
        fernet = Fernet(derive_key(masters[0], KeyPurpose.session))
        issued = int(time.time()) - world.settings.SESSION_TTL_S - 5
        expired = fernet.encrypt_at_time(session_body(who["tenant_id"], t.web_id), issued)
        response = await world.client.get("/api/v1/session", headers=bearer(expired.decode()))
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_garbage_bearer_tokens_are_401(self, world: World) -> None:
        for token in ("x", "ä" * 10, "gAAAAA" + "A" * 200):
            response = await world.client.get(
                "/api/v1/session", headers=[(b"authorization", f"Bearer {token}".encode())]
            )
            assert response.status_code == 401, token
