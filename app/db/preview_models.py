"""The tables of a sync preview (`POST /api/v1/syncs {"dry_run": true}`): one row per preview
and one per address with what a run would do with it. Nothing here is read by a run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, utcnow


class SyncPreview(Base):
    __tablename__ = "sync_preview"
    __table_args__ = (Index("ix_sync_preview_connection", "connection_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    force: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    # What a run would count (the keys of SyncCounts), filled when the preview completes.
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class PreviewItem(Base):
    """One onOffice address of a preview and its outcome."""

    __tablename__ = "preview_item"
    __table_args__ = (Index("ix_preview_item_preview_outcome", "preview_id", "outcome", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    preview_id: Mapped[int] = mapped_column(ForeignKey("sync_preview.id", ondelete="CASCADE"))
    address_id: Mapped[int] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(320), default="")
    # created, updated, unchanged, or a problem kind (duplicate, invalid_email, opted_out, ...)
    outcome: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str] = mapped_column(String(64), default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    # What would be written to this address in onOffice: "no" (Newsletter No), "activity"
    # (a bounce: only the activity, the value stays), or None.
    onoffice_write: Mapped[str | None] = mapped_column(String(16))
