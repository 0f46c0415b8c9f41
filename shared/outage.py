"""Telling a database that is not there from a bug: the first is a 503 "retry later" to the
caller and "not ready" to the operator, the second stays a 500.

A database is "not there" when the server refuses or drops connections (stopped,
restarting, unreachable, out of connection slots), when our pool has no connection to give
within its timeout, or when SQLite's file cannot be opened or stays locked. The drivers say
so in different ways: asyncpg raises plain ``OSError``/``TimeoutError`` while connecting
(SQLAlchemy wraps only what it recognises as the driver's own errors), its
``PostgresError`` with a SQLSTATE of class 08 (connection exception), 57P (operator
intervention: shutdown, starting up) or 53300 (too many connections); SQLAlchemy marks a
connection that died under a statement ``connection_invalidated``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite", "sqlite3")
_SQLSTATE_OUTAGE = ("08", "57P", "53300")
_SQLITE_OUTAGE = ("database is locked", "unable to open database file", "disk i/o error")

RETRY_AFTER_RESET_S = 1
"""A pooled connection died with its server (a restart): the pool is renewed already."""
RETRY_AFTER_DOWN_S = 5
"""The database does not answer: worth asking again in a few seconds."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (``orig``) and what caused it, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                todo.append(inner)


def _raised_by_driver(tb: TracebackType | None) -> bool:
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in _DRIVER_MODULES:
            return True
        tb = tb.tb_next
    return False


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).lower().startswith(_SQLITE_OUTAGE)
    sqlstate = getattr(exc, "sqlstate", None)
    if type(exc).__module__.startswith("asyncpg") and isinstance(sqlstate, str):
        return sqlstate.startswith(_SQLSTATE_OUTAGE)
    # Connecting: refused, reset, unreachable, name not resolved, timed out, in the driver.
    return isinstance(exc, OSError | TimeoutError) and _raised_by_driver(exc.__traceback__)


def database_outage(exc: BaseException) -> int | None:
    """Seconds after which to retry when ``exc`` means the database is not there (for a
    ``Retry-After``); None when it is anything else."""
    for part in _chain(exc):
        if _is_outage(part):
            reset = isinstance(part, DBAPIError) and part.connection_invalidated
            return RETRY_AFTER_RESET_S if reset else RETRY_AFTER_DOWN_S
    return None


def outage_message(retry_after: int) -> str:
    """What the caller is told (never the driver's error: it names hosts and ports)."""
    if retry_after <= RETRY_AFTER_RESET_S:
        return "the database connection was reset; please retry"
    return "the database is unavailable; please retry later"


def log_failure(logger: Any, event: str, exc: BaseException, **fields: Any) -> None:
    """A background job's failure in its log: one warning line while the database is not
    there (the job retries; a traceback per attempt would bury the log, and rendering it
    costs the event loop), the traceback for anything else."""
    if database_outage(exc) is not None:
        logger.warning(f"{event}: the database is unavailable", error=repr(exc), **fields)
    else:
        logger.exception(event, **fields)
