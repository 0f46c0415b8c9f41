"""The incremental deadline clock against a real database (SQLite and PostgreSQL), through
its handlers: each obligation waits for its next step and only then is decided; a pass with
nothing due fires and writes nothing; submitted obligations leave the scan and returned
ones come back; an amended deadline or a changed schedule reschedules; concurrent passes
and a submission in progress never make a step fire twice or a submitted report reminded.
(The bus end to end is in test_deadline_clock.py.)"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from services.reports.adapters.db import deadline_clock_rules, deadline_steps, obligations
from services.reports.adapters.repositories import ObligationRepository
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.domain.deadlines import SKIPPED, first_step_at, schedule_fingerprint
from services.reports.domain.model import RECONSIDER, ObligationStatus, Ownership
from services.reports.handlers.clock import ClockRun, follow_schedule, rules_from, run_clock
from services.reports.handlers.intake import SubmitReport, submit_report
from services.reports.handlers.obligations import on_plan_amended, on_plan_issued
from services.reports.handlers.review import Review, review_report
from services.reports.settings import ReportsSettings
from shared.auth import CONSOLE
from shared.events import Assignee, PlanAmended, PlanIssued, ReportKind, ScheduleChange
from shared.runtime import Runtime
from shared.vntime import last_instant_before
from tests import builders
from tests.integration.test_deadline_clock import PLAN_ID, UNITS, _entry, ict, plan_issued

ENVELOPE = builders.plan_issued_envelope("clock-test")
Key = tuple[str, str]
"""(unit code, schedule key)."""


@dataclass
class Harness:
    runtime: Runtime
    settings: ReportsSettings

    async def issue(self, event: PlanIssued) -> None:
        async with self.runtime.uow() as uow:
            rules = rules_from(self.settings)
            await on_plan_issued(event, ENVELOPE, uow, ownership=Ownership(), rules=rules)
            await uow.commit()

    async def run(self, at: datetime, settings: ReportsSettings | None = None) -> ClockRun:
        run = await run_clock(at, self.runtime.uow, settings or self.settings)
        assert run.failed == []
        return run

    async def fired(self, at: datetime) -> list[tuple[str, str, str]]:
        keys = await self.keys()
        return sorted((*keys[f.obligation_id], f.step) for f in (await self.run(at)).fired)

    async def rows(self, query: Any) -> list[Any]:
        async with self.runtime.uow() as uow:
            return list((await uow.session.execute(query)).all())

    async def keys(self) -> dict[str, Key]:
        query = sa.select(obligations.c.id, obligations.c.unit_code, obligations.c.schedule_key)
        return {r.id: (r.unit_code, r.schedule_key) for r in await self.rows(query)}

    async def ids(self) -> dict[Key, str]:
        return {key: oid for oid, key in (await self.keys()).items()}

    async def next_steps(self) -> dict[Key, datetime | None]:
        query = sa.select(
            obligations.c.unit_code, obligations.c.schedule_key, obligations.c.next_step_at
        )
        return {(r.unit_code, r.schedule_key): r.next_step_at for r in await self.rows(query)}

    async def outbox_rows(self) -> int:
        outbox = self.runtime.messaging.outbox
        return len(await self.rows(sa.select(outbox.c.event_id)))


@pytest.fixture
async def clock(database_urls: dict[str, str]) -> AsyncIterator[Harness]:
    # Batches of two: three obligations per deadline take two batches.
    settings = ReportsSettings(
        database_url=database_urls["reports"],
        clock="fixed:2023-01-16T02:00:00Z",
        clock_batch_size=2,
    )
    async with REPORTS.offline(settings) as runtime:
        harness = Harness(runtime, settings)
        # A running service has recorded its schedule before any plan comes.
        await follow_schedule(runtime.uow, schedule_fingerprint(rules_from(settings)))
        await harness.issue(plan_issued())
        yield harness


SIX_MONTH = [(unit, "six_month") for unit in sorted(UNITS)]
ANNUAL = [(unit, "annual") for unit in sorted(UNITS)]


async def test_each_obligation_waits_for_its_next_step_then_moves_on(clock: Harness) -> None:
    assert await clock.next_steps() == {
        **dict.fromkeys(SIX_MONTH, ict(2023, 6, 2, 8)),  # approaching-7
        **dict.fromkeys(ANNUAL, ict(2023, 11, 10, 8)),
    }
    assert await clock.fired(ict(2023, 6, 2, 7, 59)) == []
    assert await clock.fired(ict(2023, 6, 2, 8)) == [(*key, "approaching-7") for key in SIX_MONTH]
    after = await clock.next_steps()
    assert after == {
        **dict.fromkeys(SIX_MONTH, ict(2023, 6, 6, 8)),  # approaching-3
        **dict.fromkeys(ANNUAL, ict(2023, 11, 10, 8)),
    }
    # Nothing due: nothing fired, nothing written.
    outbox = await clock.outbox_rows()
    assert await clock.fired(ict(2023, 6, 5, 23)) == []
    assert await clock.outbox_rows() == outbox == 3
    assert await clock.next_steps() == after
    # Urging has no end today: an overdue obligation always has a next step.
    assert await clock.fired(ict(2023, 6, 14, 8)) == sorted(
        [(*key, "missed-0") for key in SIX_MONTH] + [(*key, "urge-1") for key in SIX_MONTH]
    )
    assert {(await clock.next_steps())[key] for key in SIX_MONTH} == {ict(2023, 6, 19, 8)}


async def test_a_submitted_obligation_leaves_the_scan_and_a_returned_one_comes_back(
    clock: Harness,
) -> None:
    ids = await clock.ids()
    assert await clock.fired(ict(2023, 6, 2, 8)) == [(*key, "approaching-7") for key in SIX_MONTH]
    async with clock.runtime.uow() as uow:
        submitted = await submit_report(
            SubmitReport(ids["STP", "six_month"], "STP"), uow, caller=CONSOLE
        )
    assert (await clock.next_steps())["STP", "six_month"] is None
    assert await clock.fired(ict(2023, 6, 10)) == [
        ("H801", "six_month", "missed-0"),
        ("X80101", "six_month", "missed-0"),
    ]
    async with clock.runtime.uow() as uow:
        await review_report(
            Review(submitted.report.id, "SNV", accept=False, reason="Thiếu"), uow, caller=CONSOLE
        )
    assert (await clock.next_steps())["STP", "six_month"] == RECONSIDER
    # The steps planned while it was submitted were never recorded: the catch-up rules
    # decide, on the steps recorded (approaching-7 only).
    assert await clock.fired(ict(2023, 6, 14, 8)) == [
        ("H801", "six_month", "urge-1"),
        ("STP", "six_month", "missed-0"),
        ("STP", "six_month", "urge-1"),
        ("X80101", "six_month", "urge-1"),
    ]
    skipped = await clock.rows(
        sa.select(deadline_steps.c.step).where(
            deadline_steps.c.obligation_id == ids["STP", "six_month"],
            deadline_steps.c.event_id == SKIPPED,
        )
    )
    assert sorted(r.step for r in skipped) == ["approaching-1", "approaching-3"]
    assert {(await clock.next_steps())[key] for key in SIX_MONTH} == {ict(2023, 6, 19, 8)}


async def test_an_amended_deadline_reschedules_from_its_first_step(clock: Harness) -> None:
    assert await clock.fired(ict(2023, 6, 2, 8)) == [(*key, "approaching-7") for key in SIX_MONTH]
    later = last_instant_before(date(2023, 7, 10))
    six_month = _entry("six_month", ReportKind.SIX_MONTH, date(2023, 7, 10), date(2023, 7, 8))
    amended = PlanAmended(
        unit_path=["T89"],
        plan_id=PLAN_ID,
        amendment=1,
        schedule_changes=[
            ScheduleChange(key="six_month", old_due_at=six_month.due_at, new_due_at=later)
        ],
        schedule=[six_month, plan_issued().schedule[1]],
    )
    async with clock.runtime.uow() as uow:
        rules = rules_from(clock.settings)
        await on_plan_amended(amended, ENVELOPE, uow, ownership=Ownership(), rules=rules)
        await uow.commit()
    first = first_step_at(later, rules_from(clock.settings))
    assert first == ict(2023, 6, 30, 8)  # approaching-7 of "before 10/07/2023"
    assert {(await clock.next_steps())[key] for key in SIX_MONTH} == {first}
    assert await clock.fired(ict(2023, 6, 6, 8)) == []  # the old deadline's approaching-3
    assert await clock.fired(first) == [(*key, "approaching-7") for key in SIX_MONTH]


async def test_a_changed_schedule_reconsiders_every_awaiting_obligation(clock: Harness) -> None:
    assert await clock.fired(ict(2023, 6, 2, 8)) == [(*key, "approaching-7") for key in SIX_MONTH]
    assert await clock.fired(ict(2023, 6, 5, 8)) == []
    # A reminder four days before (Monday 05/06) is added to the settings.
    changed = clock.settings.model_copy(update={"reminder_offsets_days": [7, 4, 3, 1]})
    run = await clock.run(ict(2023, 6, 5, 8, 1), changed)
    assert run.reconsidered == 6
    assert sorted(f.step for f in run.fired) == ["approaching-4"] * 3
    assert {(await clock.next_steps())[key] for key in ANNUAL} == {ict(2023, 11, 10, 8)}
    assert (await clock.run(ict(2023, 6, 5, 8, 2), changed)).reconsidered == 0


async def test_obligations_from_before_the_incremental_clock_are_picked_up(
    clock: Harness,
) -> None:
    # What migration 0007 leaves: no next steps stored, no schedule recorded.
    async with clock.runtime.uow() as uow:
        await uow.session.execute(obligations.update().values(next_step_at=None))
        await uow.session.execute(deadline_clock_rules.delete())
        await uow.commit()
    assert await clock.fired(ict(2023, 6, 2, 8)) == [(*key, "approaching-7") for key in SIX_MONTH]
    assert (await clock.next_steps())["STP", "annual"] == ict(2023, 11, 10, 8)


async def test_a_step_recorded_behind_the_clocks_back_does_not_fire_again(
    clock: Harness,
) -> None:
    # A replica of the previous version records steps without moving next_step_at.
    ids = await clock.ids()
    async with clock.runtime.uow() as uow:
        await uow.session.execute(
            deadline_steps.insert().values(
                obligation_id=ids["STP", "six_month"],
                step="approaching-7",
                planned_for=ict(2023, 6, 2, 8),
                fired_at=ict(2023, 6, 2, 8),
                event_id="fired-by-another",
            )
        )
        await uow.commit()
    run = await clock.run(ict(2023, 6, 2, 8, 1))
    keys = await clock.keys()
    assert sorted((*keys[f.obligation_id], f.step) for f in run.fired) == [
        ("H801", "six_month", "approaching-7"),
        ("X80101", "six_month", "approaching-7"),
    ]
    assert run.retried_batches >= 1  # the batch holding it, then one by one
    assert await clock.outbox_rows() == 2
    assert {(await clock.next_steps())[key] for key in SIX_MONTH} == {ict(2023, 6, 6, 8)}


def many_assignees(count: int) -> PlanIssued:
    plan = plan_issued()
    communes = [
        Assignee(code=f"X{n:05d}", unit_path=["T89", "H801", f"X{n:05d}"], kind="commune")
        for n in range(count)
    ]
    return plan.model_copy(update={"plan_id": "kh-many", "assignees": communes})


async def test_concurrent_passes_fire_each_step_once(clock: Harness) -> None:
    await clock.issue(many_assignees(60))
    runs = await asyncio.gather(*(clock.run(ict(2023, 6, 2, 8)) for _ in range(4)))
    fired = [(f.obligation_id, f.step) for run in runs for f in run.fired]
    assert [key for key, n in Counter(fired).items() if n > 1] == []
    assert len(fired) == 63  # every six-month obligation, once
    steps = await clock.rows(sa.select(deadline_steps.c.event_id))
    assert len(steps) == await clock.outbox_rows() == 63
    assert sum(run.retried_batches for run in runs) == 0


@pytest.mark.parametrize("database_urls", ["postgresql"], indirect=True)
async def test_a_submission_in_progress_wins_over_its_reminder(clock: Harness) -> None:
    ids = await clock.ids()
    submitting = clock.runtime.uow()
    async with submitting:
        # Intake has updated the obligation's row and not committed yet: the clock passes
        # over the row it holds.
        repository = ObligationRepository(submitting.session)
        obligation = await repository.get(ids["STP", "six_month"])
        assert obligation is not None
        obligation.status = ObligationStatus.SUBMITTED
        await repository.save(obligation)
        assert await clock.fired(ict(2023, 6, 2, 8)) == [
            ("H801", "six_month", "approaching-7"),
            ("X80101", "six_month", "approaching-7"),
        ]
        await submitting.commit()
    assert await clock.fired(ict(2023, 6, 2, 8, 1)) == []
    assert (await clock.next_steps())["STP", "six_month"] is None


async def test_a_busy_pass_writes_whole_batches_in_one_go(clock: Harness) -> None:
    # 153 events in one commit: on PostgreSQL the steps and the outbox rows are copied in.
    await clock.issue(many_assignees(150))
    big = clock.settings.model_copy(update={"clock_batch_size": 500, "clock_workers": 1})
    run = await clock.run(ict(2023, 6, 2, 8), big)
    assert len(run.fired) == 153
    outbox = clock.runtime.messaging.outbox
    rows = await clock.rows(sa.select(outbox.c.event_id, outbox.c.headers, outbox.c.body))
    steps = await clock.rows(sa.select(deadline_steps.c.obligation_id, deadline_steps.c.event_id))
    fired = {f.event_id for f in run.fired}
    assert {r.event_id for r in rows} == {s.event_id for s in steps} == fired
    assert all(r.headers["ce-id"] == r.event_id for r in rows)
    assert all(r.headers["ce-type"] == "qcdc.deadline.approaching.v1" for r in rows)
    bodies = [json.loads(r.body) for r in rows]
    assert {b["obligation"]["obligation_id"] for b in bodies} == {s.obligation_id for s in steps}
    assert {b["days_before"] for b in bodies} == {7}
