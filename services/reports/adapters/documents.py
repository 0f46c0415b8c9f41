"""A consolidation as documents people file: DOCX laid out as a Vietnamese administrative
report (Decree 30/2020/NĐ-CP) and XLSX for those who work the figures further.

Both render from :class:`Consolidation` alone, so a published version renders from the
JSON stored with it, years later, exactly as it was published.

Decree 30 layout, as followed here: A4 portrait; margins top and bottom 20 mm, left 30 mm,
right 15 mm; Times New Roman (Unicode) throughout, body 14 pt, tables 12 pt. The heading is
a borderless two-column table: on the left the governing body (upper case, regular; left
out for a People's Committee, which has none above it in its own name), the issuing body
(upper case, bold) with a short rule, then the number and symbol; on the right the national
title (upper case, bold), the motto (bold, a rule under it) and the place and date (italic).
Days below 10 and the months January and February take a leading zero ("ngày 05 tháng 02",
"ngày 15 tháng 6"), as the decree asks. The number itself is left blank ("Số:      /BC-SNV"):
it is given when the document is signed and registered in the issuing body's e-office.
Then the type ("BÁO CÁO") and the summary line, the body in numbered sections with tables,
and at the bottom the distribution list ("Nơi nhận:", left) beside the signer (right).
Numbers are written the Vietnamese way: 1.234 and 83,3 %.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from copy import copy, deepcopy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, cast

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.table import CT_Row, CT_Tbl
from docx.oxml.text.paragraph import CT_P
from docx.oxml.text.run import CT_R
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.cell import Cell, WriteOnlyCell  # type: ignore[import-untyped]
from openpyxl.styles import Alignment, Font  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

from services.reports.adapters.document_formats import Edition, Signer
from services.reports.domain.conference_counts import UnitConference
from services.reports.domain.consolidation import (
    PEOPLES_COMMITTEE,
    Consolidation,
    GroupTotals,
    IndicatorTotal,
    UnitStatus,
    authority_name,
    committee_locality,
    is_peoples_committee,
)
from services.reports.domain.inspection_counts import InspectionCounts
from services.reports.domain.recommendation_counts import RecommendationCounts
from shared.events import ReportKind
from shared.spreadsheets import reads_as_formula
from shared.vntime import ICT

FONT = "Times New Roman"
BODY_PT = 14
TABLE_PT = 12
TEXT_WIDTH_MM = 210 - 30 - 15
GROUP_COLUMNS_PER_TABLE = 5
"""Breakdown columns per table; more would not fit an A4 portrait page at 12 pt."""

NATIONAL_TITLE = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"

STATE_LABELS = {"on_time": "Đã nộp đúng hạn", "late": "Đã nộp muộn", "missing": "Chưa nộp"}
REVIEW_LABELS = {
    "": "",
    "submitted": "Chờ xem xét",
    "accepted": "Đã chấp nhận",
    "returned": "Trả lại để hoàn thiện",
}
KIND_LABELS: dict[str, str] = {
    ReportKind.SIX_MONTH: "Báo cáo định kỳ 06 tháng",
    ReportKind.ANNUAL: "Báo cáo định kỳ năm",
    ReportKind.THEMATIC: "Báo cáo chuyên đề",
    ReportKind.AD_HOC: "Báo cáo đột xuất",
}
SHEET_SUMMARY = "Tổng quan"
SHEET_STATUS = "Tình hình nộp báo cáo"
SHEET_INDICATORS = "Chỉ tiêu"
SHEET_RECOMMENDATIONS = "Kiến nghị sau giám sát"
RECOMMENDATION_HEADER = (
    "Số kiến nghị nhận được",
    "Trả lời đúng hạn",
    "Trả lời quá hạn",
    "Chưa trả lời",
    "Đã thực hiện xong",
)
SHEET_INSPECTIONS = "Kiểm tra, khảo sát"
INSPECTION_HEADER = (
    "Lượt kiểm tra, khảo sát theo kế hoạch",
    "Đã thực hiện",
    "Số việc phải khắc phục",
    "Khắc phục xong đúng hạn",
    "Khắc phục xong quá hạn",
    "Chưa khắc phục xong",
)

SHEET_CONFERENCES = "Hội nghị CBCCVC"
CONFERENCE_STATE_LABELS = {
    "held_on_time": "Đã tổ chức đúng hạn",
    "held_late": "Đã tổ chức quá hạn",
    "missing": "Chưa tổ chức",
}
CONFERENCE_HEADER = ("Tình trạng", "Ngày tổ chức", "Số người tham dự", "Biên bản")


# --- wording --------------------------------------------------------------------------------


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def vn_number(value: float) -> str:
    """1234 → '1.234'; 2.5 → '2,5' (Vietnamese separators)."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}".replace(",", ".")
    whole, _, decimals = f"{value:,.2f}".rstrip("0").partition(".")
    return f"{whole.replace(',', '.')},{decimals}"


def vn_percent(value: float) -> str:
    return f"{value:.1f}".replace(".", ",") + "%"


def vn_long_date(day: date) -> str:
    """'ngày 05 tháng 02 năm 2023', 'ngày 15 tháng 6 năm 2023' (Decree 30, App. I 5.b)."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


def ict_stamp(instant: datetime | None) -> str:
    """dd/mm/yyyy HH:MM in Vietnam time; empty for nothing."""
    return instant.astimezone(ICT).strftime("%d/%m/%Y %H:%M") if instant else ""


def document_symbol(unit_name: str) -> str:
    """Abbreviation after 'BC-': a People's Committee writes UBND; another body its initials
    ('Sở Nội vụ' → SNV, 'Sở Giáo dục và Đào tạo' → SGDĐT)."""
    if is_peoples_committee(unit_name):
        return "UBND"
    words = [w for w in re.split(r"[\s,\-]+", nfc(unit_name)) if w and w.lower() != "và"]
    # The first letter without its tone or vowel marks; Đ has no decomposition and stays.
    initials = "".join(unicodedata.normalize("NFD", w)[0].upper() for w in words)
    return initials or "BC"


def summary_line(c: Consolidation) -> str:
    """'Tổng hợp kết quả thực hiện Quy chế dân chủ ở cơ sở 06 tháng năm 2023'."""
    h = c.heading
    subject = re.sub(r"^kế hoạch\s+", "", nfc(h.plan_title).strip(), flags=re.IGNORECASE)
    subject = re.sub(r"^thực hiện\s+", "", subject, flags=re.IGNORECASE)
    subject = re.sub(r"\s+năm\s+\d{4}$", "", subject)
    year = h.period_end.year
    if h.report_kind == ReportKind.SIX_MONTH:
        return f"Tổng hợp kết quả thực hiện {subject} 06 tháng năm {year}"
    if h.report_kind == ReportKind.ANNUAL:
        return f"Tổng hợp kết quả thực hiện {subject} năm {year}"
    return f"Tổng hợp báo cáo: {nfc(h.plan_title)}"


def plan_reference(c: Consolidation) -> str:
    """'Kế hoạch số 123/KH-UBND về thực hiện Quy chế dân chủ ở cơ sở năm 2023'."""
    title, number = nfc(c.heading.plan_title).strip(), c.heading.plan_doc_number
    if not number:
        return title
    rest = re.sub(r"^kế hoạch\s+", "", title, flags=re.IGNORECASE)
    if rest != title:
        return f"Kế hoạch số {number} về {rest}"
    return f"{title} (số {number})"


def issuer(c: Consolidation) -> str:
    """The receiving unit as the authority issuing the report ('Tỉnh An Bình' issues as
    'Ủy ban nhân dân tỉnh An Bình')."""
    return authority_name(c.receiving_unit.name)


def signer_for(c: Consolidation, signer: Signer) -> Signer:
    """The signer's title when none is given: a committee signs on behalf of its members,
    a department by its director, any other body by its head."""
    if signer.position:
        return signer
    name = c.receiving_unit.name
    if is_peoples_committee(name):
        return Signer("TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH", signer.name)
    if nfc(name).startswith("Sở "):
        return Signer("GIÁM ĐỐC", signer.name)
    return Signer("THỦ TRƯỞNG ĐƠN VỊ", signer.name)


def distribution(c: Consolidation) -> list[str]:
    recipients = []
    if c.receiving_unit.reports_to:
        recipients.append(f"{c.receiving_unit.reports_to} (để báo cáo);")
    recipients.append("Các cơ quan, đơn vị, địa phương báo cáo (để biết);")
    recipients.append("Lưu: VT.")
    return recipients


def kind_label(c: Consolidation, kind: str) -> str:
    found = next((g.label for g in c.by_kind if g.key == kind), "")
    return found or kind


def status_text(s: UnitStatus) -> str:
    text = STATE_LABELS[s.state]
    return f"{text}; bị trả lại để hoàn thiện" if s.returned else text


# --- DOCX: primitives -----------------------------------------------------------------------
#
# A report lists every unit, so its length grows with the province. Written cell by cell
# through python-docx it grew quadratically: ``table.rows[i]`` lists every row of the table
# again on each access, and ``add_paragraph`` looks for the section properties among all
# the body's children on every call. Here each kind of paragraph (a Look) and each kind of
# table row is written once through python-docx, which decides its formatting, and every
# paragraph or row of that kind is a copy of it with its own text, put in place without
# searching the body (:class:`_Body`). The document is the same as python-docx writes it.

_PPR_AFTER_BORDER = (
    "w:shd",
    "w:tabs",
    "w:suppressAutoHyphens",
    "w:spacing",
    "w:ind",
    "w:contextualSpacing",
    "w:jc",
    "w:rPr",
)
_PLACEHOLDER = "0"
_RUN_BREAKS = re.compile(r"[\t\r\n]")
"""Characters python-docx writes as elements of their own (w:tab, w:br), not as text."""


def _setup(doc: DocxDocument) -> None:
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin = section.bottom_margin = Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    for name in ("Normal", "Table Grid"):
        style = doc.styles[name]
        style.font.name = FONT  # type: ignore[attr-defined]
        style.font.size = Pt(BODY_PT)  # type: ignore[attr-defined]
        # Word picks the East Asian and complex-script fonts separately; pin them too.
        fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
        for attribute in ("w:eastAsia", "w:cs"):
            fonts.set(qn(attribute), FONT)
    spacing = doc.styles["Normal"].paragraph_format  # type: ignore[attr-defined]
    spacing.space_before, spacing.space_after, spacing.line_spacing = Pt(0), Pt(6), 1.1


@dataclass(frozen=True)
class Look:
    bold: bool = False
    italic: bool = False
    size: int | None = None
    align: WD_ALIGN_PARAGRAPH | None = None
    indent: bool = False
    after: int | None = None


def _write(paragraph: Paragraph, text: str, look: Look) -> Paragraph:
    if text:
        run = paragraph.add_run(nfc(text))
        run.bold, run.italic = look.bold, look.italic
        if look.size:
            run.font.size = Pt(look.size)
    if look.align is not None:
        paragraph.alignment = look.align
    if look.indent:
        paragraph.paragraph_format.first_line_indent = Mm(12.7)
    if look.after is not None:
        paragraph.paragraph_format.space_after = Pt(look.after)
    return paragraph


def _set_run_text(run: BaseOxmlElement, text: str) -> None:
    """The text of a copied run (``<w:r>…<w:t>0</w:t></w:r>``), as Run.text writes it."""
    text = nfc(text)
    if not text or _RUN_BREAKS.search(text):
        cast(CT_R, run).text = text  # python-docx's own writer: rare, and slower
        return
    t = run[-1]
    t.text = text
    if len(text.strip()) < len(text):
        t.set(qn("xml:space"), "preserve")


def _set_text(p: BaseOxmlElement, text: str) -> None:
    """The text of a copied one-run paragraph, as :func:`_write` writes it: no run when
    there is no text."""
    run = p[-1]
    if text:
        _set_run_text(run, text)
    else:
        p.remove(run)


@dataclass(frozen=True)
class _Shape:
    """What a bordered table's formatting depends on (its texts aside)."""

    widths_mm: tuple[float, ...]
    numeric_from: int | None


def _table_stamp(doc: DocxDocument, shape: _Shape) -> tuple[CT_Tbl, CT_Row]:
    """A bordered table at 12 pt written by python-docx, with its header row (bold,
    centred) and apart from it one model body row (columns from ``numeric_from`` on
    right-aligned), placeholders for texts; taken out of the document to be copied."""
    table = doc.add_table(rows=2, cols=len(shape.widths_mm))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    head, model = table.rows
    for cell in head.cells:
        _first_para(cell, _PLACEHOLDER, bold=True, size=TABLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER)
    for column, cell in enumerate(model.cells):
        numeric = shape.numeric_from is not None and column >= shape.numeric_from
        align = WD_ALIGN_PARAGRAPH.RIGHT if numeric else None
        _first_para(cell, _PLACEHOLDER, size=TABLE_PT, align=align)
    _widths(table, shape.widths_mm)
    _repeat_header(table)
    tbl, model_tr = table._tbl, model._tr
    doc.element.body.remove(tbl)
    tbl.remove(model_tr)
    return tbl, model_tr


def _fill(tr: CT_Row, texts: Sequence[str]) -> None:
    for tc, text in zip(tr.tc_lst, texts, strict=True):
        _set_text(tc[-1], text)


class _Body:
    """The document's body, appended to in constant time: new blocks go just before its
    section properties (which must stay last), found once. Paragraphs and tables are
    copies of stamps written by python-docx, one per look or table shape."""

    def __init__(self, doc: DocxDocument) -> None:
        self.doc = doc
        end = doc.element.body.sectPr
        if end is None:
            raise ValueError("the document template has no section properties")
        self._end = end
        self._paragraphs: dict[Look, CT_P] = {}
        self._tables: dict[_Shape, tuple[CT_Tbl, CT_Row]] = {}
        self._entry: CT_P | None = None

    def _detached(self) -> Paragraph:
        return Paragraph(cast(CT_P, OxmlElement("w:p")), self.doc)

    def _place(self, p: CT_P) -> Paragraph:
        self._end.addprevious(p)
        return Paragraph(p, self.doc)

    def paragraph(self, text: str, look: Look) -> Paragraph:
        stamp = self._paragraphs.get(look)
        if stamp is None:
            stamp = self._paragraphs[look] = _write(self._detached(), _PLACEHOLDER, look)._p
        p = deepcopy(stamp)
        _set_text(p, text)
        return self._place(p)

    def entry(self, lead: str, text: str) -> Paragraph:
        """An indented paragraph: ``lead`` in bold, then ``text``."""
        if self._entry is None:
            paragraph = _write(self._detached(), "", Look(indent=True))
            paragraph.add_run(_PLACEHOLDER).bold = True
            paragraph.add_run(_PLACEHOLDER)
            self._entry = paragraph._p
        p = deepcopy(self._entry)
        _set_run_text(p[-2], lead)
        _set_run_text(p[-1], text)
        return self._place(p)

    def grid(self, shape: _Shape, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        stamp = self._tables.get(shape)
        if stamp is None:
            stamp = self._tables[shape] = _table_stamp(self.doc, shape)
        tbl, model = deepcopy(stamp[0]), stamp[1]
        _fill(tbl.tr_lst[0], header)
        for texts in rows:
            tr = deepcopy(model)
            _fill(tr, texts)
            tbl.append(tr)
        self._end.addprevious(tbl)

    def table(self, rows: int, cols: int) -> Table:
        """A table written through python-docx (the heading and the signature blocks)."""
        table: Table = self.doc.add_table(rows=rows, cols=cols)
        return table


def _para(
    container: _Body | _Cell,
    text: str = "",
    *,
    bold: bool = False,
    italic: bool = False,
    size: int | None = None,
    align: WD_ALIGN_PARAGRAPH | None = None,
    indent: bool = False,
    after: int | None = None,
) -> Paragraph:
    look = Look(bold, italic, size, align, indent, after)
    if isinstance(container, _Body):
        return container.paragraph(text, look)
    return _write(container.add_paragraph(), text, look)


def _first_para(
    cell: _Cell,
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    size: int | None = None,
    align: WD_ALIGN_PARAGRAPH | None = None,
) -> Paragraph:
    """Write into a cell's own first paragraph instead of adding a blank line above."""
    return _write(cell.paragraphs[0], text, Look(bold, italic, size, align, after=0))


def _rule(paragraph: Paragraph, width_mm: float, cell_mm: float) -> None:
    """A short horizontal rule, centred under the line above: the paragraph's top border,
    narrowed by equal indents (Decree 30 draws these under the issuing body, the motto and
    the summary line)."""
    indent = max(0.0, (cell_mm - width_mm) / 2)
    paragraph.paragraph_format.left_indent = Mm(indent)
    paragraph.paragraph_format.right_indent = Mm(indent)
    paragraph.paragraph_format.space_after = Pt(0)
    borders = OxmlElement("w:pBdr")
    top = OxmlElement("w:top")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "auto")):
        top.set(qn(key), value)
    borders.append(top)
    paragraph._p.get_or_add_pPr().insert_element_before(borders, *_PPR_AFTER_BORDER)


def _widths(table: Table, widths_mm: Sequence[float]) -> None:
    """Column widths in both places: the grid (LibreOffice reads it) and every cell (Word)."""
    table.autofit = False
    for column, width in zip(table.columns, widths_mm, strict=True):
        column.width = Mm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths_mm, strict=True):
            cell.width = Mm(width)


def _repeat_header(table: Table) -> None:
    """Repeat the header row on every page a long table runs over."""
    row_properties = table.rows[0]._tr.get_or_add_trPr()
    row_properties.append(OxmlElement("w:tblHeader"))


def _grid(
    out: _Body,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    widths_mm: Sequence[float],
    numeric_from: int | None = None,
) -> None:
    """A bordered table at 12 pt: bold centred header; columns from ``numeric_from`` on are
    right-aligned numbers. A blank line follows."""
    out.grid(_Shape(tuple(widths_mm), numeric_from), header, rows)
    _para(out, after=0)


# --- DOCX: sections -------------------------------------------------------------------------

LEFT_MM, RIGHT_MM = 68.0, TEXT_WIDTH_MM - 68.0


def _heading_block(out: _Body, c: Consolidation) -> None:
    table = out.table(rows=1, cols=2)
    left, right = table.rows[0].cells
    unit = c.receiving_unit
    center = WD_ALIGN_PARAGRAPH.CENTER
    lines = issuer_lines(unit.name, unit.governing_body)
    if unit.governing_body:
        _first_para(left, lines[0], size=13, align=center)
    else:
        _first_para(left, lines[0], bold=True, size=13, align=center)
    for line in lines[1:]:
        _para(left, line, bold=True, size=13, align=center, after=0)
    _rule(_para(left, after=0), 22, LEFT_MM)
    symbol = document_symbol(unit.name)
    _para(left, f"Số:        /BC-{symbol}", size=13, align=center)
    _first_para(right, NATIONAL_TITLE, bold=True, size=12, align=center)
    _para(right, MOTTO, bold=True, size=13, align=center, after=0)
    _rule(_para(right, after=0), 60, RIGHT_MM)
    place = unit.locality or "……"
    dated = f"{place}, {vn_long_date(c.as_of.astimezone(ICT).date())}"
    _para(right, dated, italic=True, size=13, align=center)
    _widths(table, (LEFT_MM, RIGHT_MM))


def _abbreviated(name: str) -> str:
    """'Ủy ban nhân dân tỉnh An Bình' (or 'Tỉnh An Bình') → 'UBND tỉnh An Bình', as
    governing bodies are written."""
    if is_peoples_committee(name):
        return f"UBND {committee_locality(name)}"
    return name


def issuer_lines(name: str, governing_body: str = "") -> list[str]:
    """The issuing body's lines at the top left (Decree 30/2020/NĐ-CP, App. I, II.3), upper
    case: the governing authority, abbreviated ('UBND TỈNH AN BÌNH'), above the body's own
    name ('SỞ NỘI VỤ'); a People's Committee, which has none above it, on two lines
    ('ỦY BAN NHÂN DÂN' above 'TỈNH AN BÌNH')."""
    if governing_body:
        return [_abbreviated(governing_body).upper(), authority_name(name).upper()]
    locality = committee_locality(name)
    if locality:
        return [PEOPLES_COMMITTEE.upper(), locality.upper()]
    return [authority_name(name).upper()]


def _title_block(out: _Body, c: Consolidation, edition: Edition) -> None:
    center = WD_ALIGN_PARAGRAPH.CENTER
    _para(out, after=0)
    _para(out, "BÁO CÁO", bold=True, align=center, after=0)
    _para(out, summary_line(c), bold=True, align=center, after=0)
    _rule(_para(out, after=6), 40, TEXT_WIDTH_MM)
    if edition.version is not None:
        note = f"(Bản tổng hợp lần thứ {edition.version}, lập lúc {ict_stamp(c.as_of)})"
        _para(out, note, italic=True, size=13, align=center)
    h = c.heading
    _para(
        out,
        f"Thực hiện {plan_reference(c)}, {issuer(c)} tổng hợp tình hình và "
        "kết quả báo cáo của các cơ quan, đơn vị, địa phương (kỳ số liệu từ "
        f"{h.period_start:%d/%m/%Y} đến {h.period_end:%d/%m/%Y}; hạn nộp báo cáo đến hết ngày "
        f"{h.due_at.astimezone(ICT):%d/%m/%Y}; số liệu tính đến {ict_stamp(c.as_of)}) "
        "như sau:",
        indent=True,
    )


def _submission_section(out: _Body, c: Consolidation) -> None:
    _para(out, "I. TÌNH HÌNH NỘP BÁO CÁO", bold=True)
    n, r = c.counts, c.rates
    rows = [
        ("1", "Số đơn vị phải báo cáo", vn_number(n.expected), ""),
        (
            "2",
            "Số đơn vị đã nộp báo cáo",
            vn_number(n.received),
            vn_percent(r.completeness_percent),
        ),
        ("3", "Số đơn vị nộp đúng hạn", vn_number(n.on_time), vn_percent(r.timeliness_percent)),
        ("4", "Số đơn vị nộp muộn", vn_number(n.late), ""),
        ("5", "Số đơn vị chưa nộp", vn_number(n.missing), ""),
        ("6", "Số báo cáo bị trả lại để hoàn thiện", vn_number(n.returned), ""),
    ]
    _grid(out, ("TT", "Nội dung", "Số đơn vị", "Tỷ lệ"), rows, (12, 98, 25, 30), numeric_from=2)
    _para(
        out,
        f"Tỷ lệ đầy đủ (số đã nộp trên số phải báo cáo): {vn_percent(r.completeness_percent)}; "
        f"tỷ lệ đúng hạn (số nộp đúng hạn trên số phải báo cáo): "
        f"{vn_percent(r.timeliness_percent)}.",
        indent=True,
    )
    for label, units in (
        ("Các đơn vị chưa nộp báo cáo", c.units.missing),
        ("Các đơn vị nộp muộn", c.units.late),
        ("Các báo cáo bị trả lại để hoàn thiện", c.units.returned),
    ):
        if units:
            _para(out, f"- {label}: {', '.join(u.name for u in units)}.", indent=True)
    _para(out, "Chi tiết tình hình nộp báo cáo của từng đơn vị:", indent=True)
    rows_detail = [
        (str(i), s.name, kind_label(c, s.kind), status_text(s), ict_stamp(s.submitted_at))
        for i, s in enumerate(c.status, start=1)
    ]
    header = ("TT", "Đơn vị", "Loại đơn vị", "Tình trạng", "Thời điểm nộp")
    _grid(out, header, rows_detail, (10, 55, 30, 38, 32))


def _indicator_rows(indicators: Sequence[IndicatorTotal]) -> list[tuple[str, str, str, str]]:
    return [
        (str(i), t.label, t.unit, vn_number(t.total)) for i, t in enumerate(indicators, start=1)
    ]


def _breakdown(out: _Body, c: Consolidation, groups: Sequence[GroupTotals]) -> None:
    """One table per GROUP_COLUMNS_PER_TABLE groups: indicators down, groups across. Only
    indicators someone reported: rows of zeros would bury the figures (the general table
    above lists them all)."""
    reported = [(i, t) for i, t in enumerate(c.indicators, start=1) if t.reported_by]
    if not reported:
        _para(out, "Chưa có số liệu.", indent=True)
        return
    for start in range(0, len(groups), GROUP_COLUMNS_PER_TABLE):
        chunk = groups[start : start + GROUP_COLUMNS_PER_TABLE]
        label_mm = 60.0
        column_mm = (TEXT_WIDTH_MM - 10 - label_mm) / len(chunk)
        header = [
            "TT",
            "Chỉ tiêu",
            *[f"{_abbreviated(g.label)} ({g.reports}/{g.expected} báo cáo)" for g in chunk],
        ]
        rows = [
            [str(i), t.label, *[vn_number(g.totals.get(t.code, 0)) for g in chunk]]
            for i, t in reported
        ]
        _grid(out, header, rows, (10, label_mm, *[column_mm] * len(chunk)), numeric_from=2)


def _indicator_section(out: _Body, c: Consolidation) -> None:
    _para(out, "II. KẾT QUẢ THỰC HIỆN CÁC CHỈ TIÊU", bold=True)
    _para(
        out,
        f"Số liệu tổng hợp từ {c.reports_counted} báo cáo (phiên bản mới nhất của mỗi đơn vị; "
        "không tính các báo cáo đang bị trả lại để hoàn thiện).",
        indent=True,
    )
    _para(out, "1. Tổng hợp chung", bold=True, indent=True)
    header = ("TT", "Chỉ tiêu", "Đơn vị tính", "Tổng số")
    _grid(out, header, _indicator_rows(c.indicators), (10, 100, 30, 25), numeric_from=3)
    _para(out, "2. Theo loại đơn vị", bold=True, indent=True)
    _breakdown(out, c, c.by_kind)
    _para(out, "3. Theo đơn vị hành chính cấp huyện", bold=True, indent=True)
    _breakdown(out, c, c.by_district)


def _narrative_section(out: _Body, c: Consolidation) -> None:
    _para(out, "III. KẾT QUẢ THỰC HIỆN THEO CÁC NỘI DUNG CỦA KẾ HOẠCH", bold=True)
    if not c.narratives:
        _para(out, "Chưa có nội dung báo cáo của các đơn vị.", indent=True)
    for area in c.narratives:
        title = f"{area.code}. {area.title}" if area.title else f"Nội dung {area.code}"
        _para(out, title, bold=True, indent=True)
        for entry in area.entries:
            lines = [line.strip() for line in entry.text.splitlines() if line.strip()]
            out.entry(f"- {entry.unit_name}: ", lines[0] if lines else "")
            for line in lines[1:]:
                _para(out, line, indent=True)


class _UnitRow(Protocol):
    @property
    def name(self) -> str: ...


def _tally_rows(
    by_unit: Sequence[_UnitRow], total: object, figures: Callable[[Any], list[int]]
) -> list[tuple[str, ...]]:
    """A table of counts: one numbered row per unit, then the total (``figures``: a row's
    counts, in the header's order)."""
    rows = [
        (str(i), u.name, *[vn_number(v) for v in figures(u)])
        for i, u in enumerate(by_unit, start=1)
    ]
    rows.append(("", "Tổng cộng", *[vn_number(v) for v in figures(total)]))
    return rows


def _tally_table(
    out: _Body,
    intro: str,
    header: Sequence[str],
    rows: list[tuple[str, ...]],
    widths_mm: Sequence[float],
) -> None:
    """A paragraph saying what is counted, then the table (the units' rows, the total)."""
    _para(out, intro, indent=True)
    _grid(out, ("TT", "Đơn vị", *header), rows, widths_mm, numeric_from=2)


def _recommendation_figures(n: RecommendationCounts) -> list[int]:
    return [n.received, n.answered_on_time, n.answered_late, n.unanswered, n.implemented]


def _recommendation_section(out: _Body, c: Consolidation) -> None:
    _para(out, "IV. VIỆC TRẢ LỜI, THỰC HIỆN KIẾN NGHỊ SAU GIÁM SÁT", bold=True)
    r = c.recommendations
    if not r.total.received:
        _para(out, "Trong kỳ, các đơn vị không nhận được kiến nghị sau giám sát.", indent=True)
        return
    intro = (
        "Kiến nghị của Mặt trận Tổ quốc Việt Nam và các tổ chức chính trị - xã hội sau giám "
        "sát, gửi các đơn vị trong kỳ số liệu:"
    )
    rows = _tally_rows(r.by_unit, r.total, _recommendation_figures)
    _tally_table(out, intro, RECOMMENDATION_HEADER, rows, (10, 50, 21, 21, 21, 21, 21))


def _inspection_figures(n: InspectionCounts) -> list[int]:
    return [
        n.scheduled,
        n.done,
        n.actions_required,
        n.actions_closed_on_time,
        n.actions_closed_late,
        n.actions_open,
    ]


def _inspection_section(out: _Body, c: Consolidation) -> None:
    _para(out, "V. CÔNG TÁC KIỂM TRA, KHẢO SÁT VÀ VIỆC KHẮC PHỤC SAU KIỂM TRA", bold=True)
    n = c.inspections
    if not n.total.scheduled:
        _para(
            out,
            "Trong kỳ, không có cuộc kiểm tra, khảo sát việc thực hiện Quy chế dân chủ ở cơ sở "
            "tại các đơn vị.",
            indent=True,
        )
        return
    intro = (
        "Kiểm tra, khảo sát việc thực hiện Quy chế dân chủ ở cơ sở tại các đơn vị theo kế "
        "hoạch trong kỳ số liệu và việc khắc phục những tồn tại, hạn chế được chỉ ra:"
    )
    rows = _tally_rows(n.by_unit, n.total, _inspection_figures)
    _tally_table(out, intro, INSPECTION_HEADER, rows, (10, 45, 18, 18, 18, 18, 18, 20))


def conference_state_text(u: UnitConference) -> str:
    text = CONFERENCE_STATE_LABELS.get(u.state, u.state)
    return f"{text} (đã quá hạn)" if u.overdue else text


def _conference_cells(u: UnitConference) -> list[str]:
    return [
        conference_state_text(u),
        f"{u.held_on:%d/%m/%Y}" if u.held_on else "",
        vn_number(u.participants) if u.participants else "",
        "Có" if u.minutes else "Chưa có",
    ]


def conference_total_line(c: Consolidation) -> str:
    n = c.conferences.total
    return (
        f"{n.held}/{n.expected} đơn vị đã tổ chức (đúng hạn {n.held_on_time}, quá hạn "
        f"{n.held_late}); {n.missing} đơn vị chưa tổ chức"
        + (f", trong đó {n.overdue} đơn vị đã quá hạn" if n.overdue else "")
    )


def _conference_section(out: _Body, c: Consolidation) -> None:
    """Staff conferences of the plan followed up by the receiving unit; none: no section."""
    if not c.conferences.total.expected:
        return
    _para(
        out,
        "VI. TỔ CHỨC HỘI NGHỊ CÁN BỘ, CÔNG CHỨC, VIÊN CHỨC VÀ NGƯỜI LAO ĐỘNG",
        bold=True,
    )
    due = c.conferences.by_unit[0].due_at.astimezone(ICT)
    _para(
        out,
        f"Hội nghị cán bộ, công chức, viên chức và người lao động năm {due.year} của các cơ "
        f"quan, đơn vị (hạn tổ chức: hết ngày {due:%d/%m/%Y}): {conference_total_line(c)}.",
        indent=True,
    )
    rows = [
        (str(i), u.name, *_conference_cells(u))
        for i, u in enumerate(c.conferences.by_unit, start=1)
    ]
    header = ("TT", "Đơn vị", *CONFERENCE_HEADER)
    _grid(out, header, rows, (10, 55, 40, 25, 20, 15), numeric_from=4)


def _closing(out: _Body, c: Consolidation, signer: Signer) -> None:
    summary = summary_line(c)
    _para(
        out,
        f"Trên đây là báo cáo {summary[0].lower()}{summary[1:]} của {issuer(c)}./.",
        indent=True,
    )
    table = out.table(rows=1, cols=2)
    left, right = table.rows[0].cells
    _first_para(left, "Nơi nhận:", bold=True, italic=True, size=12)
    for line in distribution(c):
        _para(left, f"- {line}", size=11, after=0)
    signing = signer_for(c, signer)
    center = WD_ALIGN_PARAGRAPH.CENTER
    lines = signing.position.split("\n")
    _first_para(right, lines[0], bold=True, size=BODY_PT, align=center)
    for line in lines[1:]:
        _para(right, line, bold=True, align=center, after=0)
    for _ in range(4):  # room for the signature and the seal
        _para(right, after=0)
    _para(right, signing.name or "", bold=True, align=center)
    _widths(table, (85, TEXT_WIDTH_MM - 85))


def render_docx(
    consolidation: Consolidation, *, signer: Signer | None = None, edition: Edition | None = None
) -> bytes:
    doc = Document()
    _setup(doc)
    out = _Body(doc)
    _heading_block(out, consolidation)
    _title_block(out, consolidation, edition or Edition())
    _submission_section(out, consolidation)
    _indicator_section(out, consolidation)
    _narrative_section(out, consolidation)
    _recommendation_section(out, consolidation)
    _inspection_section(out, consolidation)
    _conference_section(out, consolidation)
    _closing(out, consolidation, signer or Signer())
    doc.core_properties.title = nfc(summary_line(consolidation))
    doc.core_properties.author = nfc(issuer(consolidation))
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


# --- XLSX -----------------------------------------------------------------------------------

_BOLD = Font(name=FONT, bold=True, size=12)
_PLAIN = Font(name=FONT, size=12)
_WRAP = Alignment(wrap_text=True, vertical="top")


class _Cells:
    """Cells of one style for a write-only sheet. Setting a font and an alignment on a cell
    looks both up in the workbook's style tables, per cell; here a model cell is styled
    once and every cell starts with a copy of its style.

    Text is always a text cell: openpyxl would write a text beginning with "=" as a
    formula (and "#N/A" as an error), so a unit named ``=HYPERLINK(…)`` would become a live
    link in Home Affairs' spreadsheet. A text a spreadsheet would read as a formula also
    gets the quote prefix, so it stays text when the cell is edited (shared.spreadsheets)."""

    def __init__(self, sheet: Any, font: Font) -> None:
        model = WriteOnlyCell(sheet)
        model.font, model.alignment = font, _WRAP
        self._sheet, self._style = sheet, copy(model._style)
        model.quotePrefix = True
        self._quoted = model._style

    def __call__(self, value: object) -> Cell:
        if not isinstance(value, str):
            return Cell(self._sheet, row=1, column=1, value=value, style_array=self._style)
        text = nfc(value)
        style = self._quoted if reads_as_formula(text) else self._style
        cell = Cell(self._sheet, row=1, column=1, value=text, style_array=style)
        cell.data_type = "s"
        return cell


def _sheet(
    workbook: Workbook,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    widths: Sequence[int],
) -> None:
    """A sheet written row by row (the workbook is write-only): a bold header row, frozen,
    then the rows, every cell in Times New Roman 12, wrapped, aligned to the top."""
    sheet = workbook.create_sheet(title)
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"
    bold, plain = _Cells(sheet, _BOLD), _Cells(sheet, _PLAIN)
    sheet.append([bold(h) for h in header])
    for row in rows:
        sheet.append([plain(v) for v in row])


def _summary_rows(c: Consolidation) -> list[tuple[str, object]]:
    h, n, r = c.heading, c.counts, c.rates
    return [
        ("Đơn vị tổng hợp", issuer(c)),
        (
            "Kế hoạch",
            f"{h.plan_title} ({h.plan_doc_number})" if h.plan_doc_number else h.plan_title,
        ),
        ("Loại báo cáo", KIND_LABELS.get(h.report_kind, h.report_kind)),
        ("Kỳ số liệu", f"{h.period_start:%d/%m/%Y} - {h.period_end:%d/%m/%Y}"),
        ("Hạn nộp (ICT)", ict_stamp(h.due_at)),
        ("Số liệu tính đến (ICT)", ict_stamp(c.as_of)),
        ("Số đơn vị phải báo cáo", n.expected),
        ("Số đơn vị đã nộp", n.received),
        ("Số đơn vị nộp đúng hạn", n.on_time),
        ("Số đơn vị nộp muộn", n.late),
        ("Số đơn vị chưa nộp", n.missing),
        ("Số báo cáo bị trả lại", n.returned),
        ("Tỷ lệ đầy đủ (%)", r.completeness_percent),
        ("Tỷ lệ đúng hạn (%)", r.timeliness_percent),
        ("Số báo cáo được tổng hợp số liệu", c.reports_counted),
    ]


def _status_rows(c: Consolidation) -> list[list[object]]:
    def on_time(s: UnitStatus) -> str:
        return "" if s.on_time is None else "Có" if s.on_time else "Không"

    return [
        [
            s.code,
            s.name,
            kind_label(c, s.kind),
            s.district_name,
            status_text(s),
            ict_stamp(s.submitted_at),
            on_time(s),
            s.receipt_number or "",
            REVIEW_LABELS.get(s.review, s.review),
            s.latest_version or "",
        ]
        for s in c.status
    ]


def _indicator_sheet_rows(c: Consolidation) -> list[list[object]]:
    groups = [*c.by_kind, *c.by_district]
    return [
        [t.code, t.label, t.unit, t.total, *[g.totals.get(t.code, 0) for g in groups]]
        for t in c.indicators
    ]


def _recommendation_sheet_rows(c: Consolidation) -> list[list[object]]:
    r = c.recommendations
    return [
        *[[u.code, u.name, *_recommendation_figures(u)] for u in r.by_unit],
        ["", "Tổng cộng", *_recommendation_figures(r.total)],
    ]


def _inspection_sheet_rows(c: Consolidation) -> list[list[object]]:
    n = c.inspections
    return [
        *[[u.code, u.name, *_inspection_figures(u)] for u in n.by_unit],
        ["", "Tổng cộng", *_inspection_figures(n.total)],
    ]


def _conference_sheet_rows(c: Consolidation) -> list[list[object]]:
    n = c.conferences.total
    units: list[list[object]] = [
        [
            u.code,
            u.name,
            conference_state_text(u),
            f"{u.held_on:%d/%m/%Y}" if u.held_on else "",
            u.participants if u.participants is not None else "",
            u.minutes,
            ict_stamp(u.due_at),
        ]
        for u in c.conferences.by_unit
    ]
    return [
        *units,
        ["", "Tổng số đơn vị phải tổ chức", n.expected, "", "", "", ""],
        ["", "Đã tổ chức đúng hạn", n.held_on_time, "", "", "", ""],
        ["", "Đã tổ chức quá hạn", n.held_late, "", "", "", ""],
        ["", "Chưa tổ chức", n.missing, "", "", "", ""],
    ]


def _conference_sheet(workbook: Workbook, c: Consolidation) -> None:
    if not c.conferences.total.expected:
        return
    header = (
        "Mã đơn vị",
        "Tên đơn vị",
        "Tình trạng",
        "Ngày tổ chức",
        "Số người tham dự",
        "Số tệp biên bản",
        "Hạn tổ chức (ICT)",
    )
    widths = (14, 40, 30, 14, 16, 14, 18)
    _sheet(workbook, SHEET_CONFERENCES, header, _conference_sheet_rows(c), widths)


def render_xlsx(consolidation: Consolidation) -> bytes:
    c = consolidation
    workbook = Workbook(write_only=True)
    _sheet(workbook, SHEET_SUMMARY, ("Nội dung", "Giá trị"), _summary_rows(c), (40, 70))
    status_header = (
        "Mã đơn vị",
        "Tên đơn vị",
        "Loại đơn vị",
        "Đơn vị cấp huyện",
        "Tình trạng",
        "Thời điểm nộp (ICT)",
        "Đúng hạn",
        "Số tiếp nhận",
        "Kết quả xem xét",
        "Phiên bản mới nhất",
    )
    status_widths = (14, 40, 22, 30, 24, 18, 10, 16, 20, 10)
    _sheet(workbook, SHEET_STATUS, status_header, _status_rows(c), status_widths)
    group_header = [f"Loại: {g.label}" for g in c.by_kind] + [
        f"Địa bàn: {g.label}" for g in c.by_district
    ]
    header = ("Mã chỉ tiêu", "Chỉ tiêu", "Đơn vị tính", "Tổng số", *group_header)
    indicator_widths = (28, 60, 12, 10, *[18] * len(group_header))
    _sheet(workbook, SHEET_INDICATORS, header, _indicator_sheet_rows(c), indicator_widths)
    recommendation_header = ("Mã đơn vị", "Tên đơn vị", *RECOMMENDATION_HEADER)
    _sheet(
        workbook,
        SHEET_RECOMMENDATIONS,
        recommendation_header,
        _recommendation_sheet_rows(c),
        (14, 40, *[16] * len(RECOMMENDATION_HEADER)),
    )
    _sheet(
        workbook,
        SHEET_INSPECTIONS,
        ("Mã đơn vị", "Tên đơn vị", *INSPECTION_HEADER),
        _inspection_sheet_rows(c),
        (14, 40, *[16] * len(INSPECTION_HEADER)),
    )
    _conference_sheet(workbook, c)
    workbook.properties.title = nfc(summary_line(c))
    workbook.properties.creator = nfc(issuer(c))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
