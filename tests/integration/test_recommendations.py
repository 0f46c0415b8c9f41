"""Recommendations after supervision end to end, on a real database (SQLite and PostgreSQL)
migrated to head, through the handlers: a Fatherland Front user registers recommendations for
communes; each opens an answer obligation due at the end of the configured answer period;
the deadline clock reminds on working days only; an answer closes the obligation on time (or
late); implementation reports follow until one closes it; the events wait in the outbox on
``qcdc.v1.recommendation.<event>.<path>``; the consolidation, its DOCX and its XLSX count them.

Every expected figure is worked out by hand below."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from docx import Document
from openpyxl import load_workbook  # type: ignore[import-untyped]

from services.reports.adapters.db import obligations
from services.reports.adapters.documents import render_docx, render_xlsx
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.domain.consolidation import ConsolidationKey
from services.reports.domain.deadlines import schedule_fingerprint
from services.reports.domain.model import ObligationStatus, Ownership
from services.reports.domain.recommendations import Recommendation, RecommendationRefused
from services.reports.handlers import recommendations as handlers
from services.reports.handlers.clock import follow_schedule, rules_from, run_clock
from services.reports.handlers.consolidation import current
from services.reports.handlers.obligations import on_plan_issued, on_unit_registered
from services.reports.settings import ReportsSettings
from shared.auth import Forbidden, Principal, Role
from shared.clock import FileClock
from shared.events import Assignee, PlanIssued, UnitRegistered
from shared.runtime import Runtime
from shared.vntime import ICT, last_instant_before
from tests import builders

PLAN_ID = "kh-qcdc-2023"
ANSWER_DAYS = 14
UNITS = {
    "T89": (["T89"], "province", "Ủy ban nhân dân tỉnh An Bình", None),
    "SNV": (["T89", "SNV"], "department", "Sở Nội vụ", "T89"),
    "X001": (["T89", "X001"], "commune", "Ủy ban nhân dân xã Tân An", "SNV"),
    "X002": (["T89", "X002"], "commune", "Ủy ban nhân dân xã Hòa Bắc", "SNV"),
}
ENVELOPE = builders.plan_issued_envelope("recommendation-test")
FRONT = Principal("front", "T89", ("T89",), Role.FRONT)
"""A user of the province's Fatherland Front committee."""


def ict(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ICT).astimezone(UTC)


def commune(code: str) -> Principal:
    return Principal(f"tok-{code}", code, tuple(UNITS[code][0]), Role.SUBMITTER)


def plan_issued() -> PlanIssued:
    communes = [Assignee(code=c, unit_path=UNITS[c][0], kind=UNITS[c][1]) for c in ("X001", "X002")]
    six_month = builders.scheduled_report(due_before=date(2023, 6, 20))
    return builders.plan_issued(communes, [six_month], plan_id=PLAN_ID)


@dataclass
class Harness:
    runtime: Runtime
    settings: ReportsSettings
    clock_file: Path

    def at(self, instant: datetime) -> None:
        FileClock.write(self.clock_file, instant)

    async def register(self, code: str, topic: str, received_on: date) -> Recommendation:
        command = handlers.RegisterRecommendation(
            source_organisation="Ban Thường trực Ủy ban MTTQ Việt Nam tỉnh An Bình",
            topic=topic,
            content=f"Đề nghị {UNITS[code][2]} công khai {topic.lower()}.",
            addressed_unit=code,
            received_on=received_on,
        )
        async with self.runtime.uow() as uow:
            return await handlers.register_recommendation(
                command,
                uow,
                caller=FRONT,
                answer_days=self.settings.recommendation_answer_days,
                rules=rules_from(self.settings),
            )

    async def answer(self, found: Recommendation, text: str) -> None:
        command = handlers.AnswerRecommendation(found.id, text)
        async with self.runtime.uow() as uow:
            await handlers.answer_recommendation(command, uow, caller=commune(found.addressed_unit))

    async def implement(self, found: Recommendation, text: str, completed: bool) -> None:
        command = handlers.ReportImplementation(found.id, text, completed)
        async with self.runtime.uow() as uow:
            await handlers.report_implementation(command, uow, caller=commune(found.addressed_unit))

    async def read(self, found: Recommendation) -> Recommendation:
        async with self.runtime.uow() as uow:
            return await handlers.recommendation(found.id, uow, caller=FRONT)

    async def fired(self, at: datetime, obligation_id: str) -> list[str]:
        run = await run_clock(at, self.runtime.uow, self.settings)
        assert run.failed == []
        return [f.step for f in run.fired if f.obligation_id == obligation_id]

    async def obligation(self, obligation_id: str) -> Any:
        async with self.runtime.uow() as uow:
            query = sa.select(obligations).where(obligations.c.id == obligation_id)
            return (await uow.session.execute(query)).one()

    async def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        table = self.runtime.messaging.outbox
        async with self.runtime.uow() as uow:
            rows = await uow.session.execute(
                sa.select(table.c.subject, table.c.body).order_by(table.c.seq)
            )
            return [(r.subject, json.loads(r.body)) for r in rows]


@pytest.fixture
async def harness(database_urls: dict[str, str], tmp_path: Path) -> AsyncIterator[Harness]:
    clock_file = tmp_path / "clock"
    FileClock.write(clock_file, ict(2023, 1, 16, 9))
    settings = ReportsSettings(
        database_url=database_urls["reports"],
        clock=f"file:{clock_file}",
        recommendation_answer_days=ANSWER_DAYS,
        auth="open",  # for the HTTP test; the handler tests pass their callers explicitly
    )
    async with REPORTS.offline(settings) as runtime:
        found = Harness(runtime, settings, clock_file)
        await follow_schedule(runtime.uow, schedule_fingerprint(rules_from(settings)))
        async with runtime.uow() as uow:
            for code, (path, kind, name, reports_to) in UNITS.items():
                event = UnitRegistered(
                    unit_path=path,
                    code=code,
                    name=name,
                    kind=kind,
                    parent_code="T89" if code != "T89" else None,
                    reports_to_code=reports_to,
                )
                await on_unit_registered(event, ENVELOPE, uow)
            await on_plan_issued(
                plan_issued(), ENVELOPE, uow, ownership=Ownership(), rules=rules_from(settings)
            )
            await uow.commit()
        yield found


def _docx_rows(content: bytes) -> list[list[str]]:
    for table in Document(io.BytesIO(content)).tables:
        header = [cell.text for cell in table.rows[0].cells]
        if "Số kiến nghị nhận được" in header:
            return [[cell.text for cell in row.cells] for row in table.rows]
    raise AssertionError("the DOCX has no table of recommendations")


async def test_a_recommendation_is_answered_on_time_implemented_and_counted(
    harness: Harness,
) -> None:
    # Received Monday 06/03/2023; 14 days: answered by the end of Monday 20/03/2023 (ICT).
    harness.at(ict(2023, 3, 6, 9))
    first = await harness.register("X001", "Thu, chi quỹ đầu tư xây dựng", date(2023, 3, 6))
    assert first.answer_due_at == last_instant_before(date(2023, 3, 21))
    row = await harness.obligation(first.obligation_id)
    assert (row.unit_code, row.receiving_unit, row.due_at) == ("X001", "T89", first.answer_due_at)
    assert row.schedule_key == f"recommendation-{first.id}"

    # Reminders 7, 3 and 1 days before, each on the working day on or before: 13/03 (Mon),
    # then 17/03 (Fri) for both "3" and "1" (19/03 is a Sunday). Never on the weekend.
    fired: dict[date, list[str]] = {}
    for day in range(6, 21):
        steps = await harness.fired(ict(2023, 3, day, 8), first.obligation_id)
        if steps:
            fired[date(2023, 3, day)] = sorted(steps)
    assert fired == {
        date(2023, 3, 13): ["approaching-7"],
        date(2023, 3, 17): ["approaching-1", "approaching-3"],
    }

    # The written answer on the last day, 20/03 at 16:00: on time; the obligation is met
    # and leaves the clock, which fires nothing more for it.
    harness.at(ict(2023, 3, 20, 16))
    await harness.answer(first, "Ủy ban nhân dân xã đã niêm yết công khai từ ngày 20/3/2023.")
    row = await harness.obligation(first.obligation_id)
    assert row.status == ObligationStatus.ACCEPTED.value
    assert row.next_step_at is None
    assert await harness.fired(ict(2023, 3, 27, 8), first.obligation_id) == []

    harness.at(ict(2023, 4, 10, 9))
    await harness.implement(first, "Đã lập bảng công khai quý I.", completed=False)
    harness.at(ict(2023, 5, 5, 9))
    await harness.implement(first, "Đã công khai đầy đủ; hoàn thành.", completed=True)
    read = await harness.read(first)
    assert read.status.value == "closed"
    assert read.answered_on_time is True
    assert [(e.number, e.kind.value, e.completed) for e in read.history] == [
        (1, "answer", False),
        (2, "implementation", False),
        (3, "implementation", True),
    ]
    assert read.closed_at == ict(2023, 5, 5, 9)

    # A second recommendation to X001, answered late; one to X002, never answered (the
    # clock urges); one received after the six-month period, not counted in it.
    harness.at(ict(2023, 3, 7, 9))
    late = await harness.register("X001", "Giải quyết kiến nghị của cử tri", date(2023, 3, 7))
    unanswered = await harness.register("X002", "Lấy ý kiến về quy hoạch", date(2023, 3, 7))
    harness.at(ict(2023, 3, 30, 9))
    await harness.answer(late, "Đã tiếp thu và giải quyết.")
    assert (await harness.read(late)).answered_on_time is False
    assert "missed-0" in await harness.fired(ict(2023, 3, 30, 9), unanswered.obligation_id)
    harness.at(ict(2023, 7, 3, 9))
    await harness.register("X002", "Công khai ngân sách", date(2023, 7, 3))

    # Events wait in the outbox under the addressed commune's path.
    subjects = [s for s, _ in await harness.outbox() if ".recommendation." in s]
    assert subjects == [
        "qcdc.v1.recommendation.registered.T89.X001",
        "qcdc.v1.recommendation.answered.T89.X001",
        "qcdc.v1.recommendation.implementation_reported.T89.X001",
        "qcdc.v1.recommendation.implementation_reported.T89.X001",
        "qcdc.v1.recommendation.registered.T89.X001",
        "qcdc.v1.recommendation.registered.T89.X002",
        "qcdc.v1.recommendation.answered.T89.X001",
        "qcdc.v1.recommendation.registered.T89.X002",
    ]

    # Consolidation of the six-month report to Home Affairs: X001 received 2 (on time 1,
    # late 1, implemented 1), X002 received 1 in the period (unanswered).
    async with harness.runtime.uow() as uow:
        found = await current(ConsolidationKey(PLAN_ID, "six_month", "SNV"), uow)
    r = found.recommendations
    assert [(u.code, u.received, u.answered_on_time, u.answered_late) for u in r.by_unit] == [
        ("X001", 2, 1, 1),
        ("X002", 1, 0, 0),
    ]
    assert [(u.unanswered, u.implemented) for u in r.by_unit] == [(0, 1), (1, 0)]
    assert r.total.model_dump() == {
        "received": 3,
        "answered_on_time": 1,
        "answered_late": 1,
        "unanswered": 1,
        "implemented": 1,
    }

    assert _docx_rows(render_docx(found))[1:] == [
        ["1", "Ủy ban nhân dân xã Tân An", "2", "1", "1", "0", "1"],
        ["2", "Ủy ban nhân dân xã Hòa Bắc", "1", "0", "0", "1", "0"],
        ["", "Tổng cộng", "3", "1", "1", "1", "1"],
    ]
    sheet = load_workbook(io.BytesIO(render_xlsx(found)))["Kiến nghị sau giám sát"]
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
        [
            "Mã đơn vị",
            "Tên đơn vị",
            "Số kiến nghị nhận được",
            "Trả lời đúng hạn",
            "Trả lời quá hạn",
            "Chưa trả lời",
            "Đã thực hiện xong",
        ],
        ["X001", "Ủy ban nhân dân xã Tân An", 2, 1, 1, 0, 1],
        ["X002", "Ủy ban nhân dân xã Hòa Bắc", 1, 0, 0, 1, 0],
        [None, "Tổng cộng", 3, 1, 1, 1, 1],  # an empty cell reads back as None
    ]


async def test_only_the_addressed_unit_answers_and_the_front_registers_only_below_it(
    harness: Harness,
) -> None:
    harness.at(ict(2023, 3, 6, 9))
    found = await harness.register("X001", "Thu, chi quỹ", date(2023, 3, 6))
    async with harness.runtime.uow() as uow:
        with pytest.raises(Forbidden):
            await handlers.answer_recommendation(
                handlers.AnswerRecommendation(found.id, "Trả lời"), uow, caller=commune("X002")
            )
    other_front = Principal("front-2", "T90", ("T90",), Role.FRONT)
    command = handlers.RegisterRecommendation(
        "MTTQ", "Chủ đề", "Nội dung", "X001", date(2023, 3, 6)
    )
    async with harness.runtime.uow() as uow:
        with pytest.raises(Forbidden):
            await handlers.register_recommendation(
                command, uow, caller=other_front, answer_days=30, rules=rules_from(harness.settings)
            )
    # Implementation before the answer is refused with a reason.
    async with harness.runtime.uow() as uow:
        with pytest.raises(RecommendationRefused, match="answer the recommendation"):
            await handlers.report_implementation(
                handlers.ReportImplementation(found.id, "Đang làm"), uow, caller=commune("X001")
            )


async def test_over_http_bad_input_is_explained_and_the_history_is_kept(harness: Harness) -> None:
    harness.at(ict(2023, 3, 6, 9))
    app = REPORTS.app(harness.runtime)
    body = {
        "source_organisation": "Ban Thường trực Ủy ban MTTQ Việt Nam xã Tân An",
        "topic": "Thu, chi quỹ",
        "content": "Đề nghị công khai.",
        "addressed_unit": "X001",
        "received_on": "2023-03-06",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://qcdc") as http:
        unknown = await http.post("/recommendations", json={**body, "addressed_unit": "X999"})
        assert unknown.status_code == 422
        assert unknown.json()["error"]["field"] == "addressed_unit"
        future = await http.post("/recommendations", json={**body, "received_on": "2023-03-07"})
        assert future.status_code == 422
        assert future.json()["error"]["field"] == "received_on"
        empty = await http.post("/recommendations", json={**body, "content": ""})
        assert empty.status_code == 422 and "content" in empty.text
        created = await http.post("/recommendations", json=body)
        assert created.status_code == 201, created.text
        found = created.json()
        assert found["status"] == "awaiting_answer"
        assert found["answer_due_at"] == "2023-03-20T16:59:59.999999Z"
        rid = found["id"]
        # The answer is not a report: POST /reports refuses its obligation, naming the route.
        wrong = await http.post(
            "/reports", json={"obligation_id": found["obligation_id"], "unit_code": "X001"}
        )
        assert wrong.status_code == 422, wrong.text
        assert wrong.json()["error"]["field"] == "obligation_id"
        assert f"POST /recommendations/{rid}/answer" in wrong.json()["error"]["message"]
        early = await http.post(f"/recommendations/{rid}/implementation", json={"content": "x"})
        assert early.status_code == 422
        answered = await http.post(f"/recommendations/{rid}/answer", json={"answer": "Đã làm."})
        assert answered.status_code == 200 and answered.json()["number"] == 1
        again = await http.post(f"/recommendations/{rid}/answer", json={"answer": "Lần nữa."})
        assert again.status_code == 422
        done = {"content": "Hoàn thành.", "completed": True}
        assert (await http.post(f"/recommendations/{rid}/implementation", json=done)).is_success
        read = (await http.get(f"/recommendations/{rid}")).json()
        assert read["status"] == "closed"
        assert [e["kind"] for e in read["history"]] == ["answer", "implementation"]
        assert (await http.get("/recommendations/nope")).status_code == 404
        listed = await http.get("/recommendations", params={"addressed_unit": "X001"})
        assert [r["id"] for r in listed.json()] == [rid]
        assert (await http.get("/recommendations", params={"status": "open"})).status_code == 422
    async with harness.runtime.uow() as uow:
        other = Principal("tok-X002", "X002", ("T89", "X002"), Role.SUBMITTER)
        every = handlers.RecommendationFilter()
        assert await handlers.recommendations_of(every, uow, caller=other) == []
        mine = await handlers.recommendations_of(every, uow, caller=commune("X001"))
        assert [r.id for r in mine] == [rid]
