"""The ledgers a connection left behind (`app/lifecycle/switch.py`): parked per customer,
group and list until a connection returns to that list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, utcnow


class ParkedContact(Base):
    """A ledger row of a list a customer's connection left (a switch of provider, account or
    list, or a disconnect), kept until a connection of the same customer and group returns to
    that list (`ledger_key`): it then knows again what it did there (app/lifecycle/switch.py).
    `data`: the row's consent columns."""

    __tablename__ = "parked_contact"
    __table_args__ = (UniqueConstraint("tenant_id", "group_id", "ledger_key", "email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    group_id: Mapped[str] = mapped_column(String(64))
    ledger_key: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    parked_at: Mapped[datetime] = mapped_column(default=utcnow)
