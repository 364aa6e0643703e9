"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation via MultiFernet.

ENCRYPTION_KEY holds one or more comma-separated Fernet keys; the first encrypts, all decrypt,
so a key can be rotated by prepending a new one and running `connector rotate-keys`.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.config import Settings

log = logging.getLogger(__name__)

# Development-only fallback so `make run` works with zero setup; refused in production.
_DEV_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"newsletter-connector-dev").digest())


class DecryptionError(Exception):
    pass


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        raw = settings.ENCRYPTION_KEY.get_secret_value() if settings.ENCRYPTION_KEY else ""
        keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
        if not keys:
            log.warning("crypto.dev_key_in_use", extra={"hint": "set ENCRYPTION_KEY"})
            keys = [_DEV_KEY]
        return cls(keys)

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes, *, ttl: int | None = None) -> str:
        try:
            if ttl is None:
                return self._fernet.decrypt(token).decode()
            return self._fernet.decrypt(token, ttl=ttl).decode()
        except InvalidToken as exc:
            raise DecryptionError("secret could not be decrypted (wrong or rotated key?)") from exc

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the current primary key."""
        return self._fernet.rotate(token)


def generate_key() -> str:
    return Fernet.generate_key().decode()


def mask_secret(value: str) -> str:
    """Show only enough of a key for a user to recognise it."""
    if len(value) <= 8:
        return "****"
    return f"****{value[-4:]}"
