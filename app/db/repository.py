"""Statement helpers shared by the repositories (PostgreSQL and SQLite differ here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase


class SessionRepository:
    """A repository works inside its caller's session (the caller owns the transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)


def dialect_insert(session: AsyncSession | AsyncConnection) -> Any:
    """The dialect's INSERT construct (both offer ON CONFLICT … and RETURNING)."""
    dialect = (
        session.dialect if isinstance(session, AsyncConnection) else session.get_bind().dialect
    )
    return sqlite.insert if dialect.name == "sqlite" else postgresql.insert


async def insert_ignore(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
) -> int:
    """INSERT … ON CONFLICT DO NOTHING; returns how many rows were inserted."""
    if not rows:
        return 0
    stmt = (
        dialect_insert(session)(model)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=conflict_columns)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
