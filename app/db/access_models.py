"""A connection whose access onOffice refuses (`app/connections/access.py`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class OnOfficeAccess(Base):
    """onOffice refuses a connection's access (app/connections/access.py): the provider locked
    or the subscription cancelled in the Marketplace, the customer's API user gone. While the
    row exists the connection's onOffice jobs stop; it is deleted when onOffice accepts the
    access again (a re-check, or a new activation). A table of its own, so that recording a
    refusal never waits for a job that holds the connection row's lock."""

    __tablename__ = "onoffice_access"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    refused_at: Mapped[datetime]  # the first refusal
    errorcode: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")  # onOffice's own text
    checked_at: Mapped[datetime | None]  # the last refusal or re-check; None = re-check soon
