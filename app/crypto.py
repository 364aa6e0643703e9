"""Secrets at rest and session tokens: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation.

ENCRYPTION_KEY holds one or more comma-separated master keys (Fernet format); the first
encrypts, all decrypt, so a key is rotated by prepending a new one and running
`connector rotate-keys`. Each master key is never used directly: HKDF-SHA256 derives one key
for data at rest and another for session tokens, so a session token can never be decrypted as
a stored secret or the other way round.

Without ENCRYPTION_KEY (development and testing only; production refuses to start) a random
master key is generated once, stored with mode 0600 in `Settings.data_dir()` and reused.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
from enum import StrEnum
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.config import Settings

log = logging.getLogger(__name__)

KEY_FILE_NAME = "connector.key"


class KeyPurpose(StrEnum):
    data = "data-at-rest"
    session = "session-token"


class DecryptionError(Exception):
    pass


class KeyConfigurationError(ValueError):
    pass


def derive_key(master: bytes, purpose: KeyPurpose) -> bytes:
    """The Fernet key for `purpose`, derived from one master key with HKDF-SHA256."""
    try:
        material = base64.urlsafe_b64decode(master)
    except (binascii.Error, ValueError) as exc:
        raise KeyConfigurationError("ENCRYPTION_KEY entries must be Fernet keys") from exc
    if len(material) != 32:
        raise KeyConfigurationError(
            "ENCRYPTION_KEY entries must be Fernet keys (32 bytes, url-safe base64); "
            "generate one with `connector genkey`"
        )
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"newsletter-connector/" + purpose.value.encode(),
    )
    return base64.urlsafe_b64encode(hkdf.derive(material))


def master_keys(settings: Settings) -> list[bytes]:
    """The configured master keys, or the generated one of this data directory."""
    raw = settings.ENCRYPTION_KEY.get_secret_value() if settings.ENCRYPTION_KEY else ""
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    if keys:
        return keys
    return [load_or_create_key_file(settings.data_dir() / KEY_FILE_NAME)]


def load_or_create_key_file(path: Path) -> bytes:
    """Read the key file, or create it (mode 0600) with a fresh random key; safe when several
    processes start at once (the file appears atomically, the first writer wins)."""
    existing = _read_key_file(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key.decode() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            winner = _read_key_file(path)
            if winner is None:
                raise KeyConfigurationError(f"the key file {path} is empty") from None
            return winner
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.warning(
        "crypto.key_generated",
        extra={
            "path": str(path),
            "hint": "no ENCRYPTION_KEY is set: a random key was generated and stored here; keep "
            "the file (stored secrets cannot be read without it) or set ENCRYPTION_KEY",
        },
    )
    return key


def _read_key_file(path: Path) -> bytes | None:
    try:
        content = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not content:
        return None
    if path.stat().st_mode & 0o077:
        log.warning("crypto.key_file_readable_by_others", extra={"path": str(path)})
    return content.encode()


class SecretBox:
    """Encrypts with the first key, decrypts with any (MultiFernet)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_settings(cls, settings: Settings, purpose: KeyPurpose = KeyPurpose.data) -> SecretBox:
        masters = master_keys(settings)
        keys = [derive_key(m, purpose) for m in masters]
        if purpose == KeyPurpose.data:
            # Secrets stored before keys were derived were encrypted with the master key
            # itself: still readable, and `connector rotate-keys` moves them to the derived key.
            keys += masters
        return cls(keys)

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes, *, ttl: int | None = None) -> str:
        try:
            if ttl is None:
                return self._fernet.decrypt(token).decode()
            return self._fernet.decrypt(token, ttl=ttl).decode()
        except (InvalidToken, UnicodeDecodeError) as exc:
            raise DecryptionError("secret could not be decrypted (wrong or rotated key?)") from exc

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the current primary key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise DecryptionError("secret could not be decrypted (wrong or rotated key?)") from exc


def generate_key() -> str:
    return Fernet.generate_key().decode()


def mask_secret(value: str) -> str:
    """Show only enough of a key for a user to recognise it."""
    if len(value) <= 8:
        return "****"
    return f"****{value[-4:]}"


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a random URL token or bearer secret, as stored and looked up.

    The tokens carry 256 random bits, so a fast hash is enough; any string hashes (non-ASCII
    input from a header or a path never raises)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(candidate: str, stored_hash: str | None) -> bool:
    """Constant-time check of a presented token against its stored hash."""
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_token(candidate), stored_hash)
