"""Statement helpers shared by the repositories (PostgreSQL and SQLite differ here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from sqlalchemy import any_, bindparam, func, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
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


def among(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter instead of one per
    value (a 500-value IN list costs more to compile than the query takes to run)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def lookup(
    session: AsyncSession,
    columns: Sequence[Any],
    key: Any,
    values: Sequence[Any],
    *where: Any,
) -> Any:
    """SELECT `columns` of the rows whose `key` is one of `values` (and `where`), through the
    unique index on (`where`'s column, `key`).

    On PostgreSQL: one lookup in that index per value, whatever the table's statistics. The
    values are unnested and each is looked up in a LATERAL subquery with LIMIT 1 (which the
    planner cannot flatten into a join). The planner still needs the table's statistics to
    prefer that index over (connection_id, address_id): see
    `ContactRepository.ensure_statistics`."""
    if session.get_bind().dialect.name != "postgresql":
        return select(*columns).where(key.in_(list(values)), *where)
    wanted = (
        func.unnest(bindparam(None, list(values), type_=ARRAY(key.type)))
        .table_valued("value")
        .render_derived(name="wanted")
    )
    found = select(*columns).where(key == wanted.c.value, *where).limit(1).lateral("found")
    return select(*found.c).select_from(wanted.join(found, true()))


def search_match(email: Any, address_id: Any, search: str | None) -> Any | None:
    """The condition of a list's search box: an email substring (case-insensitive, LIKE's
    wildcards taken literally) or, for digits, also the address id; None without a search."""
    text = (search or "").strip().lower()
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    match: Any = email.like(f"%{escaped}%", escape="\\")
    if text.isdigit():
        match = or_(match, address_id == int(text))
    return match
