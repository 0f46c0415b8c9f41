"""Receipt numbers: unique per year and instance, without a counter row that every submission
would queue for on PostgreSQL (a sequence per year there; the counter on SQLite, where the
database lock serialises writers anyway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.reports.adapters.db import messaging, metadata, receipt_counters
from services.reports.adapters.repositories import ReportRepository
from shared.clock import SystemClock
from shared.db import create_engine
from shared.uow import GroupCommit, UnitOfWork


@pytest.fixture
async def engine(database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_urls["reports"])
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def _take(sessions: async_sessionmaker[AsyncSession], year: int, commit: bool = True) -> str:
    async with sessions() as session, session.begin() as transaction:
        number = await ReportRepository(session).next_receipt_number(year, "BC")
        if not commit:
            await transaction.rollback()
        return number


async def test_numbers_continue_after_the_counter_and_are_unique_under_concurrency(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:  # numbers given before this version, by the counter
        await conn.execute(receipt_counters.insert().values(year=2031, last_number=41))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    assert await _take(sessions, 2031) == "BC-2031-000042"
    taken = await asyncio.gather(*(_take(sessions, 2031) for _ in range(20)))
    assert len(set(taken)) == 20
    assert sorted(taken) == [f"BC-2031-{n:06d}" for n in range(43, 63)]
    assert await _take(sessions, 2032) == "BC-2032-000001"  # each year from 1


@pytest.mark.parametrize("database_urls", ["postgresql"], indirect=True)
async def test_a_year_whose_first_submission_failed_still_numbers_the_next(
    engine: AsyncEngine,
) -> None:
    """The sequence is created in the first submission's transaction: if that transaction
    rolls back, the sequence goes with it, and the next submission creates it again."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    assert await _take(sessions, 2033, commit=False) == "BC-2033-000001"
    assert await _take(sessions, 2033) == "BC-2033-000001"
    assert await _take(sessions, 2033) == "BC-2033-000002"


async def test_steps_sharing_a_transaction_take_consecutive_numbers_and_a_failed_one_none(
    engine: AsyncEngine,
) -> None:
    """Concurrent submissions share a transaction (a group commit): on SQLite they read the
    counter once and the commit stores the last number given. Every number is unique, the
    next transaction continues after the last, and a step that fails (its transaction
    rolled back, the others run again alone) takes none for good (on SQLite: no gap)."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    group = GroupCommit(
        lambda: UnitOfWork(sessions, messaging, source="/qcdc/test", clock=SystemClock()),
        lanes=1,
    )

    async def take(fail: bool = False) -> str:
        async def step(uow: UnitOfWork) -> str:
            number = await uow.repository(ReportRepository).next_receipt_number(2034, "BC")
            if fail:
                raise ValueError("refused after taking a number")
            return number

        return await group.run(step)

    first = await asyncio.gather(*(take() for _ in range(12)))
    assert sorted(first) == [f"BC-2034-{n:06d}" for n in range(1, 13)]
    results = await asyncio.gather(*(take(fail=n == 4) for n in range(8)), return_exceptions=True)
    assert isinstance(results[4], ValueError)
    taken = [r for r in results if isinstance(r, str)]
    assert len(set(first + taken)) == 19 and min(taken) > max(first)
    if engine.dialect.name == "sqlite":  # a sequence on PostgreSQL leaves gaps, by design
        assert sorted(taken) == [f"BC-2034-{n:06d}" for n in range(13, 20)]
        assert await _take(sessions, 2034) == "BC-2034-000020"
