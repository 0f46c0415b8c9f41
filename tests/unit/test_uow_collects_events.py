"""The unit of work queues the events of the aggregates its repositories saw when it
commits: a handler that forgets to publish loses no event (on SQLite, the real unit of
work and outbox; and the fake unit of work the handler unit tests use behaves alike)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.reports.adapters.repositories import ObligationRepository
from services.reports.bootstrap import SERVICE as REPORTS
from shared.events import ReportSubmitted
from shared.runtime import Runtime
from shared.uow import UnitOfWork
from tests.unit.fakes import FakeUnitOfWork, InMemoryObligations
from tests.unit.test_reports_domain import an_obligation

NOW = datetime(2023, 6, 5, 3, 0, tzinfo=UTC)


async def forgetful_submission(obligation_id: str, uow: UnitOfWork) -> None:
    """A handler that changes an aggregate and never calls ``uow.publish``."""
    obligations = uow.repository(ObligationRepository)
    obligation = await obligations.get(obligation_id)
    assert obligation is not None
    obligation.submit(
        report_id="r-1", receipt_number="BC-1", version=1, submitted_at=NOW, submitted_by="x"
    )
    await obligations.save(obligation)
    await uow.commit()


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'reports.sqlite3'}"
    runtime = REPORTS.runtime(REPORTS.settings_type(database_url=url))
    await runtime.migrate()
    yield runtime
    await runtime.engine.dispose()


async def _outbox(runtime: Runtime) -> list[str]:
    async with runtime.uow() as uow:
        outbox = uow.messaging.outbox
        query = sa.select(outbox.c.event_type).order_by(outbox.c.seq)
        return list((await uow.session.execute(query)).scalars())


async def test_a_forgotten_publish_still_reaches_the_outbox(runtime: Runtime) -> None:
    obligation = an_obligation()
    async with runtime.uow() as uow:
        await uow.repository(ObligationRepository).add_if_missing(obligation, NOW)
        await uow.commit()
    assert await _outbox(runtime) == []
    async with runtime.uow() as uow:
        await forgetful_submission(obligation.id, uow)
    assert await _outbox(runtime) == [ReportSubmitted.ce_type()]


async def test_an_event_published_by_hand_is_queued_once(runtime: Runtime) -> None:
    obligation = an_obligation()
    async with runtime.uow() as uow:
        await uow.repository(ObligationRepository).add_if_missing(obligation, NOW)
        await uow.commit()
    async with runtime.uow() as uow:
        found = await uow.repository(ObligationRepository).get(obligation.id)
        assert found is not None
        found.submit(
            report_id="r-1", receipt_number="BC-1", version=1, submitted_at=NOW, submitted_by="x"
        )
        uow.publish(*found.events)
        await uow.commit()
        await uow.commit()  # a second commit of the same work queues nothing again
    assert await _outbox(runtime) == [ReportSubmitted.ce_type()]


async def test_the_fake_unit_of_work_collects_alike() -> None:
    obligation = an_obligation()
    uow = FakeUnitOfWork(NOW, InMemoryObligations(obligation))
    await forgetful_submission(obligation.id, uow.as_uow())
    [event] = uow.published
    assert isinstance(event, ReportSubmitted) and event.report_id == "r-1"
