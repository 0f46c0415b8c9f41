"""Inspections and surveys (kiểm tra, khảo sát) as the portal shows them, and which page
meets each kind of obligation. Pure: the reports service's JSON in, view rows out.

Per inspected unit: inspections scheduled and done, the actions their findings require,
closed on time, closed late, still open, and the nearest deadline of those still open. The
public rows carry no personal data: units, topics, kinds and days only, never a conclusion,
a finding or a follow-up report (officials write them and they may name people).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from services.portal.domain.labels import (
    CONFERENCE_KEY,
    FOLLOW_UP_PREFIX,
    RECOMMENDATION_PREFIX,
    parse_instant,
)

KIND_LABELS = {"inspection": "Kiểm tra", "survey": "Khảo sát"}
ACTION_LABELS = {
    "open": "Chưa khắc phục xong",
    "reported_done": "Đã báo cáo khắc phục xong, chờ xem xét",
    "closed": "Đã khắc phục xong",
}
ACTION_SYMBOLS = {"open": "✗", "reported_done": "…", "closed": "✔"}
ACTION_BADGES = {"open": "missing", "reported_done": "late", "closed": "accepted"}
"""The board's badge colours (st-<status>) for each action state."""
STEP_LABELS = {
    "report": "Báo cáo khắc phục",
    "closed": "Đơn vị kiểm tra xác nhận đã khắc phục xong",
    "returned": "Đơn vị kiểm tra trả lại",
}


class ObligationKind(StrEnum):
    REPORT = "report"
    RECOMMENDATION = "recommendation"
    FOLLOW_UP = "follow_up"
    CONFERENCE = "conference"


def kind_of(obligation: Mapping[str, Any]) -> ObligationKind:
    key = str(obligation.get("schedule_key", ""))
    if key.startswith(RECOMMENDATION_PREFIX):
        return ObligationKind.RECOMMENDATION
    if key.startswith(FOLLOW_UP_PREFIX):
        return ObligationKind.FOLLOW_UP
    if key == CONFERENCE_KEY:
        return ObligationKind.CONFERENCE
    return ObligationKind.REPORT


def subject_id(obligation: Mapping[str, Any]) -> str:
    """The recommendation's or the action's id an answer or follow-up obligation is for."""
    key = str(obligation.get("schedule_key", ""))
    return key.removeprefix(RECOMMENDATION_PREFIX).removeprefix(FOLLOW_UP_PREFIX)


PAGES = {
    ObligationKind.REPORT: "/nop/",
    ObligationKind.RECOMMENDATION: "/kien-nghi/",
    ObligationKind.FOLLOW_UP: "/khac-phuc/",
    ObligationKind.CONFERENCE: "/hoi-nghi/",
}


@dataclass(frozen=True)
class Link:
    href: str
    text: str
    button: bool


def work_link(
    obligation: Mapping[str, Any], unit_code: str, submits: bool, page: bool = False
) -> Link:
    """Where a unit meets an obligation: the entry form of a report, the answer form of a
    recommendation, the follow-up form of an inspection's action, the conference's page;
    a button when there is something to do, a plain link to look otherwise. ``page``: for
    the obligation's own page (longer words)."""
    kind, status, oid = kind_of(obligation), obligation.get("status"), obligation["id"]
    own = submits and obligation.get("unit_code") == unit_code
    waiting = status in ("open", "returned")
    if kind is ObligationKind.REPORT:
        if own and waiting:
            if status == "returned":
                return Link(f"/nop/{oid}", "Sửa và nộp lại" if page else "Nộp lại", True)
            return Link(f"/nop/{oid}", "Nộp báo cáo", True)
        return Link(f"/nghia-vu/{oid}", "Xem", False)
    href = f"{PAGES[kind]}{oid}"
    if own and waiting:
        return Link(href, TO_DO[kind], True)
    if own and kind is ObligationKind.RECOMMENDATION and status == "accepted":
        return Link(href, "Báo cáo thực hiện", False)  # answered: implementation follows
    return Link(href, TO_SEE[kind] if page else "Xem", False)


TO_DO = {
    ObligationKind.RECOMMENDATION: "Trả lời kiến nghị",
    ObligationKind.FOLLOW_UP: "Báo cáo khắc phục",
    ObligationKind.CONFERENCE: "Ghi nhận hội nghị",
}
TO_SEE = {
    ObligationKind.RECOMMENDATION: "Kiến nghị, văn bản trả lời và việc thực hiện",
    ObligationKind.FOLLOW_UP: "Việc phải khắc phục và quá trình khắc phục",
    ObligationKind.CONFERENCE: "Hội nghị và biên bản",
}


# --- counts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InspectionTally:
    code: str
    name: str
    scheduled: int
    done: int
    actions_required: int
    closed_on_time: int
    closed_late: int
    open: int
    nearest_due: datetime | None
    """The nearest deadline of the actions not closed yet."""


def _nearest(actions: Iterable[Mapping[str, Any]], code: str | None) -> datetime | None:
    dues = [
        parse_instant(a["due_at"])
        for a in actions
        if a.get("status") != "closed" and (code is None or a.get("inspected_unit") == code)
    ]
    found = [d for d in dues if d is not None]
    return min(found) if found else None


def inspection_rows(
    summary: Mapping[str, Any], actions: Iterable[Mapping[str, Any]]
) -> list[InspectionTally]:
    """From a consolidation's ``inspections`` (``by_unit``, then the total), with the nearest
    open deadline from ``GET /inspection-actions``."""
    actions = list(actions)

    def row(code: str, name: str, counts: Mapping[str, Any], nearest: datetime | None) -> Any:
        return InspectionTally(
            code=code,
            name=name,
            scheduled=int(counts.get("scheduled", 0)),
            done=int(counts.get("done", 0)),
            actions_required=int(counts.get("actions_required", 0)),
            closed_on_time=int(counts.get("actions_closed_on_time", 0)),
            closed_late=int(counts.get("actions_closed_late", 0)),
            open=int(counts.get("actions_open", 0)),
            nearest_due=nearest,
        )

    units = summary.get("by_unit", [])
    rows = [row(u["code"], u["name"], u, _nearest(actions, u["code"])) for u in units]
    if rows:
        dues = [r.nearest_due for r in rows if r.nearest_due is not None]
        rows.append(row("", "Tổng cộng", summary.get("total") or {}, min(dues, default=None)))
    return rows


def _visits(inspections: Iterable[Mapping[str, Any]], code: str) -> list[Mapping[str, Any]]:
    return [u for i in inspections for u in i.get("units", []) if u.get("code") == code]


def _actions_of(visit: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [a for f in visit.get("findings", []) for a in f.get("actions", [])]


def inspection_tally(
    inspections: Iterable[Mapping[str, Any]], code: str, name: str
) -> InspectionTally:
    """One unit's counts from ``GET /inspections?inspected_unit=`` (its unit page)."""
    visits = _visits(inspections, code)
    actions = [a for v in visits for a in _actions_of(v)]
    closed = [a for a in actions if a.get("status") == "closed"]
    return InspectionTally(
        code=code,
        name=name,
        scheduled=len(visits),
        done=sum(1 for v in visits if v.get("done")),
        actions_required=len(actions),
        closed_on_time=sum(1 for a in closed if a.get("closed_on_time")),
        closed_late=sum(1 for a in closed if not a.get("closed_on_time")),
        open=len(actions) - len(closed),
        nearest_due=_nearest(actions, None),
    )


# --- the public page ------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicInspection:
    """What the public page shows of an inspection done at a unit: no text an official
    wrote, no person."""

    kind: str
    topic: str
    inspecting_name: str
    inspected_name: str
    conducted_on: date | None
    actions_required: int
    actions_closed: int

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


def public_inspections(
    inspections: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> list[PublicInspection]:
    """Every inspected unit where the inspection is done, newest first."""
    found = [
        PublicInspection(
            kind=i["kind"],
            topic=i["topic"],
            inspecting_name=names.get(i["inspecting_unit"], i["inspecting_unit"]),
            inspected_name=names.get(u["code"], u["code"]),
            conducted_on=date.fromisoformat(u["conducted_on"]) if u.get("conducted_on") else None,
            actions_required=len(_actions_of(u)),
            actions_closed=sum(1 for a in _actions_of(u) if a.get("status") == "closed"),
        )
        for i in inspections
        for u in i.get("units", [])
        if u.get("done")
    ]
    return sorted(found, key=lambda p: p.conducted_on or date.min, reverse=True)


FOLLOW_UP_REFUSALS = {
    "content": "Hãy ghi nội dung báo cáo khắc phục.",
    "reason": "Hãy ghi rõ lý do trả lại.",
    "answer": "Hãy ghi nội dung văn bản trả lời.",
    "text": "Nội dung không được để trống.",
}


def oversight_refusal(field: str | None, fallback: str) -> str:
    """Why the reports service refused a follow-up, a decision or an answer, in Vietnamese;
    ``fallback`` (the general wording with the service's words) for any other reason."""
    return FOLLOW_UP_REFUSALS.get(field or "", fallback)
