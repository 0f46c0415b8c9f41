"""Hot statements handed to the database driver directly, in the session's transaction.

SQLAlchemy's execution path (session, connection, execution context, result, the adapter's
cursor) costs ~170 µs of CPU per statement on this machine, against ~40 µs for the same
statement on asyncpg itself (microbenchmark, 2026-11-29); a submission takes a dozen such
statements across the services, at a steady rate one transaction each. Here a statement
built once is compiled once per dialect and parameter names, and what SQLAlchemy would send
(the same SQL, the parameters through the same bind processors) goes to the driver:

- PostgreSQL: to asyncpg, after the BEGIN the adapter would have sent first;
- SQLite: to :class:`~shared.sqlite_driver.OneTripConnection`, all steps in one trip to
  aiosqlite's thread.

A failure is raised as SQLAlchemy raises it (an ``IntegrityError`` for a taken key; a lost
connection invalidated, with ``connection_invalidated`` set), so callers such as
:func:`shared.uow.twice` see no difference. Writes return their row counts; the few hot
reads (:func:`fetch`) get their rows through the result processing SQLAlchemy would apply.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NoReturn

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.util.concurrency import greenlet_spawn

from shared.sqlite_driver import OneTripConnection, Prepared

Step = tuple[sa.Executable, Mapping[str, Any] | Sequence[Mapping[str, Any]]]
"""A statement built once (module level: its compiled form is kept) and its parameters,
a list of them for an executemany."""

_COMPILED: dict[tuple[sa.Executable, tuple[str, ...], str], Any] = {}
"""Each statement compiled per dialect and parameter names; None: not to be sent directly."""


def _compiled(dialect: Dialect, statement: sa.Executable, keys: tuple[str, ...]) -> Any:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    if compiled.insert_prefetch or compiled.update_prefetch:
        # Python-side column defaults are SQLAlchemy's execution's to fill in, not ours.
        raise ValueError(f"direct execution: {statement} needs Python-side defaults")
    if any(bind.expanding for bind in compiled.binds.values()):
        return None  # IN (a list): SQLAlchemy writes its SQL for each number of values
    return compiled


def prepare(dialect: Dialect, statement: sa.Executable, parameters: Any) -> Prepared | None:
    """The SQL SQLAlchemy would send for ``statement`` on ``dialect`` and the parameters in
    the driver's positional form (a list of them for several rows; one row given as a list
    is sent as one statement, so its row count is known); None when the statement is not
    to be sent directly."""
    rows: Sequence[Mapping[str, Any]] = (
        [parameters] if isinstance(parameters, Mapping) else parameters
    )
    many = len(rows) > 1
    keys = tuple(rows[0])
    key = (statement, keys, dialect.name)
    if key not in _COMPILED:
        _COMPILED[key] = _compiled(dialect, statement, keys)
    found = _COMPILED[key]
    if found is None:
        return None
    processors = found._bind_processors
    positions = found.positiontup

    def positional(row: Mapping[str, Any]) -> tuple[Any, ...]:
        values = found.construct_params(row)
        return tuple(
            processors[name](values[name]) if name in processors else values[name]
            for name in positions
        )

    if many:
        return found.string, [positional(row) for row in rows], True
    return found.string, positional(rows[0]), False


async def execute_together(session: AsyncSession, steps: Sequence[Step]) -> list[int]:
    """Run ``steps`` (writes: no rows wanted back) in the session's transaction, in order,
    and return each one's row count (on PostgreSQL -1 for an executemany). A failing
    statement raises SQLAlchemy's exception as ``execute`` would, and stops the ones after
    it."""
    if not steps:
        return []
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).dbapi_connection
    found = [prepare(connection.dialect, statement, values) for statement, values in steps]
    prepared = [p for p in found if p is not None]
    direct = len(prepared) == len(steps)  # else one of them is SQLAlchemy's to send
    if direct and isinstance(raw, AsyncAdapt_asyncpg_connection):
        return await _on_asyncpg(connection, raw, prepared)
    if direct and isinstance(raw, OneTripConnection):
        try:
            return await raw.run_together(prepared)
        except sqlite3.Error as error:
            raise sa.exc.DBAPIError.instance(
                "; ".join(sql for sql, _, _ in prepared), None, error, sqlite3.Error
            ) from error
    counts = []
    for statement, values in steps:
        result = await session.execute(statement, values)
        counts.append(int(getattr(result, "rowcount", -1)))
    return counts


async def execute_one(session: AsyncSession, statement: sa.Executable, values: Any) -> int:
    """One write (:func:`execute_together`); its row count."""
    return (await execute_together(session, [(statement, values)]))[0]


async def fetch(
    session: AsyncSession, statement: sa.Executable, values: Mapping[str, Any]
) -> list[Any]:
    """The rows of a hot read, in the session's transaction, each by position and by name
    as SQLAlchemy's rows are, its values through the same result processing (a
    ``TypeDecorator``'s included). On PostgreSQL from asyncpg directly; elsewhere, or for a
    statement with ``IN (a list)``, through SQLAlchemy."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).dbapi_connection
    if isinstance(raw, AsyncAdapt_asyncpg_connection):
        prepared = prepare(connection.dialect, statement, values)
        if prepared is not None:
            shape = _shape(connection.dialect, statement, tuple(values))
            (records,) = await _on_asyncpg(connection, raw, [prepared], fetch=True)
            return [shape(record) for record in records]
    return list((await session.execute(statement, values)).all())


class _DirectRow(tuple):  # type: ignore[type-arg]
    """A row by position and, as SQLAlchemy's, by column name or label."""

    _index: ClassVar[dict[str, int]] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None


_SHAPES: dict[tuple[sa.Executable, tuple[str, ...], str], Callable[[Sequence[Any]], Any]] = {}


def _shape(
    dialect: Dialect, statement: sa.Executable, keys: tuple[str, ...]
) -> Callable[[Sequence[Any]], Any]:
    """Makes a driver's row into a row as SQLAlchemy would give it: the result processor of
    each column's type (None for most on asyncpg, which decodes them itself)."""
    key = (statement, keys, dialect.name)
    if key not in _SHAPES:
        columns = _COMPILED[key]._result_columns
        names = {column.keyname: n for n, column in enumerate(columns)}
        row_type = type("DirectRow", (_DirectRow,), {"_index": names, "__slots__": ()})
        processors = [column.type._cached_result_processor(dialect, None) for column in columns]

        def shaped(record: Sequence[Any]) -> Any:
            return row_type(
                value if process is None else process(value)
                for process, value in zip(processors, record, strict=True)
            )

        _SHAPES[key] = shaped
    return _SHAPES[key]


async def _on_asyncpg(
    connection: AsyncConnection,
    adapted: AsyncAdapt_asyncpg_connection,
    prepared: list[Prepared],
    *,
    fetch: bool = False,
) -> list[Any]:
    """Each statement's row count, or (``fetch``) its rows."""
    driver = adapted.driver_connection
    results: list[Any] = []
    # As the adapter's cursor does it: one operation at a time on the connection, and the
    # transaction begun with its first statement (SQLAlchemy's BEGIN is deferred until then).
    async with adapted._execute_mutex:
        sql, values = "BEGIN", None
        try:
            if adapted._transaction is None:
                await adapted._start_transaction()  # type: ignore[no-untyped-call]
            for sql, values, many in prepared:
                if fetch:
                    results.append(await driver.fetch(sql, *values))
                elif many:
                    await driver.executemany(sql, values)
                    results.append(-1)
                else:
                    results.append(_row_count(await driver.execute(sql, *values)))
        except Exception as error:
            await _raise_as_sqlalchemy(connection, adapted, sql, values, error)
    return results


def _row_count(status: str) -> int:
    """The rows a command touched, from its status (``INSERT 0 1``, ``UPDATE 3``)."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else -1


async def _raise_as_sqlalchemy(
    connection: AsyncConnection,
    adapted: AsyncAdapt_asyncpg_connection,
    sql: str,
    values: Any,
    error: Exception,
) -> NoReturn:
    """Raise ``error`` as SQLAlchemy's execution would: the adapter's DBAPI error, wrapped
    by the connection's own handling (which also invalidates a connection that was lost)."""
    try:
        adapted._handle_exception(error)
    except Exception as dbapi_error:
        await greenlet_spawn(
            connection.sync_connection._handle_dbapi_exception,  # type: ignore[union-attr]
            dbapi_error,
            sql,
            values,
            None,
            None,
        )
    raise AssertionError("unreachable: the error was raised above")
