"""Oversight the plan asks for, as the portal shows it per unit: the annual staff conference
(hội nghị cán bộ, công chức, viên chức và người lao động) held or missing, and the
recommendations after supervision (kiến nghị sau giám sát) received, answered on time or
late, unanswered, implemented. Pure: the reports service's JSON in, view rows out.

Every state has its words and a symbol (never colour alone). The public rows carry no
personal data: units, organisations, topics and dates only, never a text an official wrote
or who wrote it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

CONFERENCE_KEY = "staff_conference"
CONFERENCE_TITLE = "Hội nghị cán bộ, công chức, viên chức và người lao động"
CONFERENCE_LABELS = {
    "held_on_time": "Đã tổ chức đúng hạn",
    "held_late": "Đã tổ chức quá hạn",
    "missing": "Chưa tổ chức",
    "waived": "Không phải tổ chức",
}
CONFERENCE_SYMBOLS = {"held_on_time": "✓", "held_late": "!", "missing": "✗", "waived": "–"}
CONFERENCE_BADGES = {
    "held_on_time": "on_time",
    "held_late": "late",
    "missing": "missing",
    "waived": "accepted",
}
"""The board's badge colours (st-<status>) for each conference state."""
RECOMMENDATION_LABELS = {
    "awaiting_answer": "Chờ trả lời",
    "answered": "Đã trả lời, đang thực hiện",
    "closed": "Đã thực hiện xong",
}


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


@dataclass(frozen=True)
class ConferenceRow:
    code: str
    name: str
    state: str
    held_on: date | None
    overdue: bool

    @property
    def label(self) -> str:
        text = CONFERENCE_LABELS.get(self.state, self.state)
        if self.held_on is not None:
            text += f" (ngày {self.held_on:%d/%m/%Y})"
        return text + (" – đã quá hạn" if self.overdue else "")

    @property
    def symbol(self) -> str:
        return CONFERENCE_SYMBOLS.get(self.state, "")

    @property
    def badge(self) -> str:
        return CONFERENCE_BADGES.get(self.state, "missing")


def conference_rows(summary: Mapping[str, Any]) -> list[ConferenceRow]:
    """From a consolidation's ``conferences`` (``by_unit``)."""
    return [
        ConferenceRow(
            code=u["code"],
            name=u["name"],
            state=u["state"],
            held_on=_day(u.get("held_on")),
            overdue=bool(u.get("overdue")),
        )
        for u in summary.get("by_unit", [])
    ]


def conference_rows_of_states(
    states: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> list[ConferenceRow]:
    """From ``GET /conferences`` (one row per unit and plan), named from ``names``."""
    return [
        ConferenceRow(
            code=s["unit_code"],
            name=names.get(s["unit_code"], s["unit_code"]),
            state=s["state"],
            held_on=_day((s.get("conference") or {}).get("held_on")),
            overdue=bool(s.get("overdue")),
        )
        for s in states
    ]


@dataclass(frozen=True)
class RecommendationTally:
    code: str
    name: str
    received: int
    answered_on_time: int
    answered_late: int
    unanswered: int
    implemented: int


def recommendation_rows(summary: Mapping[str, Any]) -> list[RecommendationTally]:
    """From a consolidation's ``recommendations`` (``by_unit``, then the total)."""
    fields = ("received", "answered_on_time", "answered_late", "unanswered", "implemented")
    rows = [
        RecommendationTally(u["code"], u["name"], *(int(u.get(f, 0)) for f in fields))
        for u in summary.get("by_unit", [])
    ]
    total = summary.get("total") or {}
    if rows:
        rows.append(RecommendationTally("", "Tổng cộng", *(int(total.get(f, 0)) for f in fields)))
    return rows


def recommendation_tally(
    recommendations: Iterable[Mapping[str, Any]], code: str, name: str
) -> RecommendationTally:
    """One unit's counts from ``GET /recommendations`` (its unit page)."""
    found = list(recommendations)
    answered = [r for r in found if r.get("answered_on_time") is not None]
    return RecommendationTally(
        code=code,
        name=name,
        received=len(found),
        answered_on_time=sum(1 for r in answered if r["answered_on_time"]),
        answered_late=sum(1 for r in answered if not r["answered_on_time"]),
        unanswered=len(found) - len(answered),
        implemented=sum(1 for r in found if r.get("status") == "closed"),
    )


@dataclass(frozen=True)
class PublicRecommendation:
    """What the public page shows of an answered or closed recommendation: no text an
    official wrote, no person."""

    source_organisation: str
    topic: str
    unit_name: str
    received_on: date | None
    answered_on: str
    on_time: bool | None
    status: str

    @property
    def status_label(self) -> str:
        return RECOMMENDATION_LABELS.get(self.status, self.status)


def public_recommendations(
    recommendations: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> list[PublicRecommendation]:
    return [
        PublicRecommendation(
            source_organisation=r["source_organisation"],
            topic=r["topic"],
            unit_name=names.get(r["addressed_unit"], r["addressed_unit"]),
            received_on=_day(r.get("received_on")),
            answered_on=r.get("answered_at") or "",
            on_time=r.get("answered_on_time"),
            status=r["status"],
        )
        for r in recommendations
        if r.get("status") in ("answered", "closed")
    ]


CONFERENCE_REFUSALS = {
    "held_on": "Ngày tổ chức không hợp lệ: không được sau hôm nay và phải từ ngày 01/01 của "
    "năm kế hoạch.",
    "participants": "Số người tham dự phải là số nguyên từ 1 trở lên.",
}


def conference_refusal(status: int, field: str | None) -> str:
    """Why the reports service refused to record a conference, in Vietnamese."""
    if status == 409:
        return "Hội nghị của đơn vị theo kế hoạch này đã được ghi nhận."
    return CONFERENCE_REFUSALS.get(
        field or "", "Chưa ghi nhận được hội nghị: hãy kiểm tra ngày tổ chức và số người dự."
    )
