"""Receipt numbers: unique per year and instance, without a counter row that every submission
would queue for on PostgreSQL (a sequence per year there; the counter on SQLite, where the
database lock serialises writers anyway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.reports.adapters.db import metadata, receipt_counters
from services.reports.adapters.repositories import ReportRepository
from shared.db import create_engine


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
