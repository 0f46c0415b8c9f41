"""Consolidation on a real bus: the plans service registers units and issues the plan, the
reports service opens obligations from its events, units submit over HTTP (on time, late,
returned for revision, missing, waived), and the consolidation gives the same figures as
JSON, DOCX and XLSX; published versions are kept and announced. Then two reports instances
(the province's and a district's, each with its own database) roll a district's communes
up into the province's consolidation.

Every expected figure is worked out by hand from the submissions below."""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from docx import Document
from docx.document import Document as DocxDocument
from openpyxl import load_workbook  # type: ignore[import-untyped]

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.clock import ManualClock
from shared.vntime import ICT
from tests.bodies import district_plan, plan_body, province_units, unit_below
from tests.stack import issue_plan, register_units
from tests.support import BusSpy, InProcessService, eventually, service_settings

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


PROVINCE, HOME_AFFAIRS = province_units("T89-SNV")
UNITS: list[dict[str, Any]] = [
    PROVINCE,
    {**HOME_AFFAIRS, "reports_to_code": "T89"},
    unit_below("T89-STP", "Sở Tư pháp", "department", "T89-SNV"),
    unit_below("T89-STC", "Sở Tài chính", "department", "T89-SNV"),
    unit_below("T89-SYT", "Sở Y tế", "department", "T89-SNV"),
    unit_below("T89-SXD", "Sở Xây dựng", "department", "T89-SNV"),
    unit_below("H801", "Ủy ban nhân dân huyện Tân Phú", "district", "T89-SNV"),
    unit_below("H802", "Ủy ban nhân dân huyện Long Hưng", "district", "T89-SNV"),
    unit_below("H803", "Ủy ban nhân dân thị xã Bình Minh", "district", "T89-SNV"),
    unit_below("X80101", "Ủy ban nhân dân xã Tân An", "commune", "H801", parent_code="H801"),
    unit_below("X80102", "Ủy ban nhân dân thị trấn Tân Phú", "commune", "H801", parent_code="H801"),
]

PROVINCE_PLAN: dict[str, Any] = plan_body(
    content_areas=[{"code": "3", "title": "Thực hiện Quy chế dân chủ ở xã, phường, thị trấn"}],
    assignees={"kinds": ["department", "district"]},
)


def ict(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ICT)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(ict("2023-06-01T08:00:00"))


async def _start(
    definition: Any, nats_url: str, database_url: str, clock: ManualClock, **overrides: Any
) -> InProcessService:
    settings = service_settings(
        definition, nats_url=nats_url, database_url=database_url, **overrides
    )
    return await InProcessService(definition, settings, clock).start()


@pytest.fixture
async def services(
    nats_server: NatsServer, database_urls: dict[str, str], clock: ManualClock
) -> AsyncIterator[dict[str, InProcessService]]:
    running = {
        "plans": await _start(PLANS, nats_server.url, database_urls["plans"], clock),
        "reports": await _start(REPORTS, nats_server.url, database_urls["reports"], clock),
    }
    yield running
    for service in running.values():
        await service.stop()


@pytest.fixture
async def two_levels(
    nats_server: NatsServer,
    database_urls: dict[str, str],
    postgres_url_factory: Any,
    tmp_path: Path,
    clock: ManualClock,
) -> AsyncIterator[dict[str, InProcessService]]:
    """The plans service, the province's reports instance (H801 delegated to its own), and
    H801's instance scoped to its subtree, with a database of its own."""
    if database_urls["reports"].startswith("sqlite"):
        district_url = f"sqlite+aiosqlite:///{tmp_path}/reports-H801.db"
    else:
        district_url = await postgres_url_factory()
    url = nats_server.url
    running = {
        "plans": await _start(PLANS, url, database_urls["plans"], clock),
        "province": await _start(REPORTS, url, database_urls["reports"], clock, delegated=["H801"]),
        "district": await _start(REPORTS, url, district_url, clock, scope="H801"),
    }
    yield running
    for service in running.values():
        await service.stop()


# --- helpers --------------------------------------------------------------------------------


async def _issue(plans: httpx.AsyncClient, plan: dict[str, Any]) -> str:
    return str((await issue_plan(plans, plan))["id"])


async def _register_units(plans: httpx.AsyncClient) -> None:
    await register_units(plans, UNITS)


async def _six_month_obligations(
    reports: httpx.AsyncClient, plan_id: str, count: int, waived: int = 0
) -> dict[str, str]:
    """Obligation id per unit, once the reports service has them all (and the waivers)."""

    async def probe() -> dict[str, str]:
        found = (await reports.get("/obligations", params={"plan_id": plan_id})).json()
        mine = [o for o in found if o["schedule_key"] == "six_month"]
        if len(mine) != count or sum(o["status"] == "waived" for o in mine) != waived:
            return {}
        return {o["unit_code"]: o["id"] for o in mine}

    result: dict[str, str] = await eventually(probe)
    return result


async def _submit(
    reports: httpx.AsyncClient,
    obligation_id: str,
    unit: str,
    indicators: dict[str, int],
    narrative: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = {
        "obligation_id": obligation_id,
        "unit_code": unit,
        "indicators": indicators,
        "narrative": narrative or {},
    }
    response = await reports.post("/reports", json=body)
    assert response.status_code == 201, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


async def _consolidation(
    reports: httpx.AsyncClient, plan_id: str, receiver: str, expected: int, received: int = 0
) -> dict[str, Any]:
    """The live consolidation once every unit it names is in the read model (and at least
    ``received`` reports are in, for reports that arrive mirrored from another instance)."""
    params = {"plan_id": plan_id, "schedule_key": "six_month", "receiving_unit": receiver}

    async def probe() -> dict[str, Any] | None:
        response = await reports.get("/consolidations", params=params)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        named = all(s["name"] != s["code"] for s in body["status"])
        counts = body["counts"]
        ready = counts["expected"] == expected and counts["received"] >= received
        return body if named and ready else None

    result: dict[str, Any] = await eventually(probe)
    return result


def _totals(body: dict[str, Any]) -> dict[str, int]:
    return {i["code"]: i["total"] for i in body["indicators"] if i["total"]}


def _cells(doc: DocxDocument) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for table in doc.tables for row in table.rows]


def _row(rows: list[list[str]], label: str) -> list[str]:
    return next(r for r in rows if len(r) > 1 and r[1] == label)


# --- the province's consolidation -----------------------------------------------------------


async def test_consolidation_of_on_time_late_missing_returned_and_waived_reports(
    services: dict[str, InProcessService], bus_spy: BusSpy, clock: ManualClock
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        await _register_units(plans)
        plan_id = await _issue(plans, PROVINCE_PLAN)
        # Seven assignees (SNV receives, so it owes nothing); Sở Xây dựng is then removed.
        amended = await plans.post(
            f"/plans/{plan_id}/amendments",
            json={"reason": "Sở Xây dựng báo cáo theo kế hoạch riêng", "remove_units": ["T89-SXD"]},
        )
        assert amended.status_code == 200, amended.text
        ids = await _six_month_obligations(reports, plan_id, 7, waived=1)

        clock.set(ict("2023-06-05T09:00:00"))
        await _submit(
            reports,
            ids["T89-STP"],
            "T89-STP",
            {"citizens_received": 12, "complaints_received": 5, "complaints_resolved": 4},
            {"3": "Sở Tư pháp tiếp 12 lượt công dân."},
        )
        await _submit(
            reports, ids["T89-STC"], "T89-STC", {"citizens_received": 8, "reception_sessions": 3}
        )
        await _submit(
            reports,
            ids["H801"],
            "H801",
            {
                "citizens_received": 40,
                "reception_sessions": 10,
                "complaints_received": 7,
                "complaints_resolved": 7,
            },
            {"3": "Huyện tổ chức 10 buổi tiếp công dân.\nGiải quyết xong 7 đơn."},
        )
        h803 = await _submit(reports, ids["H803"], "H803", {"citizens_received": 500})
        returned = await reports.post(
            f"/reports/{h803['report_id']}/return",
            json={"reviewer_unit": "T89-SNV", "reason": "Số liệu tiếp công dân chưa chính xác"},
        )
        assert returned.status_code == 200, returned.text
        clock.set(ict("2023-06-10T00:00:00"))  # the first instant after "before 10/6/2023"
        await _submit(
            reports, ids["H802"], "H802", {"citizens_received": 20, "reception_sessions": 4}
        )

        first = await _consolidation(reports, plan_id, "T89-SNV", expected=6)
        check_first_figures(first)
        await check_documents(reports, plan_id)

        v1 = await _publish(reports, plan_id)
        clock.set(ict("2023-06-12T14:30:00"))
        await _submit(reports, ids["T89-SYT"], "T89-SYT", {"citizens_received": 5})
        refreshed = await _consolidation(reports, plan_id, "T89-SNV", expected=6)
        v2 = await _publish(reports, plan_id)
        # Published again, unchanged (later, by someone else): the same version, no event.
        clock.set(ict("2023-06-12T16:00:00"))
        again = await _publish(reports, plan_id, "lanhdao@snv.anbinh.gov.vn", status=200)
        assert (again["id"], again["version"], again["published_at"]) == (
            v2["id"],
            2,
            v2["published_at"],
        )
        await check_versions(reports, plan_id, v1, v2)
        unknown = await check_refusals(reports, plan_id)
    # After Sở Y tế's late report: 6 of 6 received (100.0 %), still 4 on time (66.7 %),
    # 2 late, citizens 80 + 5 = 85.
    assert refreshed["counts"] == {
        "expected": 6,
        "received": 6,
        "on_time": 4,
        "late": 2,
        "missing": 0,
        "returned": 1,
    }
    assert refreshed["rates"]["completeness_percent"] == 100.0
    assert _totals(refreshed)["citizens_received"] == 85
    assert unknown == {"plan": 404, "key": 404, "unit": 404, "receiver": 404, "format": 422}
    events = await bus_spy.wait_for_type("qcdc.consolidation.published.v1", count=2)
    assert len(events) == 2
    bodies = sorted((json.loads(e.data) for e in events), key=lambda b: b["version"])
    assert {e.subject for e in events} == {"qcdc.v1.consolidation.published.T89.T89-SNV"}
    assert [(b["version"], b["received"], b["missing"], b["late"]) for b in bodies] == [
        (1, 5, 1, 1),
        (2, 6, 0, 2),
    ]
    assert [b["consolidation_id"] for b in bodies] == [v1["id"], v2["id"]]
    assert bodies[0]["expected"] == 6 and bodies[0]["on_time"] == 4
    assert bodies[0]["returned"] == 1 and bodies[0]["period_end"] == "2023-06-08"


FORMULA = '=HYPERLINK("http://evil.example/","Bấm vào đây")'


async def test_a_unit_renamed_to_a_formula_is_text_in_home_affairs_spreadsheet(
    services: dict[str, InProcessService],
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        await _register_units(plans)
        plan_id = await _issue(plans, PROVINCE_PLAN)
        await _six_month_obligations(reports, plan_id, 7)
        renamed = await plans.patch("/units/T89-STP", json={"name": FORMULA})
        assert renamed.status_code == 200, renamed.text
        params = {"plan_id": plan_id, "schedule_key": "six_month", "receiving_unit": "T89-SNV"}

        async def renamed_in_reports() -> bool:
            body = (await reports.get("/consolidations", params=params)).json()
            return any(s["name"] == FORMULA for s in body["status"])  # UnitUpdated arrived

        await eventually(renamed_in_reports)
        xlsx = await reports.get("/consolidations", params={**params, "format": "xlsx"})
        exported = await plans.get("/units/export", params={"format": "csv"})
    status = load_workbook(io.BytesIO(xlsx.content))["Tình hình nộp báo cáo"]
    [name] = [row[1] for row in status.iter_rows(min_row=2) if row[0].value == "T89-STP"]
    assert (name.value, name.data_type, name.quotePrefix) == (FORMULA, "s", True)
    [line] = [line for line in exported.text.splitlines() if line.startswith("T89-STP,")]
    assert line.startswith("T89-STP,\"'=HYPERLINK(")


def check_first_figures(body: dict[str, Any]) -> None:
    # Expected: STP, STC, SYT, H801, H802, H803 (SXD waived). Received: all but SYT.
    # On time: STP, STC, H801, H803 (returned later: still received on time). Late: H802
    # (at 10/06 00:00:00 ICT). 5/6 → 83.3 %, 4/6 → 66.7 %.
    assert body["counts"] == {
        "expected": 6,
        "received": 5,
        "on_time": 4,
        "late": 1,
        "missing": 1,
        "returned": 1,
    }
    assert body["rates"] == {
        "completeness": 0.8333,
        "completeness_percent": 83.3,
        "timeliness": 0.6667,
        "timeliness_percent": 66.7,
    }
    assert [u["code"] for u in body["units"]["missing"]] == ["T89-SYT"]
    assert [u["code"] for u in body["units"]["late"]] == ["H802"]
    assert [u["code"] for u in body["units"]["returned"]] == ["H803"]
    assert "T89-SXD" not in [u["code"] for u in body["units"]["expected"]]
    # Counted: STP, STC, H801, H802 (H803 returned). citizens 12 + 8 + 40 + 20 = 80;
    # sessions 3 + 10 + 4 = 17; complaints 5 + 7 = 12 received, 4 + 7 = 11 resolved.
    assert _totals(body) == {
        "citizens_received": 80,
        "reception_sessions": 17,
        "complaints_received": 12,
        "complaints_resolved": 11,
    }
    by_kind = {g["key"]: g["totals"]["citizens_received"] for g in body["by_kind"]}
    assert by_kind == {"department": 20, "district": 60}
    by_district = {g["key"]: g["totals"]["citizens_received"] for g in body["by_district"]}
    assert by_district == {"H801": 40, "H802": 20, "H803": 0, "": 20}
    late = next(s for s in body["status"] if s["code"] == "H802")
    assert late["submitted_at"] == "2023-06-09T17:00:00Z" and late["on_time"] is False
    [area] = body["narratives"]
    assert [e["unit_code"] for e in area["entries"]] == ["H801", "T89-STP"]
    assert body["receiving_unit"]["locality"] == "An Bình"


async def check_documents(reports: httpx.AsyncClient, plan_id: str) -> None:
    params = {"plan_id": plan_id, "schedule_key": "six_month", "receiving_unit": "T89-SNV"}
    docx_response = await reports.get("/consolidations", params={**params, "format": "docx"})
    assert docx_response.headers["content-type"] == DOCX
    disposition = docx_response.headers["content-disposition"]
    assert disposition == 'attachment; filename="tong-hop_T89-SNV_six_month_20230610.docx"'
    check_docx(Document(io.BytesIO(docx_response.content)))
    xlsx_response = await reports.get("/consolidations", params={**params, "format": "xlsx"})
    assert xlsx_response.headers["content-type"] == XLSX
    assert xlsx_response.headers["content-disposition"].endswith('.xlsx"')
    check_xlsx(load_workbook(io.BytesIO(xlsx_response.content)))


def check_docx(doc: DocxDocument) -> None:
    rows = _cells(doc)
    heading = rows[0]
    assert heading[0].splitlines()[:2] == ["UBND TỈNH AN BÌNH", "SỞ NỘI VỤ"]
    assert "Số:" in heading[0] and "/BC-SNV" in heading[0]
    assert heading[1].splitlines()[:2] == [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
    ]
    assert "An Bình, ngày 10 tháng 6 năm 2023" in heading[1]
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "BÁO CÁO" in text
    assert "Tổng hợp kết quả thực hiện Quy chế dân chủ ở cơ sở 06 tháng năm 2023" in text
    assert rows[-1][0].startswith("Nơi nhận:")
    assert "Ủy ban nhân dân tỉnh An Bình (để báo cáo)" in rows[-1][0]
    # The same figures as the JSON.
    assert _row(rows, "Số đơn vị phải báo cáo")[2:] == ["6", ""]
    assert _row(rows, "Số đơn vị đã nộp báo cáo")[2:] == ["5", "83,3%"]
    assert _row(rows, "Số đơn vị nộp đúng hạn")[2:] == ["4", "66,7%"]
    assert _row(rows, "Số đơn vị nộp muộn")[2] == "1"
    assert _row(rows, "Số đơn vị chưa nộp")[2] == "1"
    assert _row(rows, "Số báo cáo bị trả lại để hoàn thiện")[2] == "1"
    citizens = [r for r in rows if len(r) > 1 and r[1] == "Số lượt công dân được tiếp"]
    assert citizens[0][2:] == ["lượt người", "80"]  # totals
    assert citizens[1][2:] == ["60", "20"]  # by kind, in tree order: districts, departments
    assert citizens[2][2:] == ["40", "20", "0", "20"]  # by district; no district last
    assert _row(rows, "Sở Y tế")[3] == "Chưa nộp"
    assert _row(rows, "Ủy ban nhân dân huyện Long Hưng")[3:] == ["Đã nộp muộn", "10/06/2023 00:00"]
    check_docx_layout(doc)


def check_docx_layout(doc: DocxDocument) -> None:
    section = doc.sections[0]
    # Lengths are stored in twips: A4 is 11906 × 16838, a fraction of a millimetre off.
    size = [
        round(length.mm) if length is not None else 0
        for length in (
            section.page_width,
            section.page_height,
            section.top_margin,
            section.bottom_margin,
            section.left_margin,
            section.right_margin,
        )
    ]
    width, height, top, bottom, left, right = size
    assert (width, height) == (210, 297)
    assert 20 <= top <= 25 and 20 <= bottom <= 25
    assert 30 <= left <= 35 and 15 <= right <= 20
    normal = doc.styles["Normal"].font  # type: ignore[attr-defined]
    assert normal.name == "Times New Roman" and normal.size.pt in (13, 14)
    runs = [r for p in doc.paragraphs for r in p.runs] + [
        r
        for table in doc.tables
        for row in table.rows
        for cell in row.cells
        for p in cell.paragraphs
        for r in p.runs
    ]
    assert {r.font.name for r in runs} <= {None, "Times New Roman"}  # None: the style's font
    body_sizes = {r.font.size.pt for p in doc.paragraphs for r in p.runs if r.font.size}
    assert body_sizes <= {13, 14}
    assert all(unicodedata.is_normalized("NFC", r.text) for r in runs)
    motto = next(
        p
        for table in doc.tables[:1]
        for p in table.rows[0].cells[1].paragraphs
        if p.text == "Độc lập - Tự do - Hạnh phúc"
    )
    assert all(r.bold for r in motto.runs)


def check_xlsx(workbook: Any) -> None:
    status = workbook["Tình hình nộp báo cáo"]
    header, *rows = [list(r) for r in status.iter_rows(values_only=True)]
    assert header[:8] == [
        "Mã đơn vị",
        "Tên đơn vị",
        "Loại đơn vị",
        "Đơn vị cấp huyện",
        "Tình trạng",
        "Thời điểm nộp (ICT)",
        "Đúng hạn",
        "Số tiếp nhận",
    ]
    by_code = {r[0]: r for r in rows}
    assert sorted(by_code) == ["H801", "H802", "H803", "T89-STC", "T89-STP", "T89-SYT"]
    assert by_code["H802"][4:7] == ["Đã nộp muộn", "10/06/2023 00:00", "Không"]
    assert by_code["H802"][7].startswith("BC-2023-")
    assert by_code["T89-SYT"][4] == "Chưa nộp" and by_code["T89-SYT"][5] in ("", None)
    assert by_code["H803"][4] == "Đã nộp đúng hạn; bị trả lại để hoàn thiện"
    assert by_code["H801"][3] == "Ủy ban nhân dân huyện Tân Phú"
    indicators = workbook["Chỉ tiêu"]
    header, *lines = [list(r) for r in indicators.iter_rows(values_only=True)]
    citizens = next(line for line in lines if line[0] == "citizens_received")
    assert citizens[1:4] == ["Số lượt công dân được tiếp", "lượt người", 80]
    columns = dict(zip(header[4:], citizens[4:], strict=True))
    assert columns["Địa bàn: Ủy ban nhân dân huyện Tân Phú"] == 40
    assert columns["Loại: Sở, ban, ngành"] == 20
    summary = dict(workbook["Tổng quan"].iter_rows(values_only=True))
    assert (summary["Số đơn vị phải báo cáo"], summary["Số đơn vị đã nộp"]) == (6, 5)
    assert (summary["Tỷ lệ đầy đủ (%)"], summary["Tỷ lệ đúng hạn (%)"]) == (83.3, 66.7)


async def _publish(
    reports: httpx.AsyncClient,
    plan_id: str,
    by: str = "chuyenvien@snv.anbinh.gov.vn",
    status: int = 201,
) -> dict[str, Any]:
    body = {
        "plan_id": plan_id,
        "schedule_key": "six_month",
        "receiving_unit": "T89-SNV",
        "published_by": by,
    }
    response = await reports.post("/consolidations/publish", json=body)
    assert response.status_code == status, response.text
    published: dict[str, Any] = response.json()
    return published


async def check_versions(
    reports: httpx.AsyncClient, plan_id: str, v1: dict[str, Any], v2: dict[str, Any]
) -> None:
    assert (v1["version"], v2["version"]) == (1, 2)
    params = {"plan_id": plan_id, "schedule_key": "six_month", "receiving_unit": "T89-SNV"}
    listed = (await reports.get("/consolidations/published", params=params)).json()
    assert [(p["version"], p["counts"]["missing"]) for p in listed] == [(1, 1), (2, 0)]
    kept = (await reports.get(f"/consolidations/published/{v1['id']}")).json()
    assert kept["consolidation"]["counts"]["received"] == 5  # version 1 did not change
    assert kept["published_by"] == "chuyenvien@snv.anbinh.gov.vn"
    document = await reports.get(f"/consolidations/published/{v1['id']}", params={"format": "docx"})
    assert document.headers["content-disposition"].endswith('_v1.docx"')
    rows = _cells(Document(io.BytesIO(document.content)))
    assert _row(rows, "Số đơn vị chưa nộp")[2] == "1"


async def check_refusals(reports: httpx.AsyncClient, plan_id: str) -> dict[str, int]:
    params = {"plan_id": plan_id, "schedule_key": "six_month", "receiving_unit": "T89-SNV"}
    no_plan = await reports.get("/consolidations", params={**params, "plan_id": "nope"})
    no_key = await reports.get("/consolidations", params={**params, "schedule_key": "annual"})
    no_unit = await reports.get("/consolidations", params={**params, "receiving_unit": "T00"})
    not_receiving = await reports.get(
        "/consolidations", params={**params, "receiving_unit": "T89-STP"}
    )
    bad_format = await reports.get("/consolidations", params={**params, "format": "pdf"})
    assert "no plan nope" in no_plan.json()["error"]["message"]
    assert "has no report 'annual'" in no_key.json()["error"]["message"]
    assert "no unit reports to T89-STP" in not_receiving.json()["error"]["message"]
    return {
        "plan": no_plan.status_code,
        "key": no_key.status_code,
        "unit": no_unit.status_code,
        "receiver": not_receiving.status_code,
        "format": bad_format.status_code,
    }


# --- roll-up: a district's own instance, and the province's ---------------------------------


async def test_a_district_instance_rolls_its_communes_up_into_the_province(
    two_levels: dict[str, InProcessService], clock: ManualClock
) -> None:
    async with (
        two_levels["plans"].client() as plans,
        two_levels["province"].client() as province,
        two_levels["district"].client() as district,
    ):
        await _register_units(plans)
        province_plan = await _issue(plans, PROVINCE_PLAN)
        sub_plan = await _issue(plans, district_plan(province_plan))
        communes = await _six_month_obligations(district, sub_plan, 2)
        clock.set(ict("2023-06-02T10:00:00"))
        await _submit(
            district,
            communes["X80101"],
            "X80101",
            {"citizens_received": 15, "reception_sessions": 2},
            {"3": "Xã tiếp 15 lượt công dân."},
        )
        await _submit(
            district,
            communes["X80102"],
            "X80102",
            {"citizens_received": 25, "complaints_received": 2, "complaints_resolved": 1},
        )
        rolled = await _consolidation(district, sub_plan, "H801", expected=2)
        params = {"plan_id": sub_plan, "schedule_key": "six_month", "receiving_unit": "H801"}
        prefill = (await district.get("/consolidations/prefill", params=params)).json()
        published = await district.post(
            "/consolidations/publish", json={**params, "published_by": "vanphong@h801"}
        )
        elsewhere = await district.post(
            "/consolidations/publish",
            json={
                **params,
                "plan_id": province_plan,
                "receiving_unit": "T89-SNV",
                "published_by": "vanphong@h801",
            },
        )
        # The district's own report to Home Affairs carries its communes' totals. Its own
        # instance takes it; the province's mirrors it from the bus.
        ids = await _six_month_obligations(province, province_plan, 7)
        clock.set(ict("2023-06-07T16:00:00"))
        await _submit(district, ids["H801"], "H801", prefill["indicators"], prefill["narrative"])
        refused = await province.post(
            "/reports", json={"obligation_id": ids["H801"], "unit_code": "H801"}
        )
        await _submit(province, ids["T89-STP"], "T89-STP", {"citizens_received": 3})
        upper = await _consolidation(province, province_plan, "T89-SNV", expected=7, received=2)
    # District: both communes on time; 15 + 25 = 40 citizens, 2 sessions, 2 / 1 complaints.
    assert (rolled["counts"]["expected"], rolled["counts"]["on_time"]) == (2, 2)
    assert prefill["indicators"] == {
        "citizens_received": 40,
        "reception_sessions": 2,
        "complaints_received": 2,
        "complaints_resolved": 1,
    }
    assert prefill["narrative"] == {"3": "- Ủy ban nhân dân xã Tân An: Xã tiếp 15 lượt công dân."}
    assert published.status_code == 201 and published.json()["version"] == 1
    # A district's instance never publishes in Home Affairs' name.
    assert elsewhere.status_code == 403, elsewhere.text
    assert "speaks for H801" in elsewhere.json()["error"]["message"]
    assert refused.status_code == 422  # the province's instance does not take H801's reports
    # Province: H801 and STP of 7 received; totals 40 + 3 = 43; H801's group holds the 40.
    assert (upper["counts"]["received"], upper["counts"]["missing"]) == (2, 5)
    assert _totals(upper)["citizens_received"] == 43
    assert _totals(upper)["complaints_resolved"] == 1
    by_district = {g["key"]: g["totals"]["citizens_received"] for g in upper["by_district"]}
    assert by_district["H801"] == 40
    assert [e["unit_code"] for e in upper["narratives"][0]["entries"]] == ["H801"]
    assert all(s["code"] not in ("X80101", "X80102") for s in upper["status"])
