"""The consent history's table (`app/history/`): one row per consent signal or action of the
connector for one email of a connection."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, utcnow


class ConsentHistory(Base):
    """One consent signal or one action of the connector for one email of a connection: the
    history per person (`app/history/`). Written only through `app.history.writer`."""

    __tablename__ = "consent_history"
    __table_args__ = (
        Index("ix_consent_history_connection_email", "connection_id", "email", "id"),
        Index("ix_consent_history_recorded_at", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))  # normalised
    # Whose signal or action: onoffice, provider, connector (what it did) or user (a decision).
    side: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # signal | action | decision
    value: Mapped[str] = mapped_column(String(32))  # e.g. yes, no, unsubscribed, subscribe
    address_id: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime | None]  # the signal's own time (None: not known)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # webhook, reconciliation, full_sync, poll, push, user; and its reference (event id, run
    # id, user id).
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(64))  # a code (catalogue `history.note.*`)
