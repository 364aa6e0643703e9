from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from app.contacts.scope import ScopeDefinition
from providers.base import ProviderName


class ActivityOptions(BaseModel):
    """Which provider events become onOffice activities (subscribe/unsubscribe always do)."""

    delivered: bool = False
    opened: bool = False
    clicked: bool = False
    hard_bounce: bool = False


class ConnectionUpdate(BaseModel):
    provider: ProviderName
    api_key: SecretStr | None = Field(
        default=None,
        description="Mailchimp API key (`<key>-<dc>`) or Brevo API v3 key. Write-only. May be "
        "left out to keep the saved key of the same provider (e.g. to change only activities).",
    )
    activities: ActivityOptions = Field(default_factory=ActivityOptions)
    scope: ScopeDefinition | None = Field(
        default=None,
        description="Which onOffice addresses this connection covers: `customer` (every address "
        "the claim may read), `group_users` (addresses whose support user `Benutzer` is a "
        "member of the group) or `field` (addresses whose `field` holds one of `values`). "
        "Left out: kept as saved (a new connection: `group_users` with a group, `customer` "
        "without).",
    )

    @field_validator("api_key")
    @classmethod
    def _printable_ascii(cls, value: SecretStr | None) -> SecretStr | None:
        # Keys travel in HTTP headers: anything else cannot be a key (and cannot be sent).
        if value is not None:
            key = value.get_secret_value().strip()
            if len(key) > 256 or not (key.isascii() and key.isprintable()):
                raise ValueError("an API key consists of at most 256 printable ASCII characters")
        return value

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "provider": "mailchimp",
                    "api_key": "0123456789abcdef0123456789abcdef-us21",
                    "activities": {"delivered": True},
                }
            ]
        }
    )


class ConnectionRead(BaseModel):
    provider: str
    api_key: str = Field(description="Masked; the key itself is never returned")
    account_name: str
    list_id: str | None
    list_name: str | None
    webhook_registered: bool
    webhook_url: str
    activities: ActivityOptions
    group_id: str | None
    scope: ScopeDefinition = Field(description="The onOffice addresses this connection covers")
    created_at: datetime
    updated_at: datetime
