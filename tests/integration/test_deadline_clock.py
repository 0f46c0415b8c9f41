"""The deadline clock on a real bus, on SQLite and PostgreSQL: reminders across the six-month
period on working days, never for a unit that has submitted, each step exactly once even with
two replicas, catch-up after the clock was stopped, and the background job on its own."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa

from services.natsd import NatsServer
from services.reports.adapters.db import deadline_steps
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.domain.deadlines import SKIPPED
from services.reports.entrypoints import clock as clock_job
from services.reports.handlers.clock import ClockRun, run_clock
from services.reports.settings import ReportsSettings
from shared.bus.envelope import encode
from shared.clock import ManualClock
from shared.events import (
    Assignee,
    Event,
    PlanIssued,
    ReportKind,
    ReportRequested,
    ScheduledReport,
)
from shared.vntime import ICT, last_instant_before
from tests import builders
from tests.support import BusSpy, InProcessService, eventually, service_settings

APPROACHING = "qcdc.deadline.approaching.v1"
MISSED = "qcdc.deadline.missed.v1"
PLAN_ID = "kh-qcdc-2023"
REQUEST_ID = "hn-ccvc-2023"
THEMATIC = f"request-{REQUEST_ID}"
UNITS = {
    "STP": (["T89", "STP"], "department"),
    "H801": (["T89", "H801"], "district"),
    "X80101": (["T89", "H801", "X80101"], "commune"),
}

Key = tuple[str, str, str]
"""(unit code, schedule key, step name)."""


def ict(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ICT).astimezone(UTC)


def _assignee(code: str) -> Assignee:
    path, kind = UNITS[code]
    return Assignee(code=code, unit_path=path, kind=kind)


def _entry(key: str, kind: ReportKind, before: date, period_end: date) -> ScheduledReport:
    return builders.scheduled_report(key, kind, before, period_end)


def plan_issued() -> PlanIssued:
    schedule = [
        _entry("six_month", ReportKind.SIX_MONTH, date(2023, 6, 10), date(2023, 6, 8)),
        _entry("annual", ReportKind.ANNUAL, date(2023, 11, 20), date(2023, 11, 18)),
    ]
    return builders.plan_issued([_assignee(code) for code in UNITS], schedule, plan_id=PLAN_ID)


def report_requested() -> ReportRequested:
    """Due "before 04/05/2023": the last days fall in the 30/4–1/5 holidays."""
    return ReportRequested(
        unit_path=["T89", "SNV"],
        request_id=REQUEST_ID,
        kind=ReportKind.THEMATIC,
        topic="Kết quả tổ chức Hội nghị cán bộ, công chức, viên chức",
        requesting_unit="SNV",
        units=[_assignee("STP"), _assignee("X80101")],
        period_start=date(2023, 1, 1),
        period_end=date(2023, 3, 31),
        due_at=last_instant_before(date(2023, 5, 4)),
        plan_id=PLAN_ID,
    )


@dataclass
class Reports:
    """The reports service's replicas, sharing one database, one bus and one clock."""

    replicas: list[InProcessService]
    clock: ManualClock
    obligations: dict[tuple[str, str], str]
    """(unit, schedule key) → obligation id."""

    @property
    def keys_by_id(self) -> dict[str, tuple[str, str]]:
        return {oid: key for key, oid in self.obligations.items()}

    async def run(self, replica: int = 0) -> ClockRun:
        service = self.replicas[replica]
        settings = service.settings
        assert isinstance(settings, ReportsSettings)
        run = await run_clock(self.clock.now(), service.runtime.uow, settings)
        assert run.failed == []
        return run

    async def at(self, instant: datetime, replica: int = 0) -> list[Key]:
        self.clock.set(instant)
        return self.fired_keys(await self.run(replica))

    def fired_keys(self, run: ClockRun) -> list[Key]:
        keys = self.keys_by_id
        return [(f.unit_code, keys[f.obligation_id][1], f.step) for f in run.fired]

    async def submit(self, unit: str, schedule_key: str) -> None:
        async with self.replicas[0].client() as http:
            response = await http.post(
                "/reports",
                json={"obligation_id": self.obligations[unit, schedule_key], "unit_code": unit},
            )
        assert response.status_code == 201, response.text

    async def step_rows(self) -> list[Any]:
        async with self.replicas[0].runtime.uow() as uow:
            return list((await uow.session.execute(sa.select(deadline_steps))).all())


Start = Callable[..., Awaitable[Reports]]


async def _publish(url: str, *events: Event) -> None:
    nc = await nats.connect(url)
    try:
        for event in events:
            subject, headers, body = encode(event, source="/qcdc/plans", correlation_id="clock")
            await nc.jetstream().publish(subject, body, headers=headers)
    finally:
        await nc.close()


async def _seeded(service: InProcessService, expected: int) -> dict[tuple[str, str], str]:
    async def probe() -> list[Any]:
        async with service.client() as http:
            found: list[Any] = (await http.get("/obligations", params={"plan_id": PLAN_ID})).json()
        return found if len(found) == expected else []

    return {(o["unit_code"], o["schedule_key"]): o["id"] for o in await eventually(probe)}


@pytest.fixture
async def start_reports(
    nats_server: NatsServer, database_urls: dict[str, str]
) -> AsyncIterator[Start]:
    """Starts the reports service (one instance per settings override given: replicas when
    they are alike) on one bus and one clock, then seeds them from the bus with the plan,
    and the thematic request if asked. The clock job is left to the test: it runs hourly."""
    running: list[InProcessService] = []

    async def start(*instances: dict[str, Any], request: bool = False) -> Reports:
        clock = ManualClock(ict(2022, 12, 15))
        for overrides in instances or ({},):
            defaults = {"database_url": database_urls["reports"], "clock_interval_seconds": 3600}
            settings = service_settings(
                REPORTS, nats_url=nats_server.url, **{**defaults, **overrides}
            )
            running.append(await InProcessService(REPORTS, settings, clock).start())
        events: list[Event] = [plan_issued(), *([report_requested()] if request else [])]
        await _publish(nats_server.url, *events)
        seeded = [await _seeded(service, 6 + 2 * request) for service in running]
        return Reports(list(running), clock, seeded[0])

    yield start
    for service in running:
        await service.stop()


def deadline_events(spy: BusSpy, keys_by_id: dict[str, tuple[str, str]]) -> dict[Key, Any]:
    """Deadline events seen on the bus, by (unit, schedule key, step); asserts each step is
    one event. (Two replicas' relays may both publish an outbox row: the same event, same
    ``Nats-Msg-Id``, which JetStream stores once; a plain subscription sees both.)"""
    ids: dict[Key, set[str]] = {}
    bodies: dict[Key, Any] = {}
    for message in spy.of_type(APPROACHING) + spy.of_type(MISSED):
        body = json.loads(message.data)
        unit, schedule_key = keys_by_id[body["obligation"]["obligation_id"]]
        if "days_before" in body:
            # One reminder covers the steps the calendar put on its day.
            steps = [f"approaching-{offset}" for offset in body["steps"]]
        else:
            steps = ["missed-0" if body["step"] == 0 else f"urge-{body['step']}"]
        for step in steps:
            ids.setdefault((unit, schedule_key, step), set()).add(message.headers["ce-id"])
            bodies[unit, schedule_key, step] = body
    assert {key: len(found) for key, found in ids.items() if len(found) > 1} == {}
    return bodies


async def settled(spy: BusSpy, url: str, count: int) -> None:
    """Wait until ``count`` deadline events are on the bus, then a little longer (a step
    fired twice would show), and check that the stream holds exactly that many."""
    await spy.wait_for(lambda _: len(spy.of_type(APPROACHING) + spy.of_type(MISSED)) >= count)
    await asyncio.sleep(0.5)
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info("QCDC_REPORTS", "qcdc.v1.deadline.>")
    finally:
        await nc.close()
    assert sum((info.state.subjects or {}).values()) == count


def messages(steps: set[Key] | list[Key]) -> int:
    """How many deadline events the steps make: reminders the calendar put on one day are
    one message."""
    return len(
        {
            (unit, key, REMINDERS[key][int(step.split("-")[1])])
            if step.startswith("approaching")
            else (unit, key, step)
            for unit, key, step in steps
        }
    )


def sweep(first: date, last: date) -> Iterator[datetime]:
    """00:00, 08:00 and 16:00 ICT of every day: the clock sees each planned moment."""
    day = first
    while day <= last:
        for hour in (0, 8, 16):
            yield ict(day.year, day.month, day.day, hour)
        day += timedelta(days=1)


REMINDERS: dict[str, dict[int, date]] = {
    THEMATIC: {7: date(2023, 4, 26), 3: date(2023, 4, 28), 1: date(2023, 4, 28)},
    "six_month": {7: date(2023, 6, 2), 3: date(2023, 6, 6), 1: date(2023, 6, 8)},
    "annual": {7: date(2023, 11, 10), 3: date(2023, 11, 16), 1: date(2023, 11, 17)},
}
OPEN_WHEN_REMINDED = {
    THEMATIC: ("STP", "X80101"),
    "six_month": ("H801", "X80101"),  # STP submitted on 20/05
    "annual": ("STP", "H801", "X80101"),
}
MISSES: dict[Key, tuple[datetime, bool]] = {
    **{(u, THEMATIC, "missed-0"): (ict(2023, 5, 4), False) for u in ("STP", "X80101")},
    ("H801", "six_month", "missed-0"): (ict(2023, 6, 10), False),
    ("H801", "six_month", "urge-1"): (ict(2023, 6, 14, 8), False),
    ("H801", "six_month", "urge-2"): (ict(2023, 6, 19, 8), True),
    ("X80101", "six_month", "missed-0"): (ict(2023, 6, 10), False),
    ("X80101", "six_month", "urge-1"): (ict(2023, 6, 14, 8), False),
    ("X80101", "six_month", "urge-2"): (ict(2023, 6, 19, 8), True),
    ("X80101", "six_month", "urge-3"): (ict(2023, 6, 22, 8), True),
    ("X80101", "six_month", "urge-4"): (ict(2023, 6, 27, 8), True),
    ("X80101", "six_month", "urge-5"): (ict(2023, 6, 30, 8), True),
    **{(u, "annual", "missed-0"): (ict(2023, 11, 20), False) for u in UNITS},
    **{(u, "annual", "urge-1"): (ict(2023, 11, 22, 8), False) for u in UNITS},
}


def expected_reminders() -> dict[Key, datetime]:
    return {
        (unit, key, f"approaching-{offset}"): ict(day.year, day.month, day.day, 8)
        for key, days in REMINDERS.items()
        for offset, day in days.items()
        for unit in OPEN_WHEN_REMINDED[key]
    }


async def test_reminders_across_the_six_month_period(
    start_reports: Start, bus_spy: BusSpy, nats_server: NatsServer
) -> None:
    reports = await start_reports(request=True)
    submissions = {
        ict(2023, 5, 5, 7): [("STP", THEMATIC), ("X80101", THEMATIC)],
        ict(2023, 5, 20, 10): [("STP", "six_month")],  # before its first reminder
        ict(2023, 6, 20, 10): [("H801", "six_month")],  # late, after two urgings
        ict(2023, 7, 3, 9): [("X80101", "six_month")],
    }
    moments = {*sweep(date(2022, 12, 15), date(2023, 7, 4)), *submissions}
    moments |= {*sweep(date(2023, 11, 1), date(2023, 11, 25))}
    fired_at: dict[Key, datetime] = {}
    for moment in sorted(moments):
        reports.clock.set(moment)
        for unit, key in submissions.get(moment, []):
            await reports.submit(unit, key)
        for fired in await reports.at(moment):
            assert fired not in fired_at, f"{fired} fired twice"
            fired_at[fired] = moment

    # Each step fired once, at the very run where its moment came: not earlier, not later.
    assert fired_at == {**expected_reminders(), **{k: at for k, (at, _) in MISSES.items()}}
    assert messages(set(fired_at)) == len(fired_at) - 2  # thematic: 3 and 1 days on 28/04
    await settled(bus_spy, nats_server.url, messages(set(fired_at)))
    on_bus = deadline_events(bus_spy, reports.keys_by_id)
    assert set(on_bus) == set(fired_at)
    for (unit, key, step), body in on_bus.items():
        if step.startswith("approaching"):
            offset = int(step.split("-")[1])
            assert date.fromisoformat(body["fire_on"]) == REMINDERS[key][offset]
            assert offset in body["steps"] and body["days_before"] == min(body["steps"])
        else:
            assert body["escalated"] is MISSES[unit, key, step][1]
    assert not [k for k in on_bus if k[:2] == ("STP", "six_month")]


async def test_two_replicas_fire_each_step_exactly_once(
    start_reports: Start, bus_spy: BusSpy, nats_server: NatsServer
) -> None:
    reports = await start_reports({}, {}, request=True)
    moments = [
        ict(2023, 4, 26, 8),
        ict(2023, 4, 28, 8),
        ict(2023, 5, 4),
        ict(2023, 5, 8, 8),
        ict(2023, 6, 2, 8),
        ict(2023, 6, 6, 8),
        ict(2023, 6, 8, 8),
        ict(2023, 6, 10),
        ict(2023, 6, 14, 8),
        ict(2023, 6, 19, 8),
    ]
    fired: list[Key] = []
    for moment in moments:
        reports.clock.set(moment)
        runs = await asyncio.gather(*(reports.run(replica) for replica in (0, 1) * 4))
        fired += [key for run in runs for key in reports.fired_keys(run)]

    assert [key for key, n in Counter(fired).items() if n > 1] == []
    nobody_submitted = {
        (unit, key, step)
        for key, units in ((THEMATIC, ("STP", "X80101")), ("six_month", tuple(UNITS)))
        for unit in units
        for step in ("approaching-7", "approaching-3", "approaching-1", "missed-0", "urge-1")
    }
    assert nobody_submitted <= set(fired)
    await settled(bus_spy, nats_server.url, messages(fired))
    assert set(deadline_events(bus_spy, reports.keys_by_id)) == set(fired)
    rows = await reports.step_rows()
    assert len([r for r in rows if r.event_id != SKIPPED]) == len(fired)


async def test_a_clock_stopped_for_two_days_catches_up(
    start_reports: Start, bus_spy: BusSpy, nats_server: NatsServer
) -> None:
    reports = await start_reports()
    six_month = [("STP", "six_month"), ("H801", "six_month"), ("X80101", "six_month")]
    assert sorted(await reports.at(ict(2023, 6, 2, 8))) == sorted(
        (u, k, "approaching-7") for u, k in six_month
    )
    # Stopped from 05/06 to 08/06 09:00: the 3-day reminder would mislead; the 1-day one fires.
    assert sorted(await reports.at(ict(2023, 6, 8, 9))) == sorted(
        (u, k, "approaching-1") for u, k in six_month
    )
    assert await reports.at(ict(2023, 6, 8, 9)) == []
    await reports.submit("STP", "six_month")
    # Stopped across the deadline, then across two urging days.
    assert sorted(await reports.at(ict(2023, 6, 11, 12))) == [
        ("H801", "six_month", "missed-0"),
        ("X80101", "six_month", "missed-0"),
    ]
    assert sorted(await reports.at(ict(2023, 6, 20, 9))) == [
        ("H801", "six_month", "urge-2"),
        ("X80101", "six_month", "urge-2"),
    ]
    assert await reports.at(ict(2023, 6, 20, 9)) == []
    assert await reports.at(ict(2023, 6, 21, 9)) == []

    await settled(bus_spy, nats_server.url, 3 + 3 + 2 + 2)
    on_bus = deadline_events(bus_spy, reports.keys_by_id)
    assert sorted({step for _, _, step in on_bus}) == [
        "approaching-1",
        "approaching-7",
        "missed-0",
        "urge-2",
    ]
    assert all(body["escalated"] for (_, _, step), body in on_bus.items() if step == "urge-2")
    skipped = {r.step for r in await reports.step_rows() if r.event_id == SKIPPED}
    assert skipped == {"approaching-3", "urge-1"}


@pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)
async def test_the_background_job_fires_on_its_own_and_survives_errors(
    start_reports: Start, bus_spy: BusSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[datetime] = []

    async def flaky(now: datetime, *args: Any) -> ClockRun:
        if not failures:
            failures.append(now)
            raise RuntimeError("database went away")
        return await run_clock(now, *args)

    monkeypatch.setattr(clock_job, "run_clock", flaky)
    reports = await start_reports({"clock_interval_seconds": 0.05})
    reports.clock.set(ict(2023, 6, 2, 8))
    assert len(await bus_spy.wait_for_type(APPROACHING, 3, timeout=10)) == 3
    reports.clock.set(ict(2023, 6, 6, 8))
    assert len(await bus_spy.wait_for_type(APPROACHING, 6, timeout=10)) == 6
    await asyncio.sleep(0.5)
    assert len(bus_spy.of_type(APPROACHING)) == 6
    assert failures
    async with reports.replicas[0].client() as client:
        metrics = (await client.get("/metrics")).text
    assert 'qcdc_clock_steps_total{kind="approaching"} 6.0' in metrics
    assert 'qcdc_clock_steps_total{kind="missed"} 0.0' in metrics


@pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)
async def test_each_instance_reminds_only_the_units_it_owns(
    start_reports: Start, bus_spy: BusSpy, nats_server: NatsServer, tmp_path: Path
) -> None:
    # The province delegates the district H801 to the district's own instance; both hold
    # every obligation, the province's copies of H801's being read-only mirrors.
    district_db = f"sqlite+aiosqlite:///{tmp_path}/district-reports.db"
    reports = await start_reports(
        {"delegated": ["H801"]}, {"scope": "H801", "database_url": district_db}
    )
    reports.clock.set(ict(2023, 6, 2, 8))
    province, district = [reports.fired_keys(await reports.run(i)) for i in (0, 1)]
    assert province == [("STP", "six_month", "approaching-7")]
    assert sorted(district) == [
        ("H801", "six_month", "approaching-7"),
        ("X80101", "six_month", "approaching-7"),
    ]
    await settled(bus_spy, nats_server.url, 3)
