"""Infrastructure faults: a lost (or refused) database or Redis connection, or an embedded
SQLite database that is locked by another writer.

A job that fails on one is not at fault: the database or Redis is restarting. It is retried
after a short backoff (seconds: recovery should follow the dependency's return, not wait for
the staleness sweeps) while tries are left; the sweeps stay the safety net.
"""

from __future__ import annotations

import random
import socket
import sqlite3

import asyncpg
import redis.exceptions
import sqlalchemy.exc
from arq.worker import Retry

# PostgreSQL's SQLSTATEs of a lost or refused connection: class 08 (connection exception),
# 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now), 53300 (too many connections).
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# How long a job waits before its next try after an infrastructure fault.
FAULT_BACKOFF_BASE_S = 0.5
FAULT_BACKOFF_CAP_S = 5.0


def _sqlstate(exc: BaseException | None) -> str:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else ""


def is_infrastructure_fault(exc: BaseException) -> bool:
    """Whether `exc` is a lost or refused database or Redis connection (not a bug, not a
    provider's error: those are handled, or failed, by the job itself)."""
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if _sqlite_busy(exc.orig):
            return True
        return _sqlstate(exc.orig).startswith(_CONNECTION_STATES)
    if isinstance(exc, sqlalchemy.exc.DisconnectionError | sqlalchemy.exc.TimeoutError):
        return True  # a dead pooled connection; no connection free in the pool
    if isinstance(exc, asyncpg.PostgresError):  # raised as is while a connection is opened
        return _sqlstate(exc).startswith(_CONNECTION_STATES)
    # Opening a connection to a database or Redis that is down (refused, reset, unknown host
    # while its container restarts). A provider's HTTP errors are httpx's, never these.
    return isinstance(exc, ConnectionError | socket.gaierror)


def _sqlite_busy(exc: BaseException | None) -> bool:
    """The embedded mode's SQLite answered "database is locked": another writer holds it, and
    SQLite does not wait when a reading transaction would have to become a writer. Trying
    again in a moment succeeds (the `make run` demo's first sync waited minutes for the job's
    ordinary retry)."""
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower()


def fault_backoff(job_try: int) -> float:
    """Seconds before the next try: up to 0.5, 1, 2, 4, then 5 (full jitter, at least 0.2)."""
    ceiling = min(FAULT_BACKOFF_CAP_S, FAULT_BACKOFF_BASE_S * 2 ** max(job_try - 1, 0))
    return max(0.2, random.uniform(0, ceiling))


def retry_on_fault(exc: Exception, *, job_try: int, max_tries: int) -> None:
    """Raise arq's `Retry` (a short backoff) for an infrastructure fault while tries are left;
    return otherwise (the job fails as before)."""
    if job_try < max_tries and is_infrastructure_fault(exc):
        raise Retry(defer=fault_backoff(job_try)) from exc
