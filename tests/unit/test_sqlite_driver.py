"""SQLite through aiosqlite, one trip to its thread per statement (shared.sqlite_driver)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import UTCDateTime, create_engine
from shared.direct import execute_together
from tests.things import AT, metadata, things

ADD = things.insert().values(
    name=sa.bindparam("n_name", type_=sa.String),
    tags=sa.bindparam("n_tags", type_=sa.JSON),
    at=sa.bindparam("n_at", type_=UTCDateTime),
)
"""A statement built once, as execute_together wants them."""


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/db/test.db")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each call handed to aiosqlite's thread."""
    calls: list[Any] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_a_statement_is_one_trip_with_its_rows_count_and_types(
    engine: AsyncEngine, trips: list[Any]
) -> None:
    async with engine.begin() as conn:
        trips.clear()
        added = await conn.execute(
            things.insert().returning(things.c.id),
            {"name": "a", "tags": {"k": [1]}, "at": AT},
        )
        assert added.scalar_one() == 1 and len(trips) == 1
        many = await conn.execute(
            things.insert(), [{"name": n, "tags": [], "at": AT} for n in ("b", "c")]
        )
        assert many.rowcount == 2
        changed = await conn.execute(things.update().where(things.c.id > 1).values(tags=[2]))
        assert changed.rowcount == 2
        rows = (await conn.execute(sa.select(things).order_by(things.c.id))).all()
        assert len(trips) == 4
    assert [(r.name, r.tags, r.at) for r in rows] == [
        ("a", {"k": [1]}, AT),
        ("b", [2], AT),
        ("c", [2], AT),
    ]


async def test_statements_together_are_one_trip_in_the_transaction(
    engine: AsyncEngine, trips: list[Any]
) -> None:
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(sa.select(1))
        trips.clear()
        await execute_together(
            session,
            [
                (ADD, {"n_name": "x", "n_tags": [1], "n_at": AT}),
                (things.insert(), [{"name": "y", "tags": {}, "at": AT}]),
            ],
        )
        assert len(trips) == 1
    async with sessions() as session:
        found = (await session.execute(sa.select(things.c.name, things.c.tags))).all()
    assert sorted(found) == [("x", [1]), ("y", {})]


async def test_a_failing_statement_together_raises_sqlalchemys_error_and_rolls_back(
    engine: AsyncEngine,
) -> None:
    sessions = async_sessionmaker(engine)
    insert = things.insert()
    row = {"name": "same", "tags": [], "at": AT}
    session: AsyncSession
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await execute_together(session, [(insert, row), (insert, row)])
    async with sessions() as session:
        assert (await session.execute(sa.select(sa.func.count()).select_from(things))).scalar() == 0
