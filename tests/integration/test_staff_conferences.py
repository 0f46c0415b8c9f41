"""Staff conferences end to end, on SQLite and PostgreSQL with the real bus: the plans and
reports services in-process on a real nats-server. A plan that asks for the annual staff
conference (default deadline: before 1 April of the plan year) opens one obligation per
department and public service unit it binds, none for communes; a department records its
conference over HTTP, with its minutes; the other department records nothing. The reports
API that feeds the portal's board, the consolidation JSON, its DOCX and its XLSX show the
first as held on time and the second as missing (overdue once the deadline passed), and the
event goes out on ``qcdc.v1.conference.recorded.<path>``."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from docx import Document
from openpyxl import load_workbook  # type: ignore[import-untyped]

from services.natsd import NatsServer, free_port
from services.plans.bootstrap import SERVICE as PLANS
from services.portal.settings import PortalSettings
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.handlers.clock import run_clock
from services.reports.settings import ReportsSettings
from shared.clock import ManualClock
from shared.vntime import ICT
from tests.bodies import plan_body, province_units, schedule_entry, unit_below
from tests.stack import register_units_and_issue_plan, serving_portal, start_services, stop_services
from tests.support import (
    BusSpy,
    InProcessService,
    eventually,
)

UNITS: list[dict[str, Any]] = [
    *province_units(),
    unit_below("STP", "Sở Tư pháp", "department", "SNV"),
    unit_below("BVT", "Bệnh viện Đa khoa tỉnh", "public_service_unit", "SNV"),
    unit_below("X001", "Ủy ban nhân dân xã Tân An", "commune", "SNV"),
]
PLAN: dict[str, Any] = plan_body(
    issuing_unit="T89",
    assignees={"kinds": ["department", "public_service_unit", "commune"]},
    schedule=[schedule_entry(title="Báo cáo kết quả thực hiện 06 tháng")],
    staff_conference={"required": True},
)
RECORDED = "qcdc.conference.recorded.v1"
PDF = b"%PDF-1.4\n% bien ban hoi nghi\n"


def ict(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ICT).astimezone(UTC)


@dataclass
class System:
    plans: InProcessService
    reports: InProcessService
    clock: ManualClock


@pytest.fixture
async def system(nats_server: NatsServer, database_urls: dict[str, str]) -> AsyncIterator[System]:
    clock = ManualClock(ict(2023, 1, 16))
    running = await start_services(
        (PLANS, REPORTS),
        database_urls,
        clock,
        nats_url=nats_server.url,
        clock_interval_seconds=3600,
    )
    yield System(running["plans"], running["reports"], clock)
    await stop_services(running)


@contextlib.asynccontextmanager
async def portal_server(system: System, root: Path) -> AsyncIterator[str]:
    """The portal on real HTTP in front of the services; its base URL."""
    port = free_port()
    settings = PortalSettings(
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        plans_url=system.plans.url,
        reports_url=system.reports.url,
        data_dir=str(root),
        portal_secret="a secret for the staff conference tests only",
        public_token="open",
    )
    async with serving_portal(settings) as url:
        yield url


@contextlib.asynccontextmanager
async def signed_in(url: str, unit: str, role: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in to the portal (QCDC_AUTH=open: the sign-in page asks which unit
    and role to work as)."""
    async with httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/dang-nhap")
        form = {"csrf": _csrf(page.text), "token": "", "unit_code": unit, "role": role}
        signed = await client.post("/dang-nhap", data=form)
        assert signed.status_code in (200, 303), signed.text
        yield client


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, html
    return match.group(1)


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert match is not None, f"no row {row_id}"
    return match.group(1)


def _docx_conference_rows(content: bytes) -> list[list[str]]:
    for table in Document(io.BytesIO(content)).tables:
        header = [cell.text for cell in table.rows[0].cells]
        if "Ngày tổ chức" in header:
            return [[cell.text for cell in row.cells] for row in table.rows]
    raise AssertionError("the DOCX has no table of staff conferences")


async def test_a_unit_without_its_conference_shows_as_missing_and_one_with_it_as_held(
    system: System, bus_spy: BusSpy, tmp_path: Path
) -> None:
    async with system.plans.client() as plans:
        for unit in UNITS:
            response = await plans.post("/units", json=unit)
            assert response.status_code == 201, response.text
        draft = await plans.post("/plans", json=PLAN)
        assert draft.status_code == 201, draft.text
        plan_id = draft.json()["id"]
        assert draft.json()["staff_conference"]["unit_kinds"] == [
            "department",
            "public_service_unit",
        ]
        issued = await plans.post(f"/plans/{plan_id}/issue")
        assert issued.status_code == 200, issued.text

    async with system.reports.client() as reports:

        async def owed() -> list[dict[str, Any]]:
            found = await reports.get("/conferences", params={"plan_id": plan_id})
            listed: list[dict[str, Any]] = found.json() if found.status_code == 200 else []
            return listed if len(listed) == 3 else []

        # Departments and the public service unit owe one; the commune does not. Due by the
        # end of 31/03/2023 (ICT), followed up by Home Affairs (the plan's receiving unit).
        states = {s["unit_code"]: s for s in await eventually(owed)}
        assert set(states) == {"SNV", "STP", "BVT"}
        assert {s["due_at"] for s in states.values()} == {"2023-03-31T16:59:59.999999Z"}
        assert {s["receiving_unit"] for s in states.values()} == {"SNV"}
        assert {s["state"] for s in states.values()} == {"missing"}

        # A report cannot stand in for the conference.
        wrong = await reports.post(
            "/reports",
            json={"obligation_id": states["STP"]["obligation_id"], "unit_code": "STP"},
        )
        assert wrong.status_code == 422, wrong.text
        assert "POST /conferences" in wrong.json()["error"]["message"]

        system.clock.set(ict(2023, 2, 10))
        body = {"plan_id": plan_id, "unit_code": "STP", "held_on": "2023-02-08"}
        future = await reports.post("/conferences", json={**body, "held_on": "2023-02-11"})
        assert future.status_code == 422 and future.json()["error"]["field"] == "held_on"
        before = await reports.post("/conferences", json={**body, "held_on": "2022-12-28"})
        assert before.status_code == 422 and "previous year" in before.text
        nobody = await reports.post("/conferences", json={**body, "participants": 0})
        assert nobody.status_code == 422
        commune = await reports.post("/conferences", json={**body, "unit_code": "X001"})
        assert commune.status_code == 404
        recorded = await reports.post("/conferences", json={**body, "participants": 42})
        assert recorded.status_code == 201, recorded.text
        conference = recorded.json()
        assert (conference["on_time"], conference["participants"]) == (True, 42)
        again = await reports.post("/conferences", json=body)
        assert again.status_code == 409
        minutes = await reports.put(
            f"/conferences/{conference['id']}/minutes/biên bản hội nghị.pdf",
            content=PDF,
            headers={"Content-Type": "application/pdf"},
        )
        assert minutes.status_code == 201, minutes.text
        fake = await reports.put(
            f"/conferences/{conference['id']}/minutes/x.pdf",
            content=b"not a pdf",
            headers={"Content-Type": "application/pdf"},
        )
        assert fake.status_code == 422
        download = await reports.get(
            f"/conferences/{conference['id']}/minutes/{minutes.json()['id']}"
        )
        assert download.content == PDF

        # After the deadline: STP held on time; SNV and BVT missing and overdue.
        system.clock.set(ict(2023, 4, 3))
        states = {
            s["unit_code"]: s
            for s in (await reports.get("/conferences", params={"plan_id": plan_id})).json()
        }
        assert states["STP"]["state"] == "held_on_time"
        assert states["STP"]["conference"]["minutes"][0]["filename"] == "biên bản hội nghị.pdf"
        assert [(states[c]["state"], states[c]["overdue"]) for c in ("SNV", "BVT")] == [
            ("missing", True),
            ("missing", True),
        ]

        key = {"plan_id": plan_id, "schedule_key": "six_month", "receiving_unit": "SNV"}
        found = (await reports.get("/consolidations", params=key)).json()
        summary = found["conferences"]
        assert summary["total"] == {
            "expected": 3,
            "held": 1,
            "held_on_time": 1,
            "held_late": 0,
            "missing": 2,
            "overdue": 2,
        }
        assert [(u["code"], u["state"]) for u in summary["by_unit"]] == [
            ("BVT", "missing"),
            ("SNV", "missing"),
            ("STP", "held_on_time"),
        ]
        docx = await reports.get("/consolidations", params={**key, "format": "docx"})
        assert docx.status_code == 200, docx.text
        assert _docx_conference_rows(docx.content) == [
            ["TT", "Đơn vị", "Tình trạng", "Ngày tổ chức", "Số người tham dự", "Biên bản"],
            ["1", "Bệnh viện Đa khoa tỉnh", "Chưa tổ chức (đã quá hạn)", "", "", "Chưa có"],
            ["2", "Sở Nội vụ", "Chưa tổ chức (đã quá hạn)", "", "", "Chưa có"],
            ["3", "Sở Tư pháp", "Đã tổ chức đúng hạn", "08/02/2023", "42", "Có"],
        ]
        xlsx = await reports.get("/consolidations", params={**key, "format": "xlsx"})
        sheet = load_workbook(io.BytesIO(xlsx.content))["Hội nghị CBCCVC"]
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
        assert rows[1:4] == [
            ["BVT", "Bệnh viện Đa khoa tỉnh", "Chưa tổ chức (đã quá hạn)", None, None, 0,
             "31/03/2023 23:59"],
            ["SNV", "Sở Nội vụ", "Chưa tổ chức (đã quá hạn)", None, None, 0, "31/03/2023 23:59"],
            ["STP", "Sở Tư pháp", "Đã tổ chức đúng hạn", "08/02/2023", 42, 1, "31/03/2023 23:59"],
        ]  # fmt: skip
        assert [r[1:3] for r in rows[4:]] == [
            ["Tổng số đơn vị phải tổ chức", 3],
            ["Đã tổ chức đúng hạn", 1],
            ["Đã tổ chức quá hạn", 0],
            ["Chưa tổ chức", 2],
        ]
        direct = await reports.get(
            "/consolidations", params={**key, "schedule_key": "staff_conference"}
        )
        assert direct.status_code == 404

    # The portal, on real HTTP: the board of the six-month report to Home Affairs, the
    # department's page, and the public page of the plan (no sign-in, no personal data).
    async with system.reports.client() as reports:
        body = {
            "source_organisation": "Ban Thường trực Ủy ban MTTQ Việt Nam tỉnh An Bình",
            "topic": "Công khai tài chính của Sở",
            "content": "Đề nghị Sở công khai dự toán.",
            "addressed_unit": "STP",
            "received_on": "2023-03-01",
        }
        registered = await reports.post("/recommendations", json=body)
        assert registered.status_code == 201, registered.text
        secret_answer = "Sở đã niêm yết dự toán tại trụ sở; người liên hệ: ông Nguyễn Văn A."
        answer = {"answer": secret_answer}
        answered = await reports.post(
            f"/recommendations/{registered.json()['id']}/answer", json=answer
        )
        assert answered.status_code == 200, answered.text
    async with (
        portal_server(system, tmp_path) as url,
        signed_in(url, "SNV", "reviewer") as portal,
    ):
        board = await portal.get("/theo-doi", params=key)
        assert board.status_code == 200, board.text
        assert "Chưa tổ chức – đã quá hạn" in _row(board.text, "conference-SNV")
        assert "Chưa tổ chức – đã quá hạn" in _row(board.text, "conference-BVT")
        assert "Đã tổ chức đúng hạn (ngày 08/02/2023)" in _row(board.text, "conference-STP")
        unit_page = await portal.get("/don-vi/BVT")
        assert unit_page.status_code == 200, unit_page.text
        assert "Chưa tổ chức" in _row(unit_page.text, "conference-BVT")
        public = await portal.get(f"/cong-khai/ke-hoach/{plan_id}")
        assert public.status_code == 200, public.text
        assert "1/3 cơ quan, đơn vị đã tổ chức" in public.text
        assert "Đã tổ chức đúng hạn" in _row(public.text, "pub-conference-STP")
        assert "Chưa tổ chức" in _row(public.text, "pub-conference-BVT")
        assert "@" not in public.text
        front_page = await portal.get("/cong-khai")
        assert "Công khai tài chính của Sở" in front_page.text
        assert "Nguyễn Văn A" not in front_page.text and secret_answer not in front_page.text
        # On the board: Sở Tư pháp received one recommendation, answered late (received
        # 01/03, answered 03/04: past the default answer period).
        assert re.search(
            r"<th scope=\"row\">Sở Tư pháp</th><td>1</td><td>0</td><td>1</td><td>0</td><td>0</td>",
            (await portal.get("/theo-doi", params=key)).text,
        )

        # The public service unit records its conference through the portal's form, late.
        async with signed_in(url, "BVT", "submitter") as bvt:
            path = f"/hoi-nghi/{states['BVT']['obligation_id']}"
            page = await bvt.get(path)
            assert page.status_code == 200 and "Chưa tổ chức – đã quá hạn" in page.text
            form = {"csrf": _csrf(page.text), "held_on": "2023-04-05", "participants": ""}
            refused = await bvt.post(path, data=form)
            assert refused.status_code == 422
            assert "Ngày tổ chức không hợp lệ" in refused.text
            form["held_on"] = "2023-04-02"
            files = {"minutes": ("biên bản.pdf", PDF, "application/pdf")}
            done = await bvt.post(path, data=form, files=files, follow_redirects=True)
            assert done.status_code == 200, done.text
            assert "Đã tổ chức ngày 02/04/2023 (quá hạn)" in done.text
            assert "Đã đính kèm biên bản biên bản.pdf" in done.text
        board = await portal.get("/theo-doi", params=key)
        assert "Đã tổ chức quá hạn (ngày 02/04/2023)" in _row(board.text, "conference-BVT")

    seen, late = await bus_spy.wait_for_type(RECORDED, count=2)
    assert [seen.subject, late.subject] == [
        "qcdc.v1.conference.recorded.T89.STP",
        "qcdc.v1.conference.recorded.T89.BVT",
    ]
    assert json.loads(late.data)["on_time"] is False
    assert seen.headers["Nats-Msg-Id"] == seen.headers["ce-id"]
    event = json.loads(seen.data)
    assert (event["held_on"], event["on_time"], event["year"]) == ("2023-02-08", True, 2023)


async def test_an_amendment_opens_the_conference_of_an_added_unit_and_waives_a_removed_one(
    system: System,
) -> None:
    async with system.plans.client() as plans:
        plan_id = (await register_units_and_issue_plan(plans, UNITS, PLAN))["id"]
        added = unit_below("SXD", "Sở Xây dựng", "department", "SNV")
        assert (await plans.post("/units", json=added)).status_code == 201
        amendment = {"reason": "Bổ sung Sở Xây dựng", "add_units": ["SXD"], "remove_units": ["BVT"]}
        amended = await plans.post(f"/plans/{plan_id}/amendments", json=amendment)
        assert amended.status_code == 200, amended.text

    async with system.reports.client() as reports:

        async def amended_states() -> dict[str, str]:
            found = await reports.get("/conferences", params={"plan_id": plan_id})
            states = {s["unit_code"]: s["state"] for s in found.json()}
            return states if states.get("SXD") and states.get("BVT") == "waived" else {}

        assert await eventually(amended_states) == {
            "SNV": "missing",
            "STP": "missing",
            "BVT": "waived",
            "SXD": "missing",
        }
        key = {"plan_id": plan_id, "schedule_key": "six_month", "receiving_unit": "SNV"}
        summary = (await reports.get("/consolidations", params=key)).json()["conferences"]
        assert [u["code"] for u in summary["by_unit"]] == ["SNV", "STP", "SXD"]
        assert (summary["total"]["expected"], summary["total"]["missing"]) == (3, 3)


async def test_the_deadline_clock_reminds_and_urges_a_unit_that_has_not_recorded_it(
    system: System, bus_spy: BusSpy
) -> None:
    async with system.plans.client() as plans:
        plan_id = (await register_units_and_issue_plan(plans, UNITS, PLAN))["id"]
    async with system.reports.client() as reports:

        async def owed() -> dict[str, str]:
            found = (await reports.get("/conferences", params={"plan_id": plan_id})).json()
            return {s["unit_code"]: s["obligation_id"] for s in found} if len(found) == 3 else {}

        obligations = await eventually(owed)
        # STP records before the reminders; the others do not.
        system.clock.set(ict(2023, 2, 10))
        body = {"plan_id": plan_id, "unit_code": "STP", "held_on": "2023-02-08"}
        assert (await reports.post("/conferences", json=body)).status_code == 201
    settings = system.reports.settings
    assert isinstance(settings, ReportsSettings)
    uow = system.reports.runtime.uow
    # Due by the end of Friday 31/03/2023: 7 days before is Friday 24/03 (a working day).
    week = await run_clock(ict(2023, 3, 24, 8), uow, settings)
    reminded = {f.obligation_id: f.step for f in week.fired}
    assert reminded == {
        obligations["SNV"]: "approaching-7",
        obligations["BVT"]: "approaching-7",
    }
    missed = await run_clock(ict(2023, 4, 1, 8), uow, settings)
    assert {f.obligation_id for f in missed.fired if f.step == "missed-0"} == {
        obligations["SNV"],
        obligations["BVT"],
    }
    approaching = await bus_spy.wait_for_type("qcdc.deadline.approaching.v1", count=2)
    refs = [json.loads(seen.data)["obligation"] for seen in approaching]
    assert {(r["unit_code"], r["schedule_key"]) for r in refs} == {
        ("SNV", "staff_conference"),
        ("BVT", "staff_conference"),
    }
