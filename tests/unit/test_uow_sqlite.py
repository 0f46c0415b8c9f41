"""The unit of work on a SQLite file: outbox writes, rollback, the inbox, UTC instants."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus.envelope import decode
from shared.clock import ManualClock
from shared.context import bind_correlation_id
from shared.db import MessagingTables, UTCDateTime, create_engine, messaging_tables
from shared.events import UnitRegistered
from shared.uow import GroupCommit, UnitOfWork
from tests.support import patience

PG_URL = "postgresql+asyncpg://nobody@127.0.0.1:1/none"  # never connected to
NOW = datetime(2023, 6, 9, 16, 59, 59, 999999, tzinfo=UTC)


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    messaging: MessagingTables
    things: sa.Table
    clock: ManualClock
    commits: list[int]

    def uow(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessions,
            self.messaging,
            source="/qcdc/test",
            clock=self.clock,
            on_commit=lambda: self.commits.append(1),
        )

    async def rows(self, table: sa.Table) -> list[sa.Row[Any]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(sa.select(table))
            return list(result.all())


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Db]:
    metadata = sa.MetaData()
    messaging = messaging_tables(metadata)
    things = sa.Table(
        "things",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime, nullable=True),
    )
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/db/test.db")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield Db(engine, sessions, messaging, things, ManualClock(NOW), [])
    await engine.dispose()


def unit_event(code: str = "X30337") -> UnitRegistered:
    return UnitRegistered(
        unit_path=["T89", "H886", code], code=code, name="Xã Hòa Bắc", kind="commune"
    )


async def test_publish_and_commit_write_the_state_and_the_outbox_rows(db: Db) -> None:
    bind_correlation_id("corr-uow")
    async with db.uow() as uow:
        await uow.session.execute(db.things.insert().values(id=1, name="Hòa Bắc"))
        ids = uow.publish(unit_event("X1"), unit_event("X2"))
        await uow.commit()
    assert len(ids) == 2 and len(set(ids)) == 2
    assert [(r.id, r.name) for r in await db.rows(db.things)] == [(1, "Hòa Bắc")]
    outbox = sorted(await db.rows(db.messaging.outbox), key=lambda r: r.seq)
    assert [r.event_id for r in outbox] == ids
    assert [r.subject for r in outbox] == [
        "qcdc.v1.unit.registered.T89.H886.X1",
        "qcdc.v1.unit.registered.T89.H886.X2",
    ]
    for row, code in zip(outbox, ("X1", "X2"), strict=True):
        headers = row.headers if isinstance(row.headers, dict) else json.loads(row.headers)
        assert row.event_type == "qcdc.unit.registered.v1"
        assert headers["ce-id"] == row.event_id
        assert headers["Nats-Msg-Id"] == row.event_id
        assert headers["ce-type"] == "qcdc.unit.registered.v1"
        assert headers["ce-source"] == "/qcdc/test"
        assert headers["ce-correlationid"] == "corr-uow"
        assert headers["ce-time"] == "2023-06-09T16:59:59.999999Z"  # from the clock
        assert headers["ce-subject"] == f"T89.H886.{code}"
        assert row.created_at == NOW
        assert row.published_at is None
        assert row.attempts == 0
        # What the relay will publish decodes back to the event.
        _, event = decode(row.subject, headers, row.body)
        assert event == unit_event(code)
    assert db.commits == [1]


async def test_an_exception_inside_the_unit_of_work_writes_nothing(db: Db) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.uow() as uow:
            await uow.session.execute(db.things.insert().values(id=1, name="x"))
            uow.publish(unit_event())
            raise RuntimeError("boom")
    assert await db.rows(db.things) == []
    assert await db.rows(db.messaging.outbox) == []
    assert db.commits == []


async def test_leaving_without_commit_writes_nothing(db: Db) -> None:
    async with db.uow() as uow:
        await uow.session.execute(db.things.insert().values(id=1, name="x"))
        uow.publish(unit_event())
    assert await db.rows(db.things) == []
    assert await db.rows(db.messaging.outbox) == []
    assert db.commits == []


async def test_events_of_a_failed_unit_of_work_do_not_leak_into_the_next(db: Db) -> None:
    uow = db.uow()
    with pytest.raises(RuntimeError):
        async with uow:
            uow.publish(unit_event("X1"))
            raise RuntimeError("boom")
    async with uow:
        uow.publish(unit_event("X2"))
        await uow.commit()
    assert [r.subject for r in await db.rows(db.messaging.outbox)] == [
        "qcdc.v1.unit.registered.T89.H886.X2"
    ]


async def test_on_commit_is_called_only_when_events_were_written(db: Db) -> None:
    async with db.uow() as uow:
        await uow.session.execute(db.things.insert().values(id=1, name="x"))
        await uow.commit()
    assert db.commits == []
    assert len(await db.rows(db.things)) == 1
    async with db.uow() as uow:
        uow.publish(unit_event())
        await uow.commit()
    assert db.commits == [1]


async def test_the_session_is_only_open_inside(db: Db) -> None:
    uow = db.uow()
    with pytest.raises(RuntimeError, match="not open"):
        _ = uow.session


async def test_mark_handled_once_per_consumer_and_event(db: Db) -> None:
    async with db.uow() as uow:
        assert await uow.mark_handled("notify-receipts", "e-1", "qcdc.report.submitted.v1")
        assert not await uow.mark_handled("notify-receipts", "e-1", "qcdc.report.submitted.v1")
        assert await uow.mark_handled("reports-consolidate", "e-1", "qcdc.report.submitted.v1")
        await uow.commit()
    async with db.uow() as uow:  # and across transactions
        assert not await uow.mark_handled("notify-receipts", "e-1", "qcdc.report.submitted.v1")
        assert await uow.mark_handled("notify-receipts", "e-2", "qcdc.report.submitted.v1")
        await uow.commit()
    rows = await db.rows(db.messaging.inbox)
    assert sorted((r.consumer, r.event_id) for r in rows) == [
        ("notify-receipts", "e-1"),
        ("notify-receipts", "e-2"),
        ("reports-consolidate", "e-1"),
    ]
    assert all(r.handled_at == NOW for r in rows)


async def test_mark_handled_is_undone_with_its_transaction(db: Db) -> None:
    with pytest.raises(RuntimeError):
        async with db.uow() as uow:
            assert await uow.mark_handled("c", "e-1", "t")
            raise RuntimeError("handler failed")
    async with db.uow() as uow:
        assert await uow.mark_handled("c", "e-1", "t")  # handled again after the failure
        await uow.commit()


@pytest.mark.parametrize(
    "instant",
    [
        NOW,
        datetime(2023, 6, 10, 0, 0, tzinfo=timezone(timedelta(hours=7))),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
async def test_utc_datetime_round_trips_instants_as_utc(db: Db, instant: datetime) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(db.things.insert().values(id=1, name="x", at=instant))
    async with db.engine.connect() as conn:
        stored = (await conn.execute(sa.select(db.things.c.at))).scalar_one()
        raw = (await conn.execute(sa.text("SELECT at FROM things"))).scalar_one()
    assert stored == instant
    assert stored.utcoffset() == timedelta(0)
    assert str(raw).startswith(instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))


async def test_utc_datetime_orders_instants_from_different_zones(db: Db) -> None:
    ict = timezone(timedelta(hours=7))
    early = datetime(2023, 6, 10, 0, 0, tzinfo=ict)  # 17:00 UTC on the 9th
    late = datetime(2023, 6, 9, 18, 0, tzinfo=UTC)
    async with db.engine.begin() as conn:
        await conn.execute(db.things.insert(), [{"id": 1, "name": "late", "at": late}])
        await conn.execute(db.things.insert(), [{"id": 2, "name": "early", "at": early}])
    async with db.engine.connect() as conn:
        names = (await conn.execute(sa.select(db.things.c.name).order_by(db.things.c.at))).scalars()
        assert list(names) == ["early", "late"]


async def test_utc_datetime_refuses_a_naive_datetime(db: Db) -> None:
    with pytest.raises(sa.exc.StatementError) as info:
        async with db.engine.begin() as conn:
            await conn.execute(
                db.things.insert().values(id=1, name="x", at=datetime(2023, 6, 9, 16, 59))
            )
    assert isinstance(info.value.orig, ValueError)
    assert "naive" in str(info.value.orig)
    assert await db.rows(db.things) == []


def test_utc_datetime_bind_refuses_naive_on_any_dialect() -> None:
    column_type = UTCDateTime()
    dialects = [create_engine(url).dialect for url in ("sqlite+aiosqlite://", PG_URL)]
    assert [d.name for d in dialects] == ["sqlite", "postgresql"]
    for dialect in dialects:
        with pytest.raises(ValueError, match="naive"):
            column_type.process_bind_param(datetime(2023, 6, 9), dialect)
        assert column_type.process_bind_param(None, dialect) is None


async def test_group_commit_shares_transactions_and_answers_each_caller_after_its_commit(
    db: Db,
) -> None:
    """Concurrent steps share commits; each caller's answer comes once its row is
    committed; a failing step fails only its own caller."""
    committed_when_answered: list[bool] = []
    group = GroupCommit(db.uow, lanes=1)

    async def insert(n: int, bad: int = -1) -> int:
        async def step(uow: UnitOfWork) -> int:
            await uow.session.execute(db.things.insert().values(id=n, name=f"thing {n}"))
            if n == bad:
                raise ValueError("bad step")
            uow.publish(unit_event(f"X{n}"))
            return n

        done = await group.run(step)
        committed_when_answered.append(n in {row.id for row in await db.rows(db.things)})
        return done

    assert await asyncio.gather(*(insert(n) for n in range(10))) == list(range(10))
    # The first step ran alone; the nine that queued behind it shared one transaction.
    assert len(db.commits) == 2
    results = await asyncio.gather(
        *(insert(n, bad=15) for n in range(10, 20)), return_exceptions=True
    )
    assert isinstance(results[5], ValueError)
    assert [r for r in results if not isinstance(r, Exception)] == [
        n for n in range(10, 20) if n != 15
    ]
    assert all(committed_when_answered) and len(committed_when_answered) == 19
    assert sorted(row.id for row in await db.rows(db.things)) == [n for n in range(20) if n != 15]
    assert len(await db.rows(db.messaging.outbox)) == 19


async def test_group_commit_bounds_its_transactions_and_keeps_order(db: Db) -> None:
    group = GroupCommit(db.uow, lanes=1, max_batch=3)
    order: list[int] = []

    async def insert(n: int) -> int:
        async def step(uow: UnitOfWork) -> int:
            await uow.session.execute(db.things.insert().values(id=n, name=f"thing {n}"))
            uow.publish(unit_event(f"X{n}"))
            order.append(n)
            return n

        return await group.run(step)

    assert await asyncio.gather(*(insert(n) for n in range(10))) == list(range(10))
    assert order == list(range(10))
    # The first alone, then the nine that queued behind it three at a time.
    assert len(db.commits) == 4


async def test_group_commit_lingers_on_an_idle_group_for_the_steps_that_follow(db: Db) -> None:
    """With a linger, a step that finds the group idle waits for others; one queued
    meanwhile takes it along, and its caller is answered on that commit, not when the
    linger (an hour here) runs out."""
    group = GroupCommit(db.uow, lanes=1, linger_seconds=3600)

    async def insert(n: int) -> int:
        async def step(uow: UnitOfWork) -> int:
            await uow.session.execute(db.things.insert().values(id=n, name=f"thing {n}"))
            uow.publish(unit_event(f"X{n}"))
            return n

        return await group.run(step)

    first = asyncio.create_task(insert(1))
    await asyncio.sleep(0)  # one turn of the loop: the task runs up to its linger
    assert not first.done()
    assert await asyncio.wait_for(insert(2), patience(10)) == 2
    assert await asyncio.wait_for(first, patience(10)) == 1
    assert len(db.commits) == 1
    assert sorted(row.id for row in await db.rows(db.things)) == [1, 2]
