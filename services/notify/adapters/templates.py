"""Jinja2 templates of the messages, in Vietnamese; one set (subject, text, HTML) per event.

:func:`event_context` turns an event into what its templates show: names instead of codes,
dates as dd/mm/yyyy in Vietnam time, the plan's number and title, links. A "before
10/06/2023" deadline is shown both ways: ``due_before`` (10/06/2023, as the plan wrote it)
and ``due_last_day`` (09/06/2023, the last day a report is on time, what subjects show).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notify.adapters.overdue import Overdue
from services.notify.domain.model import REPORT_KIND_LABELS
from shared.bus.envelope import Envelope
from shared.events import (
    DeadlineApproaching,
    DeadlineMissed,
    DifficultyAnswered,
    DifficultyRaised,
    Event,
    InspectionActionClosed,
    InspectionActionReported,
    InspectionActionReturned,
    InspectionFindingsRecorded,
    InspectionKind,
    InspectionScheduled,
    ObligationRef,
    PlanAmended,
    PlanIssued,
    RecommendationAnswered,
    RecommendationImplementationReported,
    RecommendationRegistered,
    ReportAccepted,
    ReportKind,
    ReportRequested,
    ReportReturned,
    ReportSubmitted,
    ScheduledReport,
)
from shared.vntime import format_date, format_instant, ict_date

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# auto_reload off: the templates ship with the code, so a compiled template is used as it is
# instead of checking its file's modification time on every message.
_text = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    auto_reload=False,
)
_html = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    autoescape=select_autoescape(["html.j2"], default=True),
    auto_reload=False,
)

EVENT_LABELS: dict[str, str] = {
    "qcdc.deadline.missed.v1": "Quá hạn, đôn đốc",
    "qcdc.deadline.approaching.v1": "Sắp đến hạn",
    "qcdc.report.returned.v1": "Báo cáo trả lại để hoàn thiện",
    "qcdc.report.submitted.v1": "Báo cáo đã nhận",
    "qcdc.report.accepted.v1": "Báo cáo đã chấp nhận",
    "qcdc.request.issued.v1": "Yêu cầu báo cáo",
    "qcdc.plan.issued.v1": "Kế hoạch mới",
    "qcdc.plan.amended.v1": "Kế hoạch sửa đổi",
    "qcdc.difficulty.raised.v1": "Vướng mắc",
    "qcdc.difficulty.answered.v1": "Trả lời vướng mắc",
    "qcdc.recommendation.registered.v1": "Kiến nghị sau giám sát cần trả lời",
    "qcdc.recommendation.answered.v1": "Trả lời kiến nghị sau giám sát",
    "qcdc.recommendation.implementation_reported.v1": "Kết quả thực hiện kiến nghị",
    "qcdc.inspection.findings_recorded.v1": "Kết luận kiểm tra, khảo sát cần khắc phục",
    "qcdc.inspection.action_returned.v1": "Việc khắc phục chưa được chấp nhận",
    "qcdc.inspection.scheduled.v1": "Lịch kiểm tra, khảo sát",
    "qcdc.inspection.action_reported.v1": "Báo cáo khắc phục sau kiểm tra",
    "qcdc.inspection.action_closed.v1": "Việc khắc phục đã hoàn thành",
}
"""Headings of the digest, in the order it lists them: what needs action first."""


def render(name: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Return (subject, plain text, HTML) for template set ``name``."""
    subject = " ".join(_text.get_template(f"{name}.subject.j2").render(context).split())
    text = _text.get_template(f"{name}.txt.j2").render(context)
    html = _html.get_template(f"{name}.html.j2").render({**context, "subject": subject})
    return subject, text, html


def available() -> set[str]:
    """Template sets with all three parts."""
    names = {p.name.split(".", 1)[0] for p in TEMPLATES.glob("*.j2")}
    return {n for n in names if all((TEMPLATES / f"{n}.{p}.j2").exists() for p in PARTS)}


PARTS = ("subject", "txt", "html")


@dataclass(frozen=True)
class Links:
    """Where a message's links lead: the portal's pages when its address is known
    (``QCDC_PORTAL_URL``), else the services' APIs."""

    reports_url: str
    plans_url: str = ""
    portal_url: str = ""

    def _portal(self, path: str) -> str | None:
        return f"{self.portal_url.rstrip('/')}{path}" if self.portal_url else None

    def report(self, report_id: str) -> str:
        return self._portal(f"/bao-cao/{report_id}") or (
            f"{self.reports_url.rstrip('/')}/reports/{report_id}"
        )

    def obligation(self, obligation_id: str) -> str:
        return self._portal(f"/nghia-vu/{obligation_id}") or (
            f"{self.reports_url.rstrip('/')}/obligations/{obligation_id}"
        )

    def obligations(self) -> str:
        return self._portal("/") or f"{self.reports_url.rstrip('/')}/obligations"

    def inspected_actions(self, action_id: str) -> str:
        """The inspecting unit's list of the actions it required (the portal's /kiem-tra),
        or the action in the reports API."""
        return self._portal("/kiem-tra") or (
            f"{self.reports_url.rstrip('/')}/inspection-actions/{action_id}"
        )

    def plan(self, plan_id: str) -> str:
        return self._portal(f"/cong-khai/ke-hoach/{plan_id}") or (
            f"{(self.plans_url or self.reports_url).rstrip('/')}/plans/{plan_id}"
        )

    def difficulties(self, plan_id: str) -> str:
        return self._portal(f"/vuong-mac?plan_id={plan_id}") or (
            f"{(self.plans_url or self.reports_url).rstrip('/')}/difficulties?plan_id={plan_id}"
        )


@dataclass(frozen=True)
class Facts:
    """What a message shows beyond the event: unit names, the plan, links."""

    envelope: Envelope
    links: Links
    names: Mapping[str, str] = field(default_factory=dict)
    plan_doc_number: str = ""
    plan_title: str = ""

    def name(self, code: str) -> str:
        return self.names.get(code, code)


def event_context(event: Event, facts: Facts) -> dict[str, Any]:
    """Everything the event's templates show, for any recipient."""
    for event_type, build in _BUILDERS.items():
        if isinstance(event, event_type):
            return build(event, facts)
    raise LookupError(f"no template context for {type(event).__name__}")


def _deadline(due_at: datetime) -> dict[str, str]:
    return {
        "due_before": format_date(due_at + timedelta(microseconds=1)),
        "due_last_day": format_date(due_at),
    }


RECOMMENDATION_KEY = "recommendation-"
"""Schedule key prefix of the obligation to answer a recommendation after supervision: its
reminders name the answer, not a report, and the day received, not a data period."""


FOLLOW_UP_KEY = "inspection-"
"""Schedule key prefix of the obligation to report that an action required by an
inspection's findings is carried out: its reminders name the follow-up and the day the
inspection concluded."""
CONFERENCE_KEY = "staff_conference"
"""Schedule key of a staff conference obligation: its reminders name the conference's
minutes, not a report."""
CONFERENCE_LABEL = "Biên bản Hội nghị cán bộ, công chức, viên chức và người lao động"


def is_report(schedule_key: str) -> bool:
    """A report (of a plan's schedule or a request), not an answer, a follow-up or a
    conference."""
    return not schedule_key.startswith((RECOMMENDATION_KEY, FOLLOW_UP_KEY)) and (
        schedule_key != CONFERENCE_KEY
    )


def kind_label(schedule_key: str, report_kind: ReportKind) -> str:
    """What an obligation asks for, named by its schedule key: the answer to a
    recommendation, the follow-up of an inspection, a staff conference, or a report."""
    if schedule_key.startswith(RECOMMENDATION_KEY):
        return "Văn bản trả lời kiến nghị sau giám sát"
    if schedule_key.startswith(FOLLOW_UP_KEY):
        return "Báo cáo kết quả khắc phục sau kiểm tra, khảo sát"
    if schedule_key == CONFERENCE_KEY:
        return CONFERENCE_LABEL
    return REPORT_KIND_LABELS[report_kind]


def _obligation(ref: ObligationRef, facts: Facts) -> dict[str, Any]:
    recommendation = ref.schedule_key.startswith(RECOMMENDATION_KEY)
    follow_up = ref.schedule_key.startswith(FOLLOW_UP_KEY)
    return {
        "unit_code": ref.unit_code,
        "unit_name": facts.name(ref.unit_code),
        "receiving_name": facts.name(ref.receiving_unit),
        "recommendation": recommendation,
        "follow_up": follow_up,
        "kind_label": kind_label(ref.schedule_key, ref.report_kind),
        "plan_doc_number": ref.plan_doc_number or facts.plan_doc_number,
        "plan_title": ref.plan_title or facts.plan_title,
        "period_start": format_date(ref.period_start),
        "period_end": format_date(ref.period_end),
        "link": facts.links.obligation(ref.obligation_id),
        **_deadline(ref.due_at),
    }


def _approaching(event: DeadlineApproaching, facts: Facts) -> dict[str, Any]:
    """Time left as the sender's working calendar counts it; from a sender before
    ``working_days_left`` existed, calendar days (``working_days`` false)."""
    working = event.working_days_left is not None
    days_left = (
        event.working_days_left
        if event.working_days_left is not None
        else (ict_date(event.obligation.due_at) - event.fire_on).days
    )
    return {
        **_obligation(event.obligation, facts),
        "days_left": max(0, days_left),
        "working_days": working,
        "due_last_instant": format_instant(event.obligation.due_at),
        "steps": event.steps or [event.days_before],
    }


def _missed(event: DeadlineMissed, facts: Facts) -> dict[str, Any]:
    return {
        **_obligation(event.obligation, facts),
        "step": event.step,
        "escalated": event.escalated,
        "escalated_to_receiving_unit": event.escalated_to_receiving_unit,
        "final": event.final,
        "urge_max_steps": event.urge_max_steps,
        "as_of": format_date(facts.envelope.time),
    }


def _submitted(event: ReportSubmitted, facts: Facts) -> dict[str, Any]:
    return {
        **_obligation(event.obligation, facts),
        "submitted_at": format_instant(event.submitted_at),
        "receipt_number": event.receipt_number,
        "version": event.version,
        "on_time": event.on_time,
        "link": facts.links.report(event.report_id),
    }


def _reviewed(event: ReportAccepted | ReportReturned, facts: Facts) -> dict[str, Any]:
    return {
        **_obligation(event.obligation, facts),
        "receipt_number": event.receipt_number,
        "reviewer_name": facts.name(event.reviewed_by_unit),
        "reviewed_at": format_instant(event.reviewed_at),
        "reason": event.reason if isinstance(event, ReportReturned) else "",
        "link": facts.links.report(event.report_id),
    }


def _schedule_entry(entry: ScheduledReport, facts: Facts) -> dict[str, str]:
    return {
        "label": entry.title or REPORT_KIND_LABELS[entry.kind],
        "period_start": format_date(entry.period_start),
        "period_end": format_date(entry.period_end),
        "receiving_name": facts.name(entry.receiving_unit),
        **_deadline(entry.due_at),
    }


def _plan_issued(event: PlanIssued, facts: Facts) -> dict[str, Any]:
    return {
        "unit_name": facts.name(event.issuing_unit),
        "plan_doc_number": event.doc_number,
        "plan_title": event.title,
        "issued_on": format_date(event.issued_on),
        "schedule": [_schedule_entry(entry, facts) for entry in event.schedule],
        "sub_plan": _deadline(event.sub_plan_due_at) if event.sub_plan_due_at else None,
        "link": facts.links.plan(event.plan_id),
    }


def _plan_amended(event: PlanAmended, facts: Facts) -> dict[str, Any]:
    labels = {e.key: e.title or REPORT_KIND_LABELS[e.kind] for e in event.schedule}
    return {
        "unit_name": facts.name(event.unit_path[-1]),
        "plan_doc_number": event.doc_number or facts.plan_doc_number,
        "plan_title": event.title or facts.plan_title,
        "amendment": event.amendment,
        "reason": event.reason,
        "changes": [
            {
                "label": labels.get(c.key, c.key),
                "old_due_last_day": format_date(c.old_due_at),
                "new_due_last_day": format_date(c.new_due_at),
                "new_due_before": format_date(c.new_due_at + timedelta(microseconds=1)),
            }
            for c in event.schedule_changes
        ],
        "added_codes": [a.code for a in event.added_assignees],
        "added_names": [a.name or facts.name(a.code) for a in event.added_assignees],
        "link": facts.links.plan(event.plan_id),
    }


def _requested(event: ReportRequested, facts: Facts) -> dict[str, Any]:
    return {
        "unit_name": facts.name(event.requesting_unit),
        "kind_label": REPORT_KIND_LABELS[event.kind],
        "topic": event.topic,
        "plan_doc_number": facts.plan_doc_number,
        "plan_title": facts.plan_title,
        "period_start": format_date(event.period_start),
        "period_end": format_date(event.period_end),
        "unit_names": [a.name or facts.name(a.code) for a in event.units],
        "link": facts.links.obligations(),
        **_deadline(event.due_at),
    }


def _difficulty(event: DifficultyRaised, facts: Facts) -> dict[str, Any]:
    return {
        "unit_code": event.unit_code,
        "unit_name": facts.name(event.unit_code),
        "plan_doc_number": facts.plan_doc_number or event.plan_id,
        "plan_title": facts.plan_title,
        "content_area": event.content_area or "",
        "description": event.description,
        "raised_at": format_instant(event.raised_at),
        "link": facts.links.difficulties(event.plan_id),
    }


def _difficulty_answered(event: DifficultyAnswered, facts: Facts) -> dict[str, Any]:
    return {
        "unit_code": event.unit_code,
        "unit_name": facts.name(event.unit_code),
        "answered_by_name": facts.name(event.answered_by_unit),
        "plan_doc_number": facts.plan_doc_number or event.plan_id,
        "plan_title": facts.plan_title,
        "content_area": event.content_area or "",
        "answer": event.answer,
        "answer_number": event.answer_number,
        "answered_at": format_instant(event.answered_at),
        "link": facts.links.difficulties(event.plan_id),
    }


def _recommendation(
    event: RecommendationRegistered | RecommendationAnswered | RecommendationImplementationReported,
    facts: Facts,
) -> dict[str, Any]:
    return {
        "unit_name": facts.name(event.addressed_unit),
        "registered_by_name": facts.name(event.registered_by_unit),
        "source_organisation": event.source_organisation,
        "topic": event.topic,
        "link": facts.links.obligations(),
    }


def _recommendation_registered(event: RecommendationRegistered, facts: Facts) -> dict[str, Any]:
    return {
        **_recommendation(event, facts),
        "content": event.content,
        "received_on": format_date(event.received_on),
        "answer_last_day": format_date(ict_date(event.answer_due_at)),
        "link": facts.links.obligation(event.obligation_id),
    }


def _recommendation_answered(event: RecommendationAnswered, facts: Facts) -> dict[str, Any]:
    return {
        **_recommendation(event, facts),
        "answer": event.answer,
        "answered_at": format_instant(event.answered_at),
        "on_time": event.on_time,
    }


def _recommendation_implementation(
    event: RecommendationImplementationReported, facts: Facts
) -> dict[str, Any]:
    return {
        **_recommendation(event, facts),
        "content": event.content,
        "report_number": event.report_number,
        "completed": event.completed,
        "reported_at": format_instant(event.reported_at),
    }


INSPECTION_KIND_LABELS = {InspectionKind.INSPECTION: "kiểm tra", InspectionKind.SURVEY: "khảo sát"}

_InspectionEvent = (
    InspectionScheduled
    | InspectionFindingsRecorded
    | InspectionActionReported
    | InspectionActionClosed
    | InspectionActionReturned
)


def _inspection(event: _InspectionEvent, facts: Facts) -> dict[str, Any]:
    return {
        "unit_name": facts.name(event.inspected_unit),
        "inspecting_name": facts.name(event.inspecting_unit),
        "topic": event.topic,
        "link": facts.links.obligations(),
    }


def _inspection_scheduled(event: InspectionScheduled, facts: Facts) -> dict[str, Any]:
    return {
        **_inspection(event, facts),
        "kind_label": INSPECTION_KIND_LABELS[event.kind],
        "planned_start": format_date(event.planned_start),
        "planned_end": format_date(event.planned_end),
        "unit_count": len(event.inspected_units),
    }


def _inspection_findings(event: InspectionFindingsRecorded, facts: Facts) -> dict[str, Any]:
    return {
        **_inspection(event, facts),
        "kind_label": INSPECTION_KIND_LABELS[event.kind],
        "conducted_on": format_date(event.conducted_on),
        "conclusion": event.conclusion,
        "findings": [
            {
                "number": f.number,
                "content": f.content,
                "actions": [
                    {
                        "number": a.number,
                        "content": a.content,
                        "due_last_day": format_date(a.due_at),
                        "link": facts.links.obligation(a.obligation_id),
                    }
                    for a in f.actions
                ],
            }
            for f in event.findings
        ],
        "action_count": sum(len(f.actions) for f in event.findings),
    }


def _inspection_reported(event: InspectionActionReported, facts: Facts) -> dict[str, Any]:
    return {
        **_inspection(event, facts),
        "link": facts.links.inspected_actions(event.action_id),  # to the inspecting unit
        "action": event.action,
        "content": event.content,
        "report_number": event.report_number,
        "done": event.done,
        "on_time": event.on_time,
        "reported_at": format_instant(event.reported_at),
    }


def _inspection_closed(event: InspectionActionClosed, facts: Facts) -> dict[str, Any]:
    return {
        **_inspection(event, facts),
        "action": event.action,
        "note": event.note,
        "on_time": event.on_time,
        "closed_at": format_instant(event.closed_at),
    }


def _inspection_returned(event: InspectionActionReturned, facts: Facts) -> dict[str, Any]:
    return {
        **_inspection(event, facts),
        "action": event.action,
        "reason": event.reason,
        "returned_at": format_instant(event.returned_at),
        **_deadline(event.due_at),
    }


_BUILDERS: dict[type[Event], Callable[[Any, Facts], dict[str, Any]]] = {
    DeadlineApproaching: _approaching,
    DeadlineMissed: _missed,
    ReportSubmitted: _submitted,
    ReportAccepted: _reviewed,
    ReportReturned: _reviewed,
    PlanIssued: _plan_issued,
    PlanAmended: _plan_amended,
    ReportRequested: _requested,
    DifficultyRaised: _difficulty,
    DifficultyAnswered: _difficulty_answered,
    RecommendationRegistered: _recommendation_registered,
    RecommendationAnswered: _recommendation_answered,
    RecommendationImplementationReported: _recommendation_implementation,
    InspectionScheduled: _inspection_scheduled,
    InspectionFindingsRecorded: _inspection_findings,
    InspectionActionReported: _inspection_reported,
    InspectionActionClosed: _inspection_closed,
    InspectionActionReturned: _inspection_returned,
}


def digest_context(
    day: str, recipient_name: str, items: list[tuple[str, str, datetime]]
) -> dict[str, Any]:
    """A digest's sections: (event type, subject, when) grouped under their heading, the
    ones that need action first."""
    order = list(EVENT_LABELS)
    sections: dict[str, list[dict[str, str]]] = {}
    for event_type, subject, at in sorted(
        items, key=lambda i: (order.index(i[0]) if i[0] in order else len(order), i[2])
    ):
        heading = EVENT_LABELS.get(event_type, "Thông báo khác")
        sections.setdefault(heading, []).append({"subject": subject, "at": format_instant(at)})
    return {
        "day": day,
        "recipient_name": recipient_name,
        "count": len(items),
        "sections": [{"heading": h, "items": entries} for h, entries in sections.items()],
        "overdue": [],
    }


def overdue_context(overdue: Sequence[Overdue], names: Mapping[str, str]) -> dict[str, Any]:
    """The digest's list of obligations still unmet after their last urging, each named by
    what it asks for (a report, a recommendation's answer, an inspection's follow-up, a staff
    conference's minutes), and the words for the list: "báo cáo … chưa nộp" when it holds
    only reports, "việc … chưa thực hiện" otherwise."""
    lines = [
        {
            "unit_name": names.get(o.unit_code, o.unit_code),
            "kind_label": kind_label(o.schedule_key, o.report_kind),
            "plan_doc_number": o.plan_doc_number,
            "due_last_day": format_date(o.due_at),
            "urgings": str(o.urgings),
        }
        for o in overdue
    ]
    reports = all(is_report(o.schedule_key) for o in overdue)
    return {
        "overdue": lines,
        "overdue_count": f"{len(lines)} báo cáo quá hạn chưa nộp"
        if reports
        else f"{len(lines)} việc quá hạn chưa thực hiện",
        "overdue_heading": "Báo cáo quá hạn đã hết lượt đôn đốc, vẫn chưa nộp"
        if reports
        else "Việc quá hạn đã hết lượt đôn đốc, vẫn chưa thực hiện",
    }
