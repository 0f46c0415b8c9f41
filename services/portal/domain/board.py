"""The compliance board of one plan entry and receiving unit: every expected unit with its
status, the rates, a chart of reports received per day against the deadline, and the list
as CSV. Pure: the consolidation's JSON in (GET /consolidations), view data out.

Statuses, as officials name them: a unit whose latest report was sent back is **trả lại**;
one whose report was accepted is **đã tiếp nhận**; otherwise its first submission decides
**đúng hạn** or **nộp muộn**, and a unit that sent nothing is **chưa nộp**. Each status has
a colour and always its words and a symbol beside it (never colour alone, WCAG 1.4.1).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from xml.sax.saxutils import escape

from services.portal.domain.labels import KIND_LABELS, label, moment, parse_instant
from shared.vntime import ICT


class BoardStatus(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    MISSING = "missing"
    RETURNED = "returned"
    ACCEPTED = "accepted"


STATUS_LABELS = {
    BoardStatus.ON_TIME: "Đúng hạn",
    BoardStatus.LATE: "Nộp muộn",
    BoardStatus.MISSING: "Chưa nộp",
    BoardStatus.RETURNED: "Trả lại",
    BoardStatus.ACCEPTED: "Đã tiếp nhận",
}
STATUS_SYMBOLS = {
    BoardStatus.ON_TIME: "✓",
    BoardStatus.LATE: "!",
    BoardStatus.MISSING: "✗",
    BoardStatus.RETURNED: "↺",
    BoardStatus.ACCEPTED: "✔",
}


@dataclass(frozen=True)
class BoardRow:
    code: str
    name: str
    kind: str
    district_code: str
    district_name: str
    status: BoardStatus
    on_time: bool | None
    submitted_at: datetime | None
    receipt_number: str
    latest_version: int

    @property
    def status_label(self) -> str:
        label_ = STATUS_LABELS[self.status]
        if self.status is BoardStatus.ACCEPTED and self.on_time is not None:
            label_ += " (đúng hạn)" if self.on_time else " (nộp muộn)"
        return label_

    @property
    def symbol(self) -> str:
        return STATUS_SYMBOLS[self.status]

    @property
    def kind_label(self) -> str:
        return label(KIND_LABELS, self.kind)


def status_of(entry: Mapping[str, Any]) -> BoardStatus:
    if entry.get("returned"):
        return BoardStatus.RETURNED
    if entry.get("review") == "accepted":
        return BoardStatus.ACCEPTED
    return BoardStatus(entry["state"])


def rows_of(consolidation: Mapping[str, Any]) -> list[BoardRow]:
    return [
        BoardRow(
            code=entry["code"],
            name=entry["name"],
            kind=entry.get("kind", ""),
            district_code=entry.get("district_code") or "",
            district_name=entry.get("district_name") or "",
            status=status_of(entry),
            on_time=entry.get("on_time"),
            submitted_at=parse_instant(entry.get("submitted_at")),
            receipt_number=entry.get("receipt_number") or "",
            latest_version=int(entry.get("latest_version") or 0),
        )
        for entry in consolidation.get("status", [])
    ]


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    district: str = ""
    status: str = ""

    def keep(self, row: BoardRow) -> bool:
        return (
            (not self.kind or row.kind == self.kind)
            and (not self.district or row.district_code == self.district)
            and (not self.status or row.status.value == self.status)
        )


def choices(rows: Iterable[BoardRow]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(kind, label) and (district code, name) present among the rows, for the filters."""
    rows = list(rows)
    kinds = sorted({(r.kind, r.kind_label) for r in rows if r.kind}, key=lambda k: k[1])
    districts = sorted(
        {(r.district_code, r.district_name) for r in rows if r.district_code}, key=lambda d: d[1]
    )
    return kinds, districts


@dataclass(frozen=True)
class Tally:
    expected: int
    counts: dict[BoardStatus, int]
    received: int
    on_time: int

    @property
    def completeness_percent(self) -> float:
        return _percent(self.received, self.expected)

    @property
    def timeliness_percent(self) -> float:
        return _percent(self.on_time, self.expected)


def _percent(part: int, whole: int) -> float:
    """Half-up to one decimal, as the consolidation rounds (docs/reports.md)."""
    if not whole:
        return 0.0
    return ((2 * 1000 * part + whole) // (2 * whole)) / 10


def tally(rows: Sequence[BoardRow]) -> Tally:
    counts = Counter(r.status for r in rows)
    received = sum(1 for r in rows if r.status is not BoardStatus.MISSING)
    on_time = sum(1 for r in rows if r.on_time)
    return Tally(len(rows), {s: counts.get(s, 0) for s in BoardStatus}, received, on_time)


def percent_text(value: float) -> str:
    """12.5 → "12,5%": Vietnamese writes a decimal comma."""
    return f"{value:.1f}".replace(".", ",") + "%"


# --- the chart ------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, MARGIN = 640, 220, 36
MAX_DAYS = 200
"""Days shown at most: every submission of a half-year period fits, one bar a day."""


def received_per_day(rows: Iterable[BoardRow]) -> Counter[date]:
    return Counter(r.submitted_at.astimezone(ICT).date() for r in rows if r.submitted_at)


def chart_svg(rows: Sequence[BoardRow], due_at: datetime, today: date) -> str:
    """Bars of first submissions per day (ICT) and a line at the deadline, as inline SVG with
    a title and a description for screen readers."""
    per_day = received_per_day(rows)
    due_day = due_at.astimezone(ICT).date()
    last = max([due_day, today, *per_day])
    first = max(min([due_day - timedelta(days=14), *per_day]), last - timedelta(days=MAX_DAYS))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    top = max([1, *(per_day.get(d, 0) for d in days)])
    step = (CHART_WIDTH - 2 * MARGIN) / len(days)
    plot_h = CHART_HEIGHT - 2 * MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        'role="img" aria-labelledby="chart-title chart-desc" class="chart">',
        '<title id="chart-title">Số báo cáo nhận được theo ngày</title>',
        f'<desc id="chart-desc">{escape(_describe(per_day, due_day))}</desc>',
        f'<line x1="{MARGIN}" y1="{CHART_HEIGHT - MARGIN}" x2="{CHART_WIDTH - MARGIN}" '
        f'y2="{CHART_HEIGHT - MARGIN}" class="axis"/>',
        f'<text x="{MARGIN - 6}" y="{MARGIN + 4}" text-anchor="end" class="tick">{top}</text>',
        f'<text x="{MARGIN - 6}" y="{CHART_HEIGHT - MARGIN}" text-anchor="end" '
        'class="tick">0</text>',
    ]
    for i, d in enumerate(days):
        count = per_day.get(d, 0)
        height = plot_h * count / top
        x = MARGIN + i * step
        if count:
            parts.append(
                f'<rect x="{x + step * 0.15:.1f}" y="{CHART_HEIGHT - MARGIN - height:.1f}" '
                f'width="{max(step * 0.7, 1):.1f}" height="{height:.1f}" class="bar">'
                f"<title>{d.strftime('%d/%m/%Y')}: {count} báo cáo</title></rect>"
            )
        if i % max(1, len(days) // 6) == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{CHART_HEIGHT - MARGIN + 16}" '
                f'text-anchor="middle" class="tick">{d.strftime("%d/%m")}</text>'
            )
    if first <= due_day <= last:
        x = MARGIN + (days.index(due_day) + 1) * step
        parts.append(
            f'<line x1="{x:.1f}" y1="{MARGIN - 10}" x2="{x:.1f}" y2="{CHART_HEIGHT - MARGIN}" '
            'class="deadline"/>'
            f'<text x="{x - 4:.1f}" y="{MARGIN - 14}" text-anchor="end" class="deadline-label">'
            f"Hạn: hết ngày {due_day.strftime('%d/%m/%Y')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _describe(per_day: Counter[date], due_day: date) -> str:
    on_or_before = sum(n for d, n in per_day.items() if d <= due_day)
    after = sum(n for d, n in per_day.items() if d > due_day)
    return (
        f"{on_or_before} báo cáo nhận đến hết ngày {due_day.strftime('%d/%m/%Y')} (hạn), "
        f"{after} báo cáo nhận sau hạn."
    )


# --- export ---------------------------------------------------------------------------------

CSV_HEADER = (
    "Mã đơn vị",
    "Tên đơn vị",
    "Loại đơn vị",
    "Đơn vị cấp huyện",
    "Trạng thái",
    "Thời điểm nộp lần đầu",
    "Số biên nhận",
    "Phiên bản mới nhất",
)


def _cell(value: object) -> object:
    """Text a spreadsheet would take for a formula (=, +, -, @) is kept as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def board_csv(rows: Iterable[BoardRow]) -> str:
    """The list as CSV with a byte-order mark, so that spreadsheet programs read UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in rows:
        row = (
            r.code,
            r.name,
            r.kind_label,
            r.district_name,
            r.status_label,
            moment(r.submitted_at),
            r.receipt_number,
            r.latest_version or "",
        )
        writer.writerow([_cell(value) for value in row])
    return "\ufeff" + out.getvalue()
