"""Deadline rules end to end, on a real nats-server, real databases and a real SMTP server:
reminders the calendar puts on one day (Tết) are one event and one mail stating the working
days left; urging escalates, ends after its count and stops at once on submission; a
deadline already past is refused; an extension judges a late report again, in the DOCX and
the XLSX, and a unit whose deadlines move gets one message."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import pytest
import sqlalchemy as sa
from docx import Document
from openpyxl import load_workbook  # type: ignore[import-untyped]

from services.natsd import NatsServer
from services.reports.adapters.db import deadline_changes, deadline_steps
from shared.clock import ManualClock
from shared.vntime import ICT
from tests.integration import clocked
from tests.integration.clocked import H801, H801_HEAD, H802, SNV, STP
from tests.integration.test_plan_lifecycle import PROVINCE_PLAN, UNITS
from tests.support import (
    BusSpy,
    eventually,
)

SNV_HEAD = "giamdoc@snv.vn"
CONTACTS = {**clocked.CONTACTS, "T89-SNV": {"focal_email": SNV, "head_email": SNV_HEAD}}
APPROACHING = "qcdc.deadline.approaching.v1"
MISSED = "qcdc.deadline.missed.v1"


def ict(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ICT).astimezone(UTC)


@dataclass
class System(clocked.ClockedSystem):
    async def rows(self, table: sa.Table) -> list[Any]:
        async with self.reports.runtime.uow() as uow:
            return list((await uow.session.execute(sa.select(table))).all())


Start = Callable[..., Awaitable[System]]


@pytest.fixture
async def start_system(
    nats_server: NatsServer, database_urls: dict[str, str]
) -> AsyncIterator[Start]:
    inbox = clocked.started_inbox()
    async with contextlib.AsyncExitStack() as stack:

        async def start(now: datetime, **reports: Any) -> System:
            clock = ManualClock(now)
            services = clocked.clocked_services(
                nats_server.url, database_urls, clock, inbox, reports
            )
            running = await stack.enter_async_context(services)
            plans, reports_service, notify = running["plans"], running["reports"], running["notify"]
            return System(plans, reports_service, notify, clock, inbox)

        yield start
    inbox.stop()


async def issue_plan(plans: httpx.AsyncClient, plan: dict[str, Any]) -> dict[str, Any]:
    return await clocked.issue_with_contacts(plans, UNITS, CONTACTS, plan)


async def obligations(reports: httpx.AsyncClient, count: int) -> dict[str, str]:
    """(unit) → six-month obligation id, once the reports service has opened ``count``."""

    async def probe() -> dict[str, str]:
        found = (await reports.get("/obligations")).json()
        six = {o["unit_code"]: o["id"] for o in found if o["schedule_key"] == "six_month"}
        return six if len(six) == count else {}

    found: dict[str, str] = await eventually(probe)
    return found


def tet_plan() -> dict[str, Any]:
    """The six-month report due "before 24/02/2026": last day Monday 23/02, after Tết Bính
    Ngọ (16–20/02). Seven, three and one days before all fall back to Friday 13/02."""
    return {
        **PROVINCE_PLAN,
        "doc_number": "12/KH-UBND",
        "issued_on": "2026-01-05",
        "year": 2026,
        "schedule": [
            {
                "key": "six_month",
                "kind": "six_month",
                "period_start": "2025-08-15",
                "period_end": "2026-02-10",
                "due_before": "2026-02-24",
                "receiving_unit": "tag:home_affairs",
            }
        ],
        "sub_plan": {"required": False},
    }


async def deadline_events_stored(url: str, subject: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info("QCDC_REPORTS", subject)
    finally:
        await nc.close()
    return sum((info.state.subjects or {}).values())


async def test_tet_puts_three_reminders_on_one_day_one_event_and_one_mail_each(
    start_system: Start, bus_spy: BusSpy, nats_server: NatsServer
) -> None:
    system = await start_system(ict(2026, 1, 6, 9))
    async with system.plans.client() as plans, system.reports.client() as reports:
        await issue_plan(plans, tet_plan())
        await obligations(reports, 3)
    assert await system.at(ict(2026, 2, 13, 7, 59)) == []
    fired = await system.at(ict(2026, 2, 13, 8))
    units = ("H801", "H802", "T89-STP")
    steps = ("approaching-7", "approaching-3", "approaching-1")
    assert fired == sorted(f"{u}:{s}" for u in units for s in steps)

    # One event per unit, covering the three steps; every step recorded with its id.
    await bus_spy.wait_for(lambda _: len(bus_spy.of_type(APPROACHING)) >= 3)
    events = bus_spy.of_type(APPROACHING)
    bodies = [json.loads(m.data) for m in bus_spy.of_type(APPROACHING)]
    assert await deadline_events_stored(nats_server.url, "qcdc.v1.deadline.>") == 3
    assert len(events) == 3
    assert {(b["steps"] == [7, 3, 1], b["working_days_left"], b["fire_on"]) for b in bodies} == {
        (True, 1, "2026-02-13")
    }
    rows = await system.rows(deadline_steps)
    assert len(rows) == 9 and len({r.event_id for r in rows}) == 3

    # One mail per unit, saying the last instant and one working day (not "10 days").
    sent = await system.all_sent(3, event_type="deadline.approaching")
    assert sorted(d["recipient"] for d in sent) == sorted(CONTACTS[u]["focal_email"] for u in units)
    mail = await system.inbox.one(H801, "[Nhắc hạn]")
    assert len(system.inbox.to(H801, "[Nhắc hạn]")) == 1
    assert "thời điểm cuối cùng được tính là đúng hạn là 23:59 23/02/2026" in mail.text
    assert "(còn 1 ngày làm việc, không kể hôm nay)" in mail.text
    assert "còn 10 ngày" not in mail.text
    # Nothing more until the deadline passes.
    assert await system.at(ict(2026, 2, 23, 12)) == []


async def test_urging_escalates_ends_after_its_count_and_stops_on_submission(
    start_system: Start,
) -> None:
    system = await start_system(
        ict(2023, 5, 20, 9),
        urge_max_steps=2,
        escalate_after_steps=1,
        escalate_to_receiving_after_steps=2,
        reminder_offsets_days=[],
    )
    async with system.plans.client() as plans, system.reports.client() as reports:
        await issue_plan(plans, PROVINCE_PLAN)
        ids = await obligations(reports, 3)
        assert await system.at(ict(2023, 6, 10, 0, 1)) == [
            "H801:missed-0",
            "H802:missed-0",
            "T89-STP:missed-0",
        ]
        assert await system.at(ict(2023, 6, 14, 8)) == [
            "H801:urge-1",
            "H802:urge-1",
            "T89-STP:urge-1",
        ]
        # Its first urging delivered (a mail still queued when the report arrives is
        # withdrawn, which the mails below do not expect), H802 reports: its urging stops.
        await system.inbox.one(H802, "[Đôn đốc lần 1]")
        await system.all_sent(1, unit="H802", event_type="deadline.missed")
        submitted = await reports.post(
            "/reports", json={"obligation_id": ids["H802"], "unit_code": "H802"}
        )
        assert submitted.status_code == 201, submitted.text
    # The second urging is the last: to the head of the unit and the receiving unit's.
    assert await system.at(ict(2023, 6, 19, 8)) == ["H801:urge-2", "T89-STP:urge-2"]
    # (The annual report is due on 19/11.)
    for later in (ict(2023, 6, 22, 8), ict(2023, 7, 30, 8), ict(2023, 11, 17, 8)):
        assert await system.at(later) == []

    last = await system.inbox.one(H801, "[Đôn đốc lần 2]")
    assert last.subject.endswith("– báo cáo lãnh đạo Sở Nội vụ – lần cuối")
    assert "Đây là lần đôn đốc cuối cùng (2/2)" in last.text
    to_leadership = await system.inbox.one(SNV_HEAD, "[Đôn đốc lần 2]")
    assert "Đề nghị lãnh đạo Sở Nội vụ chỉ đạo, đôn đốc" in to_leadership.text
    await system.inbox.one(H801_HEAD, "[Đôn đốc lần 1]")
    await system.all_sent(1, unit="H802", event_type="deadline.missed")
    missed = await system.all_sent(1, event_type="deadline.missed")
    h802_urged = [m for m in system.inbox.to(H802) if m.subject.startswith("[Đôn đốc")]
    assert [m.subject.split("]")[0] for m in h802_urged] == ["[Đôn đốc lần 1"]
    assert not [m for m in system.inbox.items if m.subject.startswith("[Đôn đốc lần 3]")]
    assert {d["recipient"] for d in missed} >= {H801, H801_HEAD, SNV_HEAD}

    # From now on only the receiving unit's daily digest lists them, until each is met.
    async with system.reports.client() as reports:
        response = await reports.post(
            "/reports", json={"obligation_id": ids["H801"], "unit_code": "H801"}
        )
        assert response.status_code == 201, response.text
    await system.inbox.one(H801, "[Xác nhận]")
    system.clock.set(ict(2023, 6, 20, 7, 30))
    digest = await system.inbox.one(SNV, "Tổng hợp thông báo ngày 20/06/2023")
    assert digest.subject.endswith("1 báo cáo quá hạn chưa nộp)")
    overdue = digest.text.split("Báo cáo quá hạn đã hết lượt đôn đốc, vẫn chưa nộp (1):")[1]
    line = "Báo cáo 6 tháng của Sở Tư pháp theo Kế hoạch 123/KH-UBND – hạn 09/06/2023"
    assert line in overdue
    assert "Tân Phú" not in overdue and "đã đôn đốc 2 lần" in overdue


async def test_a_request_or_an_amendment_into_the_past_is_refused(start_system: Start) -> None:
    system = await start_system(ict(2023, 6, 12, 9))
    async with system.plans.client() as plans:
        plan = await issue_plan(plans, PROVINCE_PLAN)
        request = {
            "requesting_unit": "T89-SNV",
            "kind": "thematic",
            "topic": "Kết quả tiếp công dân",
            "units": ["H801"],
            "period_start": "2023-01-01",
            "period_end": "2023-03-31",
        }
        past = await plans.post("/report-requests", json={**request, "due_before": "2023-06-01"})
        today = await plans.post("/report-requests", json={**request, "due_before": "2023-06-12"})
        tomorrow = await plans.post(
            "/report-requests", json={**request, "due_before": "2023-06-13"}
        )
        earlier = await plans.post(
            f"/plans/{plan['id']}/amendments",
            json={"reason": "Sửa hạn", "deadlines": {"annual": "2023-06-05"}},
        )
    for refused in (past, today):
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == "due_before"
        assert "has passed" in refused.json()["error"]["message"]
    assert tomorrow.status_code == 201, tomorrow.text  # due 12/06 23:59:59 ICT
    assert earlier.status_code == 422
    assert earlier.json()["error"]["field"] == "deadlines.annual"


async def test_an_extension_makes_a_late_report_on_time_with_one_message_per_unit(
    start_system: Start,
) -> None:
    system = await start_system(ict(2023, 6, 12, 9), reminder_offsets_days=[7, 3, 1])
    async with system.plans.client() as plans, system.reports.client() as reports:
        plan = await issue_plan(plans, PROVINCE_PLAN)
        ids = await obligations(reports, 3)
        late = await reports.post(
            "/reports", json={"obligation_id": ids["H801"], "unit_code": "H801"}
        )
        assert late.status_code == 201 and late.json()["on_time"] is False
        assert await system.at(ict(2023, 6, 12, 9)) == ["H802:missed-0", "T89-STP:missed-0"]
        # Both missed deadlines' mail, two messages each: their events may be handled in
        # separate transactions, so waiting for two would snapshot one event's half.
        before = await system.all_sent(4, event_type="deadline.missed")
        assert len({d["event_id"] for d in before}) == 2
        # Both deadlines move: six-month to "before 20/06", annual to "before 01/12".
        amended = await plans.post(
            f"/plans/{plan['id']}/amendments",
            json={
                "reason": "Gia hạn báo cáo; giao thêm xã Long Hòa",
                "deadlines": {"six_month": "2023-06-20", "annual": "2023-12-01"},
                "add_units": ["X80201"],
            },
        )
        assert amended.status_code == 200, amended.text

        async def reclassified() -> dict[str, Any]:
            found: dict[str, Any] = (
                await reports.get(f"/reports/{late.json()['report_id']}")
            ).json()
            return found if found["on_time"] else {}

        await eventually(reclassified)
        await obligations(reports, 4)
        # The amendment's mail is the unit's one message: the reminders of the new
        # six-month deadline already planned (7 days before: 12/06) do not fire too, nor
        # for the unit the amendment added.
        assert await system.at(ict(2023, 6, 12, 9, 1)) == []
        amended_mails = await system.all_sent(3, event_type="plan.amended")
        params = {"plan_id": plan["id"], "schedule_key": "six_month", "receiving_unit": "T89-SNV"}
        detail = (await reports.get(f"/obligations/{ids['H801']}")).json()
        docx = await reports.get("/consolidations", params={**params, "format": "docx"})
        xlsx = await reports.get("/consolidations", params={**params, "format": "xlsx"})
    # Each unit one message about the amendment, however many of its deadlines moved.
    recipients = [d["recipient"] for d in amended_mails]
    assert len(recipients) == len(set(recipients))
    assert {H801, H802, CONTACTS["T89-STP"]["focal_email"]} <= set(recipients)
    # The old deadline's urging (14/06) is gone. The new last day is Monday 19/06: three
    # days and one day before both fall on Friday 16/06, one reminder each.
    assert await system.at(ict(2023, 6, 14, 8)) == []
    assert await system.at(ict(2023, 6, 16, 8)) == [
        "H802:approaching-1",
        "H802:approaching-3",
        "T89-STP:approaching-1",
        "T89-STP:approaching-3",
        "X80201:approaching-1",
        "X80201:approaching-3",
    ]
    assert len(await system.deliveries(event_type="deadline.missed")) == len(before)
    sent = await system.all_sent(2, event_type="deadline.approaching")
    assert sorted(d["recipient"] for d in sent) == sorted([H802, STP])

    # The history is kept.
    [change] = [r for r in await system.rows(deadline_changes) if r.obligation_id == ids["H801"]]
    assert change.reclassified == [
        {
            "report_id": late.json()["report_id"],
            "receipt_number": late.json()["receipt_number"],
            "on_time_before": False,
            "on_time": True,
        }
    ]
    assert change.new_due_at > change.old_due_at
    [shown] = detail["deadline_changes"]
    assert shown["new_due_at"] == "2023-06-19T16:59:59.999999Z"
    assert shown["cause"] == "amendment 1 of plan 123/KH-UBND"
    assert shown["reclassified"] == change.reclassified
    # The DOCX and the XLSX count it on time.
    rows = [
        [c.text for c in row.cells]
        for t in Document(io.BytesIO(docx.content)).tables
        for row in t.rows
    ]
    on_time = next(r for r in rows if len(r) > 1 and r[1] == "Số đơn vị nộp đúng hạn")
    late_row = next(r for r in rows if len(r) > 1 and r[1] == "Số đơn vị nộp muộn")
    assert on_time[2] == "1" and late_row[2] == "0"
    status = load_workbook(io.BytesIO(xlsx.content))["Tình hình nộp báo cáo"]
    by_code = {r[0]: r for r in status.iter_rows(values_only=True)}
    assert by_code["H801"][4] == "Đã nộp đúng hạn" and by_code["H801"][6] == "Có"


async def test_closing_the_plan_stops_urging_at_once(start_system: Start) -> None:
    system = await start_system(ict(2023, 6, 12, 9), reminder_offsets_days=[])
    async with system.plans.client() as plans, system.reports.client() as reports:
        plan = await issue_plan(plans, PROVINCE_PLAN)
        await obligations(reports, 3)
        assert len(await system.at(ict(2023, 6, 12, 9))) == 3  # missed-0 of each unit
        closed = await plans.post(f"/plans/{plan['id']}/close", json={"reason": "Kết thúc"})
        assert closed.status_code == 200, closed.text

        async def off_the_clock() -> list[Any]:
            found: list[Any] = (await reports.get("/obligations")).json()
            return found if found and all(o["next_step_at"] is None for o in found) else []

        still = await eventually(off_the_clock)
    assert {o["status"] for o in still} == {"open"}  # owed and missing, as before
    for later in (ict(2023, 6, 14, 8), ict(2023, 6, 19, 8), ict(2023, 11, 21, 8)):
        assert await system.at(later) == []
