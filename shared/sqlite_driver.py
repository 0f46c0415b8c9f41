"""SQLite through aiosqlite with one trip to its thread per statement.

aiosqlite runs each call on the connection in a thread of its own; SQLAlchemy's adapter
makes four such calls per statement that returns rows (open a cursor, execute, fetch all,
close) and three for the others. Each trip wakes the thread and then the event loop (a
futex and a pipe write, an interprocessor interrupt on a virtual machine): under a burst
of submissions on SQLite, handing calls to that thread was the largest single cost of the
reports service (py-spy, 2026-11-29: a fifth of its samples in aiosqlite's queue put).
Here a statement is one call that runs all four steps in the thread and brings back the
rows, the description, the row count and the last row id. The statement still runs in
aiosqlite's thread, as before: the event loop never waits for SQLite's lock or its fsync.

Used by :func:`shared.db.create_engine` for ``sqlite+aiosqlite`` URLs (its ``module``),
so the URL, the dialect and its SQL stay SQLAlchemy's own.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any], int, int | None]
"""What a statement left: its description, its rows, its row count and last row id."""


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In aiosqlite's thread: the whole statement, from opening a cursor to closing it."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


async def _in_thread(connection: aiosqlite.Connection, function: Any, *args: Any) -> Any:
    """``function(*args)`` in the connection's thread, as aiosqlite's own calls run (its
    ``_execute``: one queue put, one wake-up of the event loop when done)."""
    return await connection._execute(function, *args)  # type: ignore[no-untyped-call]


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement is one call in aiosqlite's thread, its rows buffered (as
    SQLAlchemy's adapter buffers them too); nothing is left open between statements."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")
    _awaitable_cursor_close = False  # there is no driver cursor left to close

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # Not the parent's: it opens a driver cursor, one trip to the thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._trip(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._trip(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await _in_thread(
                connection, _run, connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # a subclass of the one declared

    async def run_together(self, statements: Sequence[Prepared]) -> list[int]:
        """Several statements, none returning rows, one after another in one trip; their
        row counts."""
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            async with self._execute_mutex:
                counts: list[int] = await _in_thread(
                    connection, _run_together, connection._conn, statements
                )
        except Exception as error:  # aiosqlite's "connection closed" as sqlite3's error
            self._handle_exception(error)
        return counts


Prepared = tuple[str, Any, bool]
"""A statement's SQL, its positional parameters (a list of them for executemany), and
whether it is an executemany."""


def _run_together(connection: sqlite3.Connection, statements: Sequence[Prepared]) -> list[int]:
    return [_run(connection, sql, parameters, many)[2] for sql, parameters, many in statements]


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite module, handing out :class:`OneTripConnection` s."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_module() -> OneTripDBAPI:
    """The ``module`` to give ``create_async_engine`` for a ``sqlite+aiosqlite`` URL."""
    return OneTripDBAPI(aiosqlite, sqlite3)
