"""`connector rotate-keys`: re-encrypt every stored secret with the first ENCRYPTION_KEY.

After it ran, the older keys can be removed from ENCRYPTION_KEY. Session tokens are not stored;
they stay valid as long as their key is listed and expire within SESSION_TTL_S anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.connections.repository import ConnectionRepository
from app.crypto import SecretBox
from app.db.engine import create_engine, create_sessionmaker
from app.db.models import Connection, Tenant

# Every encrypted column; a new one must be added here (tests/security checks the models).
ENCRYPTION_KEY_COLUMNS: dict[type[Tenant] | type[Connection], tuple[str, ...]] = {
    Tenant: ("api_token_encrypted", "api_secret_encrypted"),
    Connection: ("api_key_encrypted", "webhook_credentials_encrypted"),
}


@dataclass
class RotationResult:
    rows: int = 0
    secrets: int = 0


async def rotate_stored_secrets(settings: Settings, *, page_size: int = 500) -> RotationResult:
    """Re-encrypt all secrets, one transaction per page; a secret no key decrypts raises
    DecryptionError before anything of its page is written."""
    box = SecretBox.from_settings(settings)
    engine = create_engine(settings.DATABASE_URL)
    sessionmaker = create_sessionmaker(engine)
    result = RotationResult()
    try:
        for model, columns in ENCRYPTION_KEY_COLUMNS.items():
            last_id = 0
            while True:
                async with sessionmaker.begin() as session:
                    rows = await ConnectionRepository.from_session(session).secret_rows(
                        model, after_id=last_id, limit=page_size
                    )
                    for row in rows:
                        for column in columns:
                            token: bytes | None = getattr(row, column)
                            if token is not None:
                                setattr(row, column, box.rotate(token))
                                result.secrets += 1
                        result.rows += 1
                if len(rows) < page_size:
                    break
                last_id = rows[-1].id
    finally:
        await engine.dispose()
    return result
