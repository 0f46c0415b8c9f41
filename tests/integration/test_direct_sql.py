"""Writes handed to the driver directly (shared.direct) behave as SQLAlchemy's own execution:
in the session's transaction (a rollback takes them back), with their row counts, a taken
key raised as IntegrityError, and a connection the server dropped invalidated so the next
transaction gets a working one. Real PostgreSQL (asyncpg) and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import UTCDateTime, create_engine
from shared.direct import execute_one, execute_together, fetch
from tests.things import AT, metadata, things

ADD = things.insert()
RENAME = (
    things.update()
    .where(things.c.name == sa.bindparam("old"))
    .values(name=sa.bindparam("new"), at=sa.bindparam("when", type_=UTCDateTime))
)


@pytest.fixture
async def engine(database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_urls["notify"])
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


def _row(name: str) -> dict[str, Any]:
    return {"name": name, "tags": {"k": [name]}, "at": AT}


async def _names(engine: AsyncEngine) -> list[tuple[str, Any, datetime]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(things.c.name, things.c.tags, things.c.at))
        return sorted(tuple(r) for r in rows)  # type: ignore[misc]


async def test_writes_go_in_the_sessions_transaction_with_their_counts(
    engine: AsyncEngine,
) -> None:
    sessions = async_sessionmaker(engine)
    async with sessions() as session:
        # The first statement of the transaction: the BEGIN must come before it.
        counts = await execute_together(session, [(ADD, _row("a")), (ADD, [_row("b"), _row("c")])])
        assert counts[0] == 1
        assert await execute_one(session, RENAME, {"old": "a", "new": "z", "when": AT}) == 1
        assert await execute_one(session, RENAME, {"old": "nobody", "new": "y", "when": AT}) == 0
        await session.rollback()
    assert await _names(engine) == []
    async with sessions() as session:
        await execute_together(session, [(ADD, _row("a")), (ADD, [_row("b"), _row("c")])])
        await session.commit()
    assert await _names(engine) == [
        ("a", {"k": ["a"]}, AT),
        ("b", {"k": ["b"]}, AT),
        ("c", {"k": ["c"]}, AT),
    ]


async def test_a_taken_key_is_an_integrity_error_and_the_transaction_is_undone(
    engine: AsyncEngine,
) -> None:
    sessions = async_sessionmaker(engine)
    session: AsyncSession
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await execute_one(session, ADD, _row("same"))
            await execute_one(session, ADD, _row("same"))
    assert await _names(engine) == []


async def test_a_dropped_connection_is_invalidated_and_the_next_transaction_works(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a server that drops connections: PostgreSQL")
    sessions = async_sessionmaker(engine)
    session: AsyncSession
    with pytest.raises(DBAPIError) as raised:
        async with sessions() as session:
            await execute_one(session, ADD, _row("a"))
            backend = (await session.execute(sa.select(sa.func.pg_backend_pid()))).scalar()
            async with engine.connect() as other:
                await other.execute(sa.select(sa.func.pg_terminate_backend(backend)))
            await execute_one(session, ADD, _row("b"))
    assert raised.value.connection_invalidated
    async with sessions() as session:
        await execute_one(session, ADD, _row("c"))
        await session.commit()
    assert [name for name, _, _ in await _names(engine)] == ["c"]


async def test_postgresql_arrays_and_json_are_bound_as_sqlalchemy_binds_them(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("arrays: PostgreSQL")
    sessions = async_sessionmaker(engine)
    rename_all = (
        things.update()
        .where(things.c.name == sa.any_(sa.bindparam("names", type_=postgresql.ARRAY(sa.String))))
        .values(tags=sa.bindparam("tags", type_=sa.JSON))
    )
    async with sessions() as session:
        await execute_one(session, ADD, [_row("a"), _row("b"), _row("c")])
        changed = await execute_one(session, rename_all, {"names": ["a", "c"], "tags": [1, "x"]})
        await session.commit()
    assert changed == 2
    assert [tags for _, tags, _ in await _names(engine)] == [[1, "x"], {"k": ["b"]}, [1, "x"]]


async def test_a_statement_with_an_in_list_is_left_to_sqlalchemy_and_still_runs(
    engine: AsyncEngine,
) -> None:
    sessions = async_sessionmaker(engine)
    drop = things.delete().where(things.c.name.in_(sa.bindparam("names", expanding=True)))
    async with sessions() as session:
        await execute_one(session, ADD, [_row("a"), _row("b"), _row("c")])
        assert await execute_one(session, drop, {"names": ["a", "b"]}) == 2
        await session.commit()
    assert [name for name, _, _ in await _names(engine)] == ["c"]


async def test_reads_give_the_rows_sqlalchemy_gives_in_the_sessions_transaction(
    engine: AsyncEngine,
) -> None:
    """By position and by name, JSON decoded and times as ``UTCDateTime`` reads them; the
    session's own writes, not yet committed, are seen; no row: an empty list."""
    sessions = async_sessionmaker(engine)
    read = sa.select(
        things.c.name, things.c.tags, things.c.at, sa.func.length(things.c.name).label("size")
    ).where(things.c.name >= sa.bindparam("from_name"))
    async with sessions() as session:
        await execute_one(session, ADD, [_row("a"), _row("bb"), _row("ccc")])
        fetched = await fetch(session, read, {"from_name": "bb"})
        expected = (await session.execute(read, {"from_name": "bb"})).all()
        assert sorted(tuple(row) for row in fetched) == sorted(tuple(row) for row in expected)
        assert sorted((row.name, row.size, row.at) for row in fetched) == [
            ("bb", 2, AT),
            ("ccc", 3, AT),
        ]
        assert {row.name: row.tags for row in fetched}["ccc"] == {"k": ["ccc"]}
        assert all(row.at.tzinfo is not None for row in fetched)
        assert await fetch(session, read, {"from_name": "zzz"}) == []
        with pytest.raises(AttributeError):
            _ = fetched[0].nothing
        await session.rollback()
