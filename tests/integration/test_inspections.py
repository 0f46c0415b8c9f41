"""Inspections and surveys end to end, on a real database (SQLite and PostgreSQL) migrated to
head: Home Affairs schedules an inspection of two communes that report to it, records the
findings at each; every required action opens a follow-up obligation of the commune, due at
the end of the action's day, received by Home Affairs; the deadline clock reminds an open
follow-up on working days and urges it when missed; the communes report, Home Affairs closes
(or returns) the actions; the events wait in the outbox on
``qcdc.v1.inspection.<event>.<inspected unit's path>``; the consolidation JSON, its DOCX and
its XLSX count it all. Then over HTTP (bad input refused with the field named) and over the
real bus (notify mails the commune its findings through a real SMTP server).

Every expected figure is worked out by hand below."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from docx import Document
from openpyxl import load_workbook  # type: ignore[import-untyped]

from services.reports.adapters.documents import render_docx, render_xlsx
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.domain.consolidation import ConsolidationKey
from services.reports.domain.inspections import (
    Action,
    FindingInput,
    Inspection,
    InspectionRefused,
    RequiredAction,
)
from services.reports.domain.model import ReportRefused
from services.reports.handlers import inspections as handlers
from services.reports.handlers.clock import rules_from
from services.reports.handlers.consolidation import current
from services.reports.handlers.intake import SubmitReport, submit_report
from shared.auth import Forbidden, Principal, Role
from shared.events import InspectionKind, ReportKind
from shared.runtime import Runtime
from shared.vntime import last_instant_before
from tests.integration.test_plan_lifecycle import UNITS as REGISTRY
from tests.integration.test_recommendations import PLAN_ID, Harness, commune, ict
from tests.integration.test_recommendations import harness as harness  # the fixture
from tests.integration.test_recommendations_bus import System
from tests.integration.test_recommendations_bus import system as system  # the fixture
from tests.support import BusSpy, created_once_known

TOPIC = "Kiểm tra việc thực hiện Quy chế dân chủ ở cơ sở quý I năm 2023"
FIGURES = (
    "scheduled",
    "done",
    "actions_required",
    "actions_closed_on_time",
    "actions_closed_late",
    "actions_open",
)
HOME_AFFAIRS = Principal("tok-SNV", "SNV", ("T89", "SNV"), Role.REVIEWER)
"""A reviewer of Home Affairs, which the communes report to: it inspects them."""


def finding(content: str, *actions: tuple[str, date]) -> FindingInput:
    return FindingInput(content, tuple(RequiredAction(text, due) for text, due in actions))


@dataclass
class Inspections:
    """The recommendations' harness (units T89, SNV, X001, X002; the six-month report to
    Home Affairs; a file clock), driving inspections."""

    base: Harness

    @property
    def runtime(self) -> Runtime:
        return self.base.runtime

    def at(self, instant: datetime) -> None:
        self.base.at(instant)

    async def schedule(
        self,
        units: tuple[str, ...],
        start: date,
        end: date,
        kind: InspectionKind = InspectionKind.INSPECTION,
        caller: Principal = HOME_AFFAIRS,
    ) -> Inspection:
        command = handlers.ScheduleInspection(kind, TOPIC, units, start, end, plan_id=PLAN_ID)
        async with self.runtime.uow() as uow:
            return await handlers.schedule_inspection(command, uow, caller=caller)

    async def findings(
        self, found: Inspection, code: str, conducted_on: date, *given: FindingInput
    ) -> list[Action]:
        command = handlers.RecordFindings(found.id, code, conducted_on, "Kết luận.", given)
        async with self.runtime.uow() as uow:
            return await handlers.record_findings(
                command, uow, caller=HOME_AFFAIRS, rules=rules_from(self.base.settings)
            )

    async def report(self, action: Action, text: str, done: bool) -> None:
        command = handlers.ReportFollowUp(action.id, text, done)
        async with self.runtime.uow() as uow:
            await handlers.report_follow_up(command, uow, caller=commune(action.unit_code))

    async def close(self, action: Action) -> None:
        command = handlers.DecideAction(action.id, "Đạt yêu cầu.")
        async with self.runtime.uow() as uow:
            await handlers.close_action(command, uow, caller=HOME_AFFAIRS)

    async def send_back(self, action: Action, reason: str) -> None:
        command = handlers.DecideAction(action.id, reason)
        async with self.runtime.uow() as uow:
            await handlers.return_action(command, uow, caller=HOME_AFFAIRS)

    async def read(self, action: Action) -> Action:
        async with self.runtime.uow() as uow:
            return await handlers.action(action.id, uow, caller=HOME_AFFAIRS)

    async def fired(self, at: datetime, obligation_id: str) -> list[str]:
        return await self.base.fired(at, obligation_id)

    async def obligation(self, obligation_id: str) -> Any:
        return await self.base.obligation(obligation_id)

    async def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        return await self.base.outbox()


@pytest.fixture
def inspections(harness: Harness) -> Inspections:
    return Inspections(harness)


def _docx_rows(content: bytes) -> list[list[str]]:
    for table in Document(io.BytesIO(content)).tables:
        header = [cell.text for cell in table.rows[0].cells]
        if "Số việc phải khắc phục" in header:
            return [[cell.text for cell in row.cells] for row in table.rows]
    raise AssertionError("the DOCX has no table of inspections")


async def test_findings_open_follow_ups_whose_completion_the_consolidation_counts(
    inspections: Inspections,
) -> None:
    # Home Affairs schedules an inspection of both communes, 06–17/03/2023; and a survey of
    # Hòa Bắc in May that is never carried out; and one in July, after the six-month period.
    inspections.at(ict(2023, 3, 1, 9))
    inspection = await inspections.schedule(("X001", "X002"), date(2023, 3, 6), date(2023, 3, 17))
    survey = InspectionKind.SURVEY
    await inspections.schedule(("X002",), date(2023, 5, 2), date(2023, 5, 5), survey)
    await inspections.schedule(("X001",), date(2023, 7, 3), date(2023, 7, 7), survey)

    # Tân An: two findings, one action each (due 31/03 and 14/04).
    inspections.at(ict(2023, 3, 8, 15))
    first, second = await inspections.findings(
        inspection,
        "X001",
        date(2023, 3, 8),
        finding(
            "Chưa niêm yết công khai dự toán ngân sách xã.",
            ("Niêm yết công khai dự toán tại các thôn.", date(2023, 3, 31)),
        ),
        finding(
            "Sổ tiếp công dân ghi chưa đầy đủ.",
            ("Hoàn thiện sổ tiếp công dân.", date(2023, 4, 14)),
        ),
    )
    row = await inspections.obligation(first.obligation_id)
    assert (row.unit_code, row.receiving_unit, row.status) == ("X001", "SNV", "open")
    assert row.due_at == last_instant_before(date(2023, 4, 1))  # the end of 31/03, ICT
    assert row.schedule_key == f"inspection-{first.id}"
    assert row.report_kind == ReportKind.AD_HOC.value and row.plan_id == ""
    assert (await inspections.obligation(second.obligation_id)).due_at == last_instant_before(
        date(2023, 4, 15)
    )

    # Hòa Bắc: one finding, its action due Friday 24/03/2023, never reported on.
    inspections.at(ict(2023, 3, 15, 9))
    (ignored,) = await inspections.findings(
        inspection,
        "X002",
        date(2023, 3, 15),
        finding(
            "Chưa lấy ý kiến Nhân dân về quy hoạch.", ("Tổ chức lấy ý kiến.", date(2023, 3, 24))
        ),
    )
    # The clock reminds it 7, 3 and 1 days before, each on the working day on or before:
    # 17/03 (Fri), 21/03 (Tue), 23/03 (Thu); never on the weekend; then it is missed.
    fired: dict[date, list[str]] = {}
    for day in range(16, 25):
        steps = await inspections.fired(ict(2023, 3, day, 8), ignored.obligation_id)
        if steps:
            fired[date(2023, 3, day)] = steps
    assert fired == {
        date(2023, 3, 17): ["approaching-7"],
        date(2023, 3, 21): ["approaching-3"],
        date(2023, 3, 23): ["approaching-1"],
    }
    assert "missed-0" in await inspections.fired(ict(2023, 3, 27, 8), ignored.obligation_id)

    # The first action: reported done on time (30/03), closed after its deadline (03/04):
    # closed on time, since the report that was accepted came in time.
    inspections.at(ict(2023, 3, 30, 10))
    await inspections.report(first, "Đã niêm yết tại 8/8 thôn.", done=True)
    row = await inspections.obligation(first.obligation_id)
    assert (row.status, row.next_step_at) == ("submitted", None)  # off the clock
    assert await inspections.fired(ict(2023, 3, 31, 8), first.obligation_id) == []
    inspections.at(ict(2023, 4, 3, 9))
    await inspections.close(first)
    assert (await inspections.obligation(first.obligation_id)).status == "accepted"

    # The second: a progress report, then done too late (20/04), returned, done again,
    # closed: closed late. The return puts its obligation back on the clock.
    inspections.at(ict(2023, 4, 10, 9))
    await inspections.report(second, "Đang hoàn thiện sổ.", done=False)
    assert (await inspections.obligation(second.obligation_id)).status == "open"
    inspections.at(ict(2023, 4, 20, 9))
    await inspections.report(second, "Đã hoàn thiện sổ.", done=True)
    inspections.at(ict(2023, 4, 21, 9))
    with pytest.raises(InspectionRefused, match="reported done"):
        await inspections.report(second, "Thêm nữa.", done=True)
    await inspections.send_back(second, "Sổ chưa có chữ ký của người tiếp.")
    row = await inspections.obligation(second.obligation_id)
    assert row.status == "returned" and row.next_step_at is not None
    inspections.at(ict(2023, 4, 25, 9))
    await inspections.report(second, "Đã bổ sung chữ ký.", done=True)
    inspections.at(ict(2023, 4, 26, 9))
    await inspections.close(second)
    read = await inspections.read(second)
    assert (read.status.value, read.closed_on_time) == ("closed", False)
    assert [(s.number, s.kind.value, s.done, s.by_unit) for s in read.history] == [
        (1, "report", False, "X001"),
        (2, "report", True, "X001"),
        (3, "returned", False, "SNV"),
        (4, "report", True, "X001"),
        (5, "closed", True, "SNV"),
    ]
    with pytest.raises(InspectionRefused, match="closed"):
        await inspections.report(second, "Lại.", done=False)

    # The events wait in the outbox under each inspected commune's path.
    subjects = [s for s, _ in await inspections.outbox() if ".inspection." in s]
    assert subjects == [
        "qcdc.v1.inspection.scheduled.T89.X001",
        "qcdc.v1.inspection.scheduled.T89.X002",
        "qcdc.v1.inspection.scheduled.T89.X002",
        "qcdc.v1.inspection.scheduled.T89.X001",
        "qcdc.v1.inspection.findings_recorded.T89.X001",
        "qcdc.v1.inspection.findings_recorded.T89.X002",
        "qcdc.v1.inspection.action_reported.T89.X001",
        "qcdc.v1.inspection.action_closed.T89.X001",
        "qcdc.v1.inspection.action_reported.T89.X001",
        "qcdc.v1.inspection.action_reported.T89.X001",
        "qcdc.v1.inspection.action_returned.T89.X001",
        "qcdc.v1.inspection.action_reported.T89.X001",
        "qcdc.v1.inspection.action_closed.T89.X001",
    ]
    recorded = next(b for s, b in await inspections.outbox() if "findings_recorded.T89.X001" in s)
    assert [len(f["actions"]) for f in recorded["findings"]] == [1, 1]
    assert recorded["findings"][0]["actions"][0]["obligation_id"] == first.obligation_id

    # The six-month consolidation to Home Affairs: Tân An inspected once (the July survey
    # starts after the period), done, 2 actions: 1 closed on time, 1 closed late; Hòa Bắc
    # scheduled twice, done once, 1 action open.
    inspections.at(ict(2023, 5, 10, 9))
    async with inspections.runtime.uow() as uow:
        found = await current(ConsolidationKey(PLAN_ID, "six_month", "SNV"), uow)
    counted = found.to_json()["inspections"]
    assert [[u["code"], *[u[k] for k in FIGURES]] for u in counted["by_unit"]] == [
        ["X001", 1, 1, 2, 1, 1, 0],
        ["X002", 2, 1, 1, 0, 0, 1],
    ]
    assert counted["total"] == dict(zip(FIGURES, [3, 2, 3, 1, 1, 1], strict=True))

    assert _docx_rows(render_docx(found)) == [
        [
            "TT",
            "Đơn vị",
            "Lượt kiểm tra, khảo sát theo kế hoạch",
            "Đã thực hiện",
            "Số việc phải khắc phục",
            "Khắc phục xong đúng hạn",
            "Khắc phục xong quá hạn",
            "Chưa khắc phục xong",
        ],
        ["1", "Ủy ban nhân dân xã Tân An", "1", "1", "2", "1", "1", "0"],
        ["2", "Ủy ban nhân dân xã Hòa Bắc", "2", "1", "1", "0", "0", "1"],
        ["", "Tổng cộng", "3", "2", "3", "1", "1", "1"],
    ]
    text = "\n".join(p.text for p in Document(io.BytesIO(render_docx(found))).paragraphs)
    assert "V. CÔNG TÁC KIỂM TRA, KHẢO SÁT VÀ VIỆC KHẮC PHỤC SAU KIỂM TRA" in text
    sheet = load_workbook(io.BytesIO(render_xlsx(found)))["Kiểm tra, khảo sát"]
    assert [list(row) for row in sheet.iter_rows(values_only=True)][1:] == [
        ["X001", "Ủy ban nhân dân xã Tân An", 1, 1, 2, 1, 1, 0],
        ["X002", "Ủy ban nhân dân xã Hòa Bắc", 2, 1, 1, 0, 0, 1],
        [None, "Tổng cộng", 3, 2, 3, 1, 1, 1],  # an empty cell reads back as None
    ]


async def test_only_the_inspecting_unit_decides_and_only_over_units_it_has_authority_over(
    inspections: Inspections,
) -> None:
    inspections.at(ict(2023, 3, 1, 9))
    # A commune neither has X002 below it nor receives its reports.
    other = Principal("rev-X001", "X001", ("T89", "X001"), Role.REVIEWER)
    with pytest.raises(InspectionRefused, match="cannot inspect it"):
        await inspections.schedule(("X002",), date(2023, 3, 6), date(2023, 3, 10), caller=other)
    # A submitter does not schedule inspections, even of its own unit's subtree.
    with pytest.raises(Forbidden):
        await inspections.schedule(
            ("X001",), date(2023, 3, 6), date(2023, 3, 10), caller=commune("X001")
        )
    inspection = await inspections.schedule(("X001",), date(2023, 3, 6), date(2023, 3, 10))
    inspections.at(ict(2023, 3, 8, 9))
    (action,) = await inspections.findings(
        inspection, "X001", date(2023, 3, 8), finding("Tồn tại.", ("Khắc phục.", date(2023, 3, 31)))
    )
    # Another commune may not report on it; the commune may not close it.
    async with inspections.runtime.uow() as uow:
        with pytest.raises(Forbidden):
            await handlers.report_follow_up(
                handlers.ReportFollowUp(action.id, "x", True), uow, caller=commune("X002")
            )
    async with inspections.runtime.uow() as uow:
        with pytest.raises(Forbidden):
            await handlers.close_action(
                handlers.DecideAction(action.id, ""), uow, caller=commune("X001")
            )
    # Nothing reported done: nothing to close.
    with pytest.raises(InspectionRefused, match="only an action reported done"):
        await inspections.close(action)
    # The follow-up is not met by a report submitted to its obligation.
    submission = SubmitReport(action.obligation_id, "X001", submitted_by="Văn phòng")
    async with inspections.runtime.uow() as uow:
        with pytest.raises(ReportRefused, match="/follow-ups"):
            await submit_report(submission, uow, caller=commune("X001"))


async def test_over_http_bad_input_is_explained_and_the_follow_up_is_kept(
    inspections: Inspections,
) -> None:
    inspections.at(ict(2023, 3, 6, 9))
    app = REPORTS.app(inspections.runtime)
    body = {
        "kind": "inspection",
        "topic": TOPIC,
        "inspecting_unit": "SNV",
        "inspected_units": ["X001", "X002"],
        "planned_start": "2023-03-06",
        "planned_end": "2023-03-17",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://qcdc") as http:
        unknown = await http.post("/inspections", json={**body, "inspected_units": ["X999"]})
        assert unknown.status_code == 422
        assert unknown.json()["error"]["field"] == "inspected_units"
        backwards = await http.post("/inspections", json={**body, "planned_end": "2023-03-01"})
        assert backwards.status_code == 422
        assert backwards.json()["error"]["field"] == "planned_end"
        twice = await http.post("/inspections", json={**body, "inspected_units": ["X001"] * 2})
        assert twice.status_code == 422 and "twice" in twice.text
        kind = await http.post("/inspections", json={**body, "kind": "audit"})
        assert kind.status_code == 422 and "kind" in kind.text
        created = await http.post("/inspections", json=body)
        assert created.status_code == 201, created.text
        inspection_id = created.json()["id"]
        assert [u["done"] for u in created.json()["units"]] == [False, False]

        findings = {
            "inspected_unit": "X001",
            "conducted_on": "2023-03-06",
            "findings": [
                {
                    "content": "Tồn tại 1.",
                    "actions": [{"content": "Việc 1.", "due_on": "2023-03-31"}],
                },
                {"content": "Tồn tại 2."},
            ],
        }
        url = f"/inspections/{inspection_id}/findings"
        past = {"content": "Việc.", "due_on": "2023-03-05"}
        late = await http.post(
            url, json={**findings, "findings": [{"content": "x", "actions": [past]}]}
        )
        assert late.status_code == 422
        assert late.json()["error"]["field"] == "findings[0].actions[0].due_on"
        future = await http.post(url, json={**findings, "conducted_on": "2023-03-07"})
        assert future.status_code == 422 and future.json()["error"]["field"] == "conducted_on"
        outside = await http.post(url, json={**findings, "inspected_unit": "SNV"})
        assert outside.status_code == 422
        assert outside.json()["error"]["field"] == "inspected_unit"
        recorded = await http.post(url, json=findings)
        assert recorded.status_code == 201, recorded.text
        unit = recorded.json()
        assert unit["done"] is True and [len(f["actions"]) for f in unit["findings"]] == [1, 0]
        action = unit["findings"][0]["actions"][0]
        assert action["due_at"] == "2023-03-31T16:59:59.999999Z"
        again = await http.post(url, json=findings)
        assert again.status_code == 422 and "not recorded twice" in again.text

        action_url = f"/inspection-actions/{action['id']}"
        early = await http.post(f"{action_url}/close", json={})
        assert early.status_code == 422
        empty = await http.post(f"{action_url}/follow-ups", json={"content": ""})
        assert empty.status_code == 422
        done = {"content": "Đã khắc phục.", "done": True}
        assert (await http.post(f"{action_url}/follow-ups", json=done)).is_success
        no_reason = await http.post(f"{action_url}/return", json={"reason": ""})
        assert no_reason.status_code == 422
        closed = await http.post(f"{action_url}/close", json={"note": "Đạt."})
        assert closed.status_code == 200 and closed.json()["kind"] == "closed"
        read = (await http.get(action_url)).json()
        assert read["status"] == "closed" and read["closed_on_time"] is True
        assert [s["kind"] for s in read["history"]] == ["report", "closed"]
        assert (await http.get("/inspection-actions/nope")).status_code == 404
        assert (await http.get("/inspections/nope")).status_code == 404
        listed = await http.get("/inspections", params={"inspected_unit": "X002"})
        assert [i["id"] for i in listed.json()] == [inspection_id]
        todo = await http.get(
            "/inspection-actions", params={"inspected_unit": "X001", "status": "closed"}
        )
        assert [a["id"] for a in todo.json()] == [action["id"]]
        assert (await http.get("/inspection-actions", params={"status": "open"})).json() == []
        assert (await http.get("/inspection-actions", params={"status": "done"})).status_code == 422
    async with inspections.runtime.uow() as uow:
        # Read scopes: the inspected commune sees it, a stranger does not.
        every = handlers.InspectionFilter()
        assert [
            i.id for i in await handlers.inspections_of(every, uow, caller=commune("X001"))
        ] == [inspection_id]
        stranger = Principal("tok-T90", "T90", ("T90",), Role.SUBMITTER)
        assert await handlers.inspections_of(every, uow, caller=stranger) == []


COMMUNE = "X80101"
FOCAL = "vanphong@tanan.gov.vn"
DISTRICT_FOCAL = "vanphong@tanphu.gov.vn"


async def test_findings_travel_the_bus_and_reach_the_commune_and_its_report_the_district(
    system: System, bus_spy: BusSpy
) -> None:
    emails = {COMMUNE: FOCAL, "H801": DISTRICT_FOCAL}
    async with system.plans.client() as plans:
        for unit in REGISTRY:
            contacts = {"focal_email": emails[unit["code"]]} if unit["code"] in emails else {}
            response = await plans.post("/units", json={**unit, "contacts": contacts})
            assert response.status_code == 201, response.text
    body = {
        "kind": "inspection",
        "topic": TOPIC,
        "inspecting_unit": "H801",
        "inspected_units": [COMMUNE],
        "planned_start": "2023-03-06",
        "planned_end": "2023-03-10",
    }
    async with system.reports.client() as reports:
        # The reports service knows the units once their UnitRegistered have arrived.
        found = await created_once_known(reports, "/inspections", body)
        findings = {
            "inspected_unit": COMMUNE,
            "conducted_on": "2023-03-06",
            "findings": [
                {
                    "content": "Chưa niêm yết công khai dự toán ngân sách xã.",
                    "actions": [{"content": "Niêm yết tại các ấp.", "due_on": "2023-03-31"}],
                }
            ],
        }
        response = await reports.post(f"/inspections/{found['id']}/findings", json=findings)
        assert response.status_code == 201, response.text
        action = response.json()["findings"][0]["actions"][0]
        done = {"content": "Đã niêm yết tại 5/5 ấp.", "done": True}
        response = await reports.post(f"/inspection-actions/{action['id']}/follow-ups", json=done)
        assert response.status_code == 200, response.text

    (seen,) = await bus_spy.wait_for_type("qcdc.inspection.findings_recorded.v1")
    assert seen.subject == f"qcdc.v1.inspection.findings_recorded.T89.H801.{COMMUNE}"
    assert seen.headers["ce-source"] == "/qcdc/reports"
    assert seen.headers["Nats-Msg-Id"] == seen.headers["ce-id"]
    event = json.loads(seen.data)
    assert event["findings"][0]["actions"][0]["obligation_id"] == action["obligation_id"]

    (notice,) = await system.inbox.wait_for_subject("[Lịch kiểm tra]")
    assert FOCAL in notice.recipients and "06/03/2023" in notice.subject
    (mail,) = await system.inbox.wait_for_subject("[Kết luận kiểm tra]")
    assert FOCAL in mail.recipients
    assert "1 việc phải khắc phục" in mail.subject
    assert "hạn báo cáo kết quả: hết ngày 31/03/2023" in mail.text
    (report,) = await system.inbox.wait_for_subject("[Báo cáo khắc phục]")
    assert DISTRICT_FOCAL in report.recipients and "đã khắc phục xong" in report.subject
