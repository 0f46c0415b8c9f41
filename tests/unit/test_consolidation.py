"""Consolidation over hand-built data. Every expected figure below is worked out by hand
from the fixture (see the comments), never by running the code under test."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from docx import Document
from openpyxl import load_workbook  # type: ignore[import-untyped]

from services.reports.adapters.documents import (
    document_symbol,
    render_docx,
    render_xlsx,
    summary_line,
    vn_long_date,
    vn_number,
)
from services.reports.domain.consolidation import (
    NO_GROUP_LABEL,
    Consolidation,
    SubmissionFacts,
    UnitFacts,
    locality_of,
    percent,
)
from services.reports.domain.model import Obligation, ObligationStatus
from shared.vntime import last_instant_before
from tests import builders

DUE = last_instant_before(date(2023, 6, 10))
EARLY = DUE - timedelta(days=2)
LATE = DUE + timedelta(days=1)


def unit(code: str, name: str, kind: str, *path: str) -> UnitFacts:
    parent = path[-2] if len(path) > 1 else None
    return UnitFacts(code, name, kind, tuple(path), parent, "T89" if code == "SNV" else "SNV")


UNITS = {
    u.code: u
    for u in (
        unit("T89", "Ủy ban nhân dân tỉnh An Bình", "province", "T89"),
        unit("SNV", "Sở Nội vụ", "department", "T89", "SNV"),
        unit("STP", "Sở Tư pháp", "department", "T89", "STP"),
        unit("SYT", "Sở Y tế", "department", "T89", "SYT"),
        unit("STC", "Sở Tài chính", "department", "T89", "STC"),
        unit("TTX", "Trung tâm Xúc tiến đầu tư", "public_service_unit", "T89", "TTX"),
        unit("H1", "Ủy ban nhân dân huyện Tân Phú", "district", "T89", "H1"),
        unit("H2", "Ủy ban nhân dân huyện Long Hưng", "district", "T89", "H2"),
        unit("X1", "Ủy ban nhân dân xã Tân An", "commune", "T89", "H1", "X1"),
        unit("X2", "Ủy ban nhân dân xã Tân Hòa", "commune", "T89", "H1", "X2"),
    )
}


def obligation(
    code: str, status: ObligationStatus = ObligationStatus.SUBMITTED, receiver: str = "SNV"
) -> Obligation:
    return builders.six_month_obligation(code, UNITS[code].path, status, receiver)


def version(
    code: str,
    number: int,
    at: datetime,
    indicators: dict[str, Any],
    status: str = "submitted",
    narrative: dict[str, str] | None = None,
) -> SubmissionFacts:
    return builders.submission_facts(
        code, number, at, indicators, status=status, narrative=narrative or {}
    )


OBLIGATIONS = [
    obligation("STP"),  # on time, resubmitted before review: version 2 counts
    obligation("SYT", ObligationStatus.OPEN),  # missing
    obligation("STC", ObligationStatus.WAIVED),  # waived after a return: not expected at all
    obligation("TTX"),  # on time, returned, then resubmitted late: on time, not returned
    obligation("H1", ObligationStatus.ACCEPTED),  # late, accepted
    obligation("H2", ObligationStatus.RETURNED),  # on time, returned: received, not counted
    obligation("X1"),  # late
    obligation("X2", receiver="H1"),  # goes to the district, not to Home Affairs: ignored
]

SUBMISSIONS = [
    version(
        "STP",
        1,
        EARLY,
        {"citizens_received": 10, "complaints_received": 4, "complaints_resolved": 3},
    ),
    version(
        "STP",
        2,
        EARLY + timedelta(hours=1),
        {"citizens_received": 12, "complaints_received": 5, "complaints_resolved": 5},
        narrative={"3": "Sở Tư pháp tiếp 12 lượt công dân."},
    ),
    version("STC", 1, EARLY, {"citizens_received": 1000}, status="returned"),
    version("TTX", 2, LATE, {"citizens_received": 1}),  # listed before v1 on purpose
    version("TTX", 1, EARLY, {"citizens_received": 99}, status="returned"),
    version(
        "H1",
        1,
        LATE,
        {"citizens_received": 30, "reception_sessions": 6},
        status="accepted",
        narrative={"3": "Huyện tổ chức 6 buổi tiếp dân.", "10": "Khác.", "2": "Kiện toàn Ban."},
    ),
    version("H2", 1, EARLY, {"citizens_received": 500}, status="returned"),
    version(
        "X1",
        1,
        LATE + timedelta(days=3),
        {"citizens_received": 7, "reception_sessions": 2, "complaints_received": 1},
        narrative={"3": "Xã tiếp 7 lượt.", "5": "   "},
    ),
    version("X2", 1, EARLY, {"citizens_received": 10000}),
]


@pytest.fixture(scope="module")
def result() -> Consolidation:
    areas = {"3": "Thực hiện Quy chế dân chủ ở xã, phường, thị trấn"}
    return builders.consolidation(OBLIGATIONS, SUBMISSIONS, UNITS, content_areas=areas)


def codes(units: list[Any]) -> list[str]:
    return [u.code for u in units]


def totals_of(c: Consolidation) -> dict[str, int | float]:
    return {i.code: i.total for i in c.indicators if i.total}


def test_counts_follow_the_first_submission_and_leave_out_waived_units(
    result: Consolidation,
) -> None:
    # Expected: STP SYT TTX H1 H2 X1 (STC waived, X2 reports to H1). Received: all but SYT.
    # On time (first version): STP, TTX, H2. Late: H1, X1. Returned now: H2 only (TTX's
    # return was answered by version 2).
    counts = result.counts
    assert (counts.expected, counts.received, counts.missing) == (6, 5, 1)
    assert (counts.on_time, counts.late, counts.returned) == (3, 2, 1)
    # Tree order of paths: T89/H1, T89/H1/X1, T89/H2, T89/STP, T89/SYT, T89/TTX.
    assert codes(result.units.expected) == ["H1", "X1", "H2", "STP", "SYT", "TTX"]
    assert codes(result.units.on_time) == ["H2", "STP", "TTX"]
    assert codes(result.units.late) == ["H1", "X1"]
    assert codes(result.units.missing) == ["SYT"]
    assert codes(result.units.returned) == ["H2"]
    assert result.units.missing[0].name == "Sở Y tế"


def test_rates_are_fractions_and_percentages_rounded_half_up(result: Consolidation) -> None:
    # 5/6 = 0.83333… → 83.3 %; 3/6 = 0.5 → 50.0 %.
    assert result.rates.completeness == 0.8333
    assert result.rates.completeness_percent == 83.3
    assert result.rates.timeliness == 0.5
    assert result.rates.timeliness_percent == 50.0
    assert percent(1, 8) == 12.5
    assert percent(1, 16) == 6.3  # 6.25 rounds up, not to the even 6.2
    assert percent(2, 3) == 66.7
    assert percent(0, 0) == 0.0


def test_totals_sum_the_latest_version_of_reports_not_returned(result: Consolidation) -> None:
    # Counted: STP v2, TTX v2, H1 v1, X1 v1 (H2 returned; STC waived; X2 elsewhere).
    # citizens_received 12 + 1 + 30 + 7 = 50; complaints_received 5 + 1 = 6;
    # complaints_resolved 5; reception_sessions 6 + 2 = 8.
    assert result.reports_counted == 4
    assert totals_of(result) == {
        "citizens_received": 50,
        "complaints_received": 6,
        "complaints_resolved": 5,
        "reception_sessions": 8,
    }
    citizens = next(i for i in result.indicators if i.code == "citizens_received")
    assert (citizens.reported_by, citizens.label) == (4, "Số lượt công dân được tiếp")
    assert len(result.indicators) == 18  # the whole catalogue, zeros included


def test_breakdown_by_unit_kind(result: Consolidation) -> None:
    # district: H1 (30, 6 sessions), H2 returned; commune: X1 (7, 2, 1 complaint);
    # department: STP (12, 5, 5), SYT missing; public service unit: TTX (1).
    by_kind = {g.key: g for g in result.by_kind}
    assert list(by_kind) == ["district", "commune", "department", "public_service_unit"]
    assert (by_kind["district"].expected, by_kind["district"].reports) == (2, 1)
    assert by_kind["district"].totals["citizens_received"] == 30
    assert by_kind["commune"].totals["complaints_received"] == 1
    assert by_kind["department"].totals["complaints_resolved"] == 5
    assert (by_kind["department"].expected, by_kind["department"].reports) == (2, 1)
    assert by_kind["public_service_unit"].totals["citizens_received"] == 1
    assert by_kind["department"].label == "Sở, ban, ngành"


def test_breakdown_by_district_puts_a_district_and_its_communes_together(
    result: Consolidation,
) -> None:
    # H1: H1 itself + X1 → 30 + 7 = 37 citizens, 6 + 2 = 8 sessions. H2: nothing counted.
    # No district: STP, SYT, TTX → 12 + 1 = 13 citizens; listed last.
    groups = {g.key: g for g in result.by_district}
    assert list(groups) == ["H1", "H2", ""]
    assert groups["H1"].label == "Ủy ban nhân dân huyện Tân Phú"
    assert (groups["H1"].expected, groups["H1"].reports) == (2, 2)
    assert groups["H1"].totals["citizens_received"] == 37
    assert groups["H1"].totals["reception_sessions"] == 8
    assert (groups["H2"].expected, groups["H2"].reports) == (1, 0)
    assert groups["H2"].totals["citizens_received"] == 0
    assert groups[""].label == NO_GROUP_LABEL
    assert groups[""].totals["citizens_received"] == 13
    status = {s.code: s for s in result.status}
    assert status["X1"].district_code == "H1"
    assert status["STP"].district_code is None


def test_status_rows_show_the_first_submission_and_the_latest_review(
    result: Consolidation,
) -> None:
    status = {s.code: s for s in result.status}
    ttx = status["TTX"]
    assert (ttx.state, ttx.submitted_at, ttx.receipt_number) == ("on_time", EARLY, "BC-2023-TTX-1")
    assert (ttx.latest_version, ttx.review, ttx.returned, ttx.counted) == (
        2,
        "submitted",
        False,
        True,
    )
    h2 = status["H2"]
    assert (h2.state, h2.review, h2.returned, h2.counted) == ("on_time", "returned", True, False)
    syt = status["SYT"]
    assert (syt.state, syt.submitted_at, syt.latest_version, syt.review) == ("missing", None, 0, "")


def test_narratives_per_content_area_in_tree_order(result: Consolidation) -> None:
    areas = {a.code: a for a in result.narratives}
    assert list(areas) == ["2", "3", "10"]  # numeric order; X1's blank area 5 is left out
    assert areas["3"].title == "Thực hiện Quy chế dân chủ ở xã, phường, thị trấn"
    assert areas["2"].title == ""  # a title this service was not given
    assert [(e.unit_code, e.text) for e in areas["3"].entries] == [
        ("H1", "Huyện tổ chức 6 buổi tiếp dân."),
        ("X1", "Xã tiếp 7 lượt."),
        ("STP", "Sở Tư pháp tiếp 12 lượt công dân."),
    ]
    assert areas["3"].entries[1].unit_name == "Ủy ban nhân dân xã Tân An"


def test_prefill_is_what_a_district_submits_upward(result: Consolidation) -> None:
    assert result.prefill.indicators == {
        "citizens_received": 50,
        "complaints_received": 6,
        "complaints_resolved": 5,
        "reception_sessions": 8,
    }
    assert result.prefill.narrative["2"] == "- Ủy ban nhân dân huyện Tân Phú: Kiện toàn Ban."


def test_heading_and_the_receiving_unit(result: Consolidation) -> None:
    unit = result.receiving_unit
    assert (unit.name, unit.governing_body, unit.locality) == (
        "Sở Nội vụ",
        "Ủy ban nhân dân tỉnh An Bình",
        "An Bình",
    )
    assert unit.reports_to == "Ủy ban nhân dân tỉnh An Bình"
    assert result.heading.due_at == DUE
    assert (result.heading.period_start, result.heading.period_end) == (
        date(2022, 12, 15),
        date(2023, 6, 14),
    )


def test_json_round_trips(result: Consolidation) -> None:
    content = result.to_json()
    assert content["counts"]["expected"] == 6
    assert content["rates"]["completeness_percent"] == 83.3
    assert Consolidation.model_validate(content) == result


def test_a_district_consolidates_its_communes() -> None:
    # X2 is the only commune obligation to H1: on time, 10000 citizens. H1 is a committee:
    # no governing body line; its place is Tân Phú.
    c = builders.consolidation(OBLIGATIONS, SUBMISSIONS, UNITS, receiving_unit="H1")
    assert (c.counts.expected, c.counts.on_time, c.rates.timeliness_percent) == (1, 1, 100.0)
    assert c.prefill.indicators == {"citizens_received": 10000}
    assert (c.receiving_unit.governing_body, c.receiving_unit.locality) == ("", "Tân Phú")
    assert [g.key for g in c.by_district] == ["H1"]


def test_a_two_level_province_has_one_group_without_district() -> None:
    units = {
        "T1": UnitFacts("T1", "Ủy ban nhân dân tỉnh Hòa Bình", "province", ("T1",)),
        "SNV": UnitFacts("SNV", "Sở Nội vụ", "department", ("T1", "SNV"), "T1", "T1"),
        "XA": UnitFacts("XA", "Ủy ban nhân dân xã Đà Bắc", "commune", ("T1", "XA"), "T1", "SNV"),
        "XB": UnitFacts("XB", "Ủy ban nhân dân phường Kỳ Sơn", "commune", ("T1", "XB")),
    }
    found = [
        replace(obligation("STP"), id=f"o-{c}", unit_code=c, unit_path=["T1", c])
        for c in ("XA", "XB")
    ]
    c = builders.consolidation(found, [version("XA", 1, EARLY, {"training_classes": 2})], units)
    assert [(g.key, g.label, g.expected, g.reports) for g in c.by_district] == [
        ("", NO_GROUP_LABEL, 2, 1)
    ]
    assert (c.counts.received, c.counts.missing, c.rates.completeness_percent) == (1, 1, 50.0)


def test_nothing_expected_gives_zero_rates() -> None:
    c = builders.consolidation([obligation("STC", ObligationStatus.WAIVED)], [], UNITS)
    assert c.counts.expected == 0
    assert (c.rates.completeness, c.rates.timeliness_percent) == (0.0, 0.0)


def test_an_unknown_receiver_is_refused() -> None:
    with pytest.raises(ValueError, match="no obligation goes to H9"):
        builders.consolidation(OBLIGATIONS, [], UNITS, receiving_unit="H9")


# --- document wording ------------------------------------------------------------------------


def test_wording_follows_decree_30() -> None:
    assert vn_long_date(date(2023, 2, 5)) == "ngày 05 tháng 02 năm 2023"
    assert vn_long_date(date(2023, 6, 15)) == "ngày 15 tháng 6 năm 2023"
    assert vn_number(1234) == "1.234"
    assert vn_number(2.5) == "2,5"
    assert document_symbol("Sở Nội vụ") == "SNV"
    assert document_symbol("Sở Giáo dục và Đào tạo") == "SGDĐT"
    assert document_symbol("Ủy ban nhân dân huyện Tân Phú") == "UBND"
    assert locality_of("Ủy ban nhân dân thị trấn Tân Phú") == "Tân Phú"


def test_documents_render_from_the_consolidation(result: Consolidation) -> None:
    assert summary_line(result) == (
        "Tổng hợp kết quả thực hiện Quy chế dân chủ ở cơ sở 06 tháng năm 2023"
    )
    doc = Document(io.BytesIO(render_docx(result)))
    heading = doc.tables[0].rows[0].cells
    assert heading[0].text.splitlines() == [
        "UBND TỈNH AN BÌNH",
        "SỞ NỘI VỤ",
        "",
        "Số:        /BC-SNV",
    ]
    assert "An Bình, ngày 20 tháng 6 năm 2023" in heading[1].text
    workbook = load_workbook(io.BytesIO(render_xlsx(result)))
    assert workbook.sheetnames == [
        "Tổng quan",
        "Tình hình nộp báo cáo",
        "Chỉ tiêu",
        "Kiến nghị sau giám sát",
        "Kiểm tra, khảo sát",
    ]
    assert workbook["Tình hình nộp báo cáo"].max_row == 1 + 6
