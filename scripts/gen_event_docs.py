"""Generate the event reference in ``docs/events.md``, ``docs/schemas/<ce-type>.json`` and the
AsyncAPI document ``docs/asyncapi.yaml`` (built by :mod:`shared.asyncapi`).

Everything generated comes from the code: the classes in ``shared.events.CATALOGUE`` (subject,
ce-type, docstring, fields, JSON Schema), ``shared.bus.streams`` (stream and owning service) and
``shared.bus.envelope`` (the headers of the example message). The reference is written between
``<!-- BEGIN GENERATED -->`` and ``<!-- END GENERATED -->``; the text around it is kept.

Usage::

    python scripts/gen_event_docs.py           # rewrite the generated files
    python scripts/gen_event_docs.py --check   # exit 1 if they are out of date
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shared import asyncapi
from shared.bus.envelope import encode
from shared.bus.streams import stream_for_subject
from shared.events import (
    CATALOGUE,
    Assignee,
    Channel,
    ConferenceMinutesAttached,
    ConferenceRecorded,
    ConsolidationPublished,
    Contacts,
    ContentArea,
    DeadlineApproaching,
    DeadlineMissed,
    DifficultyAnswered,
    DifficultyRaised,
    Event,
    InspectionAction,
    InspectionActionClosed,
    InspectionActionReported,
    InspectionActionReturned,
    InspectionFinding,
    InspectionFindingsRecorded,
    InspectionKind,
    InspectionScheduled,
    NotificationDelivered,
    NotificationFailed,
    ObligationRef,
    PlanAmended,
    PlanClosed,
    PlanIssued,
    RecommendationAnswered,
    RecommendationImplementationReported,
    RecommendationRegistered,
    ReportAccepted,
    ReportKind,
    ReportRequested,
    ReportReturned,
    ReportSubmitted,
    ScheduleChange,
    ScheduledReport,
    StaffConferenceSchedule,
    SubPlanRegistered,
    TokenIssued,
    TokenRevoked,
    UnitRegistered,
    UnitUpdated,
)
from shared.units import UNIT_CODE_PATTERN
from shared.vntime import last_instant_before

ROOT = Path(__file__).resolve().parents[1]
EVENTS_MD = Path("docs") / "events.md"
SCHEMAS_DIR = Path("docs") / "schemas"
ASYNCAPI_YAML = Path("docs") / "asyncapi.yaml"
BEGIN = "<!-- BEGIN GENERATED -->"
END = "<!-- END GENERATED -->"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Descriptions for fields whose model gives none. A description in the code always wins;
# better still, move these into ``Field(description=...)`` in shared/events.py.
FIELD_NOTES: dict[str, str] = {
    "UnitRegistered.code": "The unit's own code: the last token of `unit_path`.",
    "UnitRegistered.contacts": "Where the unit is reached; notify keeps them as contacts.",
    "UnitRegistered.active": "False once the unit is dissolved.",
    "UnitUpdated.dissolved_on": "Day the unit was dissolved (ICT), when it was.",
    "PlanIssued.plan_id": "Id of the plan, assigned by the plans service.",
    "PlanIssued.title": "Title of the plan, as written.",
    "PlanIssued.issuing_unit": "Code of the issuing unit (the unit of the subject).",
    "PlanIssued.issued_on": "Date of issue written on the document.",
    "PlanIssued.year": "Year the plan covers.",
    "PlanIssued.content_areas": "The plan's content areas.",
    "PlanIssued.assignees": "The concrete units the plan binds.",
    "PlanIssued.schedule": "The reporting schedule: periodic reports owed by each assignee.",
    "PlanAmended.plan_id": "Id of the amended plan.",
    "PlanAmended.doc_number": "Number and symbol of the amended plan.",
    "PlanAmended.title": "Title of the amended plan.",
    "PlanAmended.reason": "Why the plan was amended.",
    "PlanAmended.added_assignees": "Units the plan binds from this amendment on.",
    "PlanAmended.removed_assignees": "Codes of units the plan no longer binds.",
    "PlanAmended.schedule_changes": "Deadlines this amendment moved.",
    "PlanClosed.plan_id": "Id of the closed plan.",
    "PlanClosed.closed_at": "When the plan was closed (UTC).",
    "PlanClosed.reason": "Why the plan was closed.",
    "SubPlanRegistered.parent_plan_id": "The plan this sub-plan implements.",
    "SubPlanRegistered.unit_code": "The unit that issued the sub-plan (the subject's unit).",
    "SubPlanRegistered.doc_number": "Number and symbol of the sub-plan.",
    "SubPlanRegistered.issued_on": "Date of issue of the sub-plan.",
    "ReportRequested.request_id": "Id of the request, assigned by the plans service.",
    "ReportRequested.kind": "`thematic` or `ad_hoc`.",
    "ReportRequested.topic": "What the report is about, as the requester wrote it.",
    "ReportRequested.requesting_unit": "The unit asking; it receives the reports.",
    "ReportRequested.units": "The units asked to report.",
    "ReportRequested.content_areas": "Codes of the plan's content areas the report covers.",
    "ReportRequested.indicators": "Indicators the report must give.",
    "ReportRequested.period_start": "First day of the data period.",
    "ReportRequested.period_end": "Last day of the data period.",
    "ReportRequested.due_at": "Last on-time instant (UTC) of the requester's 'before <date>'.",
    "ReportRequested.plan_id": "The plan the request belongs to, if any.",
    "DifficultyRaised.difficulty_id": "Id of the difficulty, assigned by the plans service.",
    "DifficultyRaised.plan_id": "The plan whose implementation met the difficulty.",
    "DifficultyRaised.unit_code": "The unit raising it (the subject's unit).",
    "DifficultyRaised.content_area": "Code of the content area concerned, if any.",
    "DifficultyRaised.description": "The difficulty (vướng mắc), as the unit wrote it.",
    "DifficultyRaised.raised_at": "When it was raised (UTC).",
    "DifficultyAnswered.difficulty_id": "The difficulty answered.",
    "DifficultyAnswered.plan_id": "The plan whose implementation met the difficulty.",
    "DifficultyAnswered.content_area": "Code of the content area concerned, if any.",
    "DifficultyAnswered.raised_to": "The unit the difficulty was raised to; it answers.",
    "DifficultyAnswered.answer": "The answer, as the answering unit wrote it.",
    "DifficultyAnswered.answered_by_unit": "The unit that answered (the one raised to).",
    "DifficultyAnswered.answered_at": "When it was answered (UTC).",
    "ReportSubmitted.report_id": "Id of this submission, assigned by the reports service.",
    "ReportSubmitted.receipt_number": (
        "Receipt number given to the unit: `BC-<year>-<6 digits>`, year of receipt in ICT."
    ),
    "ReportSubmitted.version": "1 for the first submission against the obligation, then 2, …",
    "ReportSubmitted.obligation": "What the report answers.",
    "ReportSubmitted.submitted_at": "When the reports service received it (UTC).",
    "ReportSubmitted.on_time": "True when `submitted_at` ≤ `obligation.due_at`.",
    "ReportAccepted.obligation": "What the report answers.",
    "ReportReturned.obligation": "What the report answers.",
    "ReportAccepted.report_id": "The submission accepted.",
    "ReportAccepted.receipt_number": "Its receipt number.",
    "ReportAccepted.reviewed_by_unit": "The unit that reviewed it.",
    "ReportAccepted.reviewed_at": "When it was reviewed (UTC).",
    "ReportReturned.report_id": "The submission returned.",
    "ReportReturned.receipt_number": "Its receipt number.",
    "ReportReturned.reviewed_by_unit": "The unit that reviewed it.",
    "ReportReturned.reviewed_at": "When it was reviewed (UTC).",
    "ReportReturned.reason": "Why it was returned for revision (trả lại để hoàn thiện).",
    "DeadlineApproaching.obligation": "The obligation still awaiting a report.",
    "DeadlineMissed.obligation": "The obligation whose deadline passed without a report.",
    "NotificationDelivered.delivery_key": "sha256(event id | recipient | channel), 40 hex digits.",
    "NotificationDelivered.channel": "Channel it went by.",
    "NotificationDelivered.event_type": "ce-type of the event that caused the notification.",
    "NotificationDelivered.recipient": "E-mail address (or URL) it was delivered to.",
    "NotificationDelivered.attempts": "Attempts it took, this one included.",
    "NotificationDelivered.delivered_at": "When the SMTP server accepted it (UTC).",
    "NotificationFailed.delivery_key": "sha256(event id | recipient | channel), 40 hex digits.",
    "NotificationFailed.channel": "Channel it was for.",
    "NotificationFailed.event_id": "ce-id of the event that caused the notification.",
    "NotificationFailed.event_type": "ce-type of the event that caused the notification.",
    "NotificationFailed.recipient": "E-mail address (or URL) it was for.",
    "NotificationFailed.attempts": "Attempts made before giving up.",
    "NotificationFailed.last_error": "The last attempt's error.",
    "NotificationFailed.failed_at": "When it was given up (UTC).",
    "ContentArea.code": "Code of the area within the plan, e.g. '3'.",
    "ContentArea.title": "Title of the area.",
    "ContentArea.description": "What the area covers.",
    "ConsolidationPublished.consolidation_id": "Id of the consolidation.",
    "ConsolidationPublished.version": (
        "1 for the first publication, then 2, … (a new one only when the content changed)"
    ),
    "ConsolidationPublished.plan_id": "The plan consolidated.",
    "ConsolidationPublished.schedule_key": "The schedule entry consolidated.",
    "ConsolidationPublished.receiving_unit": "The unit that consolidates (the reports' receiver).",
    "ConsolidationPublished.period_start": "First day of the data period.",
    "ConsolidationPublished.period_end": "Last day of the data period.",
    "ConsolidationPublished.expected": "Obligations expected to report.",
    "ConsolidationPublished.received": "Of those, how many reported.",
    "ConsolidationPublished.on_time": "Reports received on time.",
    "ConsolidationPublished.late": "Reports received late.",
    "ConsolidationPublished.missing": "Obligations with no report.",
    "ConsolidationPublished.returned": "Reports returned for revision.",
    "ConsolidationPublished.published_at": "When it was published (UTC).",
    "Assignee.code": "Code of the unit.",
    "Assignee.unit_path": "Path of the unit, root first.",
    "Assignee.kind": "Unit kind.",
    "Assignee.name": "Vietnamese name, NFC.",
    "ScheduledReport.kind": "Kind of the report.",
    "ScheduledReport.title": "Title of the report, as written in the plan.",
    "ScheduledReport.receiving_unit": "Unit the report is sent to.",
    "ScheduleChange.key": "Key of the schedule entry that moved.",
    "ScheduleChange.old_due_at": "Last on-time instant before the amendment (UTC).",
    "ScheduleChange.new_due_at": "Last on-time instant after the amendment (UTC).",
    "ObligationRef.obligation_id": (
        "Id of the obligation; deterministic from plan, schedule key and unit."
    ),
    "ObligationRef.plan_id": "Plan the obligation comes from (empty for a request outside one).",
    "ObligationRef.schedule_key": "Schedule entry key, or `request-<request id>`.",
    "ObligationRef.report_kind": "Kind of the report owed.",
    "ObligationRef.unit_code": "The unit that owes the report.",
    "ObligationRef.receiving_unit": "The unit the report is sent to.",
    "ObligationRef.period_start": "First day of the data period.",
    "ObligationRef.period_end": "Last day of the data period.",
    "ObligationRef.due_at": "Last on-time instant (UTC).",
    "ObligationRef.plan_doc_number": "Number and symbol of the plan, for messages.",
    "ObligationRef.plan_title": "Title of the plan (or the request's topic), for messages.",
}


# Summaries for events whose class has no docstring; a docstring in the code wins.
EVENT_NOTES: dict[str, str] = {}


# --- example events ----------------------------------------------------------------------

PROVINCE = ["T89"]
DISTRICT = ["T89", "H886"]
COMMUNE = ["T89", "H886", "X30337"]
INSPECTION_ID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
INSPECTION_ACTION_ID = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"
INSPECTION_TOPIC = "Kiểm tra việc thực hiện Quy chế dân chủ ở cơ sở năm 2023"
HOME_AFFAIRS = "SNV"
PLAN_ID = "0f6b7c4e-2a55-4d0e-9b1d-6f0d3c2b8a11"
SUB_PLAN_ID = "3c9a1d2e-7b4f-4e6a-8c5d-1f2e3a4b5c6d"
EXAMPLE_EVENT_ID = "5b0e6a3c-9d41-4f7e-8a52-3c1d2e4f6a70"
EXAMPLE_CORRELATION_ID = "c0ffee5e7a1d4b2c9e8f7a6b5c4d3e2f"
EXAMPLE_TIME = datetime(2023, 6, 2, 2, 15, 7, tzinfo=UTC)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _obligation() -> ObligationRef:
    return ObligationRef(
        obligation_id="8e1f2a90-6c3b-5d4e-a7f8-09b1c2d3e4f5",
        plan_id=SUB_PLAN_ID,
        schedule_key="six_month",
        report_kind=ReportKind.SIX_MONTH,
        unit_code="X30337",
        receiving_unit="H886",
        period_start=date(2022, 12, 15),
        period_end=date(2023, 6, 3),
        due_at=last_instant_before(date(2023, 6, 5)),
        plan_doc_number="45/KH-UBND",
        plan_title="Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023 trên địa bàn huyện",
    )


def _schedule(six_month_before: date = date(2023, 6, 10)) -> list[ScheduledReport]:
    return [
        _scheduled(
            "six_month", "Báo cáo kết quả thực hiện 06 tháng", date(2023, 6, 8), six_month_before
        ),
        _scheduled(
            "annual", "Báo cáo kết quả thực hiện 01 năm", date(2023, 11, 18), date(2023, 11, 20)
        ),
    ]


def _scheduled(key: str, title: str, period_end: date, due_before: date) -> ScheduledReport:
    """A report of the 2023 plan's schedule (``key`` names its kind), due at Home Affairs."""
    return ScheduledReport(
        key=key,
        kind=ReportKind(key),
        title=title,
        period_start=date(2022, 12, 15),
        period_end=period_end,
        due_before=due_before,
        due_at=last_instant_before(due_before),
        receiving_unit=HOME_AFFAIRS,
    )


def _district() -> Assignee:
    return Assignee(
        code="H886", unit_path=DISTRICT, kind="district", name="Ủy ban nhân dân huyện An Phú"
    )


def _commune() -> Assignee:
    return Assignee(
        code="X30337", unit_path=COMMUNE, kind="commune", name="Ủy ban nhân dân xã Mỹ Hòa Hưng"
    )


def _inspection_action() -> dict[str, Any]:
    """What every example event about an inspection's action says of it."""
    return {
        "unit_path": COMMUNE,
        "inspection_id": INSPECTION_ID,
        "action_id": INSPECTION_ACTION_ID,
        "topic": INSPECTION_TOPIC,
        "inspecting_unit": "H886",
        "inspected_unit": COMMUNE[-1],
        "action": "Niêm yết công khai dự toán ngân sách xã tại 8/8 ấp.",
    }


def examples() -> dict[type[Event], Event]:
    """One plausible instance of every event, with the seed's 2023 plan as background."""
    # Fields added to ReportSubmitted within v1; filled in when the model has them.
    report_content = {
        "narrative": {"3": "Duy trì tiếp công dân định kỳ vào thứ Năm hằng tuần."},
        "indicators": {"reception_sessions": 24, "citizens_received": 57},
    }
    # What UnitRegistered and UnitUpdated both say: the commune's full state.
    commune_unit = {
        "unit_path": COMMUNE,
        "code": "X30337",
        "name": "Ủy ban nhân dân xã Mỹ Hòa Hưng",
        "kind": "commune",
        "parent_code": "H886",
        "reports_to_code": "H886",
        "contacts": Contacts(
            focal_email="vanphong@myhoahung.demo.gov.vn",
            head_email="chutich@myhoahung.demo.gov.vn",
        ),
    }
    # What the example events about one plan, difficulty, review, recommendation,
    # inspection, notification or staff conference say alike.
    plan = {
        "unit_path": PROVINCE,
        "plan_id": PLAN_ID,
        "doc_number": "123/KH-UBND",
        "title": "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023",
    }
    difficulty = {
        "unit_path": DISTRICT,
        "difficulty_id": "d1f2e3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
        "plan_id": PLAN_ID,
        "unit_code": "H886",
        "content_area": "2",
    }
    review = {
        "unit_path": COMMUNE,
        "report_id": "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d",
        "receipt_number": "BC-2023-000042",
        "obligation": _obligation(),
        "reviewed_by_unit": "H886",
        "reviewed_at": _at("2023-06-05T08:40:00+07:00"),
    }
    recommendation = {
        "unit_path": COMMUNE,
        "recommendation_id": "8e7d6c5b-4a3f-4e2d-9c1b-0a9f8e7d6c5b",
        "addressed_unit": COMMUNE[-1],
        "registered_by_unit": COMMUNE[-1],
        "source_organisation": "Ban Thường trực Ủy ban MTTQ Việt Nam xã Mỹ Hòa Hưng",
        "topic": "Công khai thu, chi quỹ đầu tư xây dựng đường giao thông nông thôn",
    }
    inspection = {
        "unit_path": COMMUNE,
        "inspection_id": INSPECTION_ID,
        "kind": InspectionKind.INSPECTION,
        "topic": INSPECTION_TOPIC,
        "inspecting_unit": "H886",
        "inspected_unit": COMMUNE[-1],
    }
    notification = {
        "unit_path": COMMUNE,
        "delivery_key": "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b",
        "event_id": EXAMPLE_EVENT_ID,
        "event_type": ReportSubmitted.ce_type(),
        "channel": Channel.EMAIL,
        "recipient": "vanphong@myhoahung.demo.gov.vn",
    }
    conference = {
        "unit_path": ["T89", "STP"],
        "conference_id": "3a2b1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d",
        "plan_id": PLAN_ID,
        "unit_code": "STP",
    }
    found: list[Event] = [
        UnitRegistered(
            **commune_unit,
        ),
        UnitUpdated(
            **commune_unit,
            active=False,
            dissolved_on=date(2025, 7, 1),
        ),
        PlanIssued(
            **plan,
            issuing_unit="T89",
            issued_on=date(2023, 1, 16),
            year=2023,
            content_areas=[
                ContentArea(
                    code="3",
                    title="Thực hiện Quy chế dân chủ ở xã, phường, thị trấn",
                    description="Công khai; “một cửa”; tiếp công dân; giải quyết đơn thư.",
                )
            ],
            assignees=[
                _district(),
                Assignee(
                    code="STP", unit_path=["T89", "STP"], kind="department", name="Sở Tư pháp"
                ),
            ],
            schedule=_schedule(),
            sub_plan_due_at=last_instant_before(date(2023, 3, 1)),
            staff_conference=StaffConferenceSchedule(
                title="Hội nghị cán bộ, công chức, viên chức và người lao động năm 2023",
                unit_kinds=["department", "public_service_unit"],
                held_from=date(2023, 1, 1),
                due_before=date(2023, 4, 1),
                due_at=last_instant_before(date(2023, 4, 1)),
                receiving_unit="SNV",
            ),
        ),
        PlanAmended(
            **plan,
            amendment=1,
            reason="Lùi hạn báo cáo 06 tháng theo đề nghị của Sở Nội vụ",
            schedule_changes=[
                ScheduleChange(
                    key="six_month",
                    old_due_at=last_instant_before(date(2023, 6, 10)),
                    new_due_at=last_instant_before(date(2023, 6, 15)),
                )
            ],
            schedule=_schedule(six_month_before=date(2023, 6, 15)),
        ),
        PlanClosed(
            unit_path=PROVINCE,
            plan_id=PLAN_ID,
            closed_at=_at("2024-01-15T09:00:00+07:00"),
            reason="Kết thúc năm thực hiện 2023",
        ),
        SubPlanRegistered(
            unit_path=DISTRICT,
            plan_id=SUB_PLAN_ID,
            parent_plan_id=PLAN_ID,
            unit_code="H886",
            doc_number="45/KH-UBND",
            issued_on=date(2023, 2, 20),
        ),
        ReportRequested(
            unit_path=DISTRICT,
            request_id="a4d3c2b1-0e9f-4a8b-9c7d-6e5f4a3b2c1d",
            kind=ReportKind.THEMATIC,
            topic="Kết quả tiếp công dân và giải quyết đơn thư 6 tháng đầu năm 2023",
            requesting_unit="H886",
            units=[_commune()],
            content_areas=["3"],
            indicators=["reception_sessions", "citizens_received", "complaints_resolved"],
            period_start=date(2023, 1, 1),
            period_end=date(2023, 6, 30),
            due_at=last_instant_before(date(2023, 7, 10)),
            plan_id=PLAN_ID,
        ),
        DifficultyRaised(
            **difficulty,
            description="Chưa có hướng dẫn kiện toàn Ban Thanh tra nhân dân sau sáp nhập ấp.",
            raised_at=_at("2023-04-03T10:30:00+07:00"),
            raised_to=HOME_AFFAIRS,
        ),
        DifficultyAnswered(
            **difficulty,
            raised_to=HOME_AFFAIRS,
            answer_number=1,
            answer="Kiện toàn theo Hướng dẫn số 12/HD-SNV; Sở Nội vụ gửi kèm mẫu quyết định.",
            answered_by_unit=HOME_AFFAIRS,
            answered_at=_at("2023-04-10T15:00:00+07:00"),
        ),
        ReportSubmitted(
            unit_path=COMMUNE,
            report_id="7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d",
            receipt_number="BC-2023-000042",
            version=1,
            obligation=_obligation(),
            submitted_at=EXAMPLE_TIME,
            on_time=True,
            submitted_by="vanphong@myhoahung.demo.gov.vn",
            **{k: v for k, v in report_content.items() if k in ReportSubmitted.model_fields},
        ),
        ReportAccepted(
            **review,
        ),
        ReportReturned(
            **review,
            reason="Thiếu số liệu tiếp công dân quý II; đề nghị bổ sung.",
        ),
        DeadlineApproaching(
            unit_path=COMMUNE,
            obligation=_obligation(),
            days_before=1,
            fire_on=date(2023, 6, 2),
            steps=[1],
            working_days_left=0,
        ),
        DeadlineMissed(
            unit_path=COMMUNE,
            obligation=_obligation(),
            step=4,
            escalated=True,
            escalated_to_receiving_unit=True,
            final=False,
            urge_max_steps=5,
        ),
        ConsolidationPublished(
            unit_path=DISTRICT,
            consolidation_id="c5d4e3f2-a1b0-4c9d-8e7f-6a5b4c3d2e1f",
            version=1,
            plan_id=SUB_PLAN_ID,
            schedule_key="six_month",
            receiving_unit="H886",
            period_start=date(2022, 12, 15),
            period_end=date(2023, 6, 3),
            expected=14,
            received=13,
            on_time=12,
            late=1,
            missing=1,
            returned=0,
            published_at=_at("2023-06-07T16:00:00+07:00"),
        ),
        RecommendationRegistered(
            **recommendation,
            content="Đề nghị Ủy ban nhân dân xã niêm yết công khai thu, chi theo quý.",
            received_on=date(2023, 3, 6),
            answer_due_at=_at("2023-04-05T23:59:59.999999+07:00"),
            obligation_id="2b3c4d5e-6f70-5a81-9b2c-3d4e5f6a7b8c",
        ),
        RecommendationAnswered(
            **recommendation,
            answer="Ủy ban nhân dân xã tiếp thu; niêm yết công khai từ quý II năm 2023.",
            answered_at=_at("2023-03-20T16:00:00+07:00"),
            on_time=True,
        ),
        RecommendationImplementationReported(
            **recommendation,
            report_number=1,
            content="Đã niêm yết bảng thu, chi quý II tại nhà văn hóa các ấp.",
            completed=True,
            reported_at=_at("2023-07-05T09:00:00+07:00"),
        ),
        InspectionScheduled(
            **inspection,
            inspected_units=[COMMUNE[-1], "X30338"],
            planned_start=date(2023, 9, 11),
            planned_end=date(2023, 9, 22),
            plan_id=SUB_PLAN_ID,
        ),
        InspectionFindingsRecorded(
            **inspection,
            conducted_on=date(2023, 9, 13),
            conclusion="Ủy ban nhân dân xã cơ bản thực hiện tốt; còn hạn chế về công khai.",
            findings=[
                InspectionFinding(
                    number=1,
                    content="Chưa niêm yết công khai dự toán ngân sách xã tại các ấp.",
                    actions=[
                        InspectionAction(
                            action_id=INSPECTION_ACTION_ID,
                            number=1,
                            content="Niêm yết công khai dự toán ngân sách xã tại 8/8 ấp.",
                            due_at=_at("2023-10-15T23:59:59.999999+07:00"),
                            obligation_id="3c4d5e6f-7081-5b92-8c3d-4e5f6a7b8c9d",
                        )
                    ],
                ),
                InspectionFinding(number=2, content="Tiếp công dân đúng quy định."),
            ],
        ),
        InspectionActionReported(
            **_inspection_action(),
            report_number=1,
            content="Đã niêm yết tại 8/8 ấp; biên bản kèm theo.",
            done=True,
            reported_at=_at("2023-10-10T09:00:00+07:00"),
            on_time=True,
        ),
        InspectionActionClosed(
            **_inspection_action(),
            note="Đã kiểm tra biên bản niêm yết; đạt yêu cầu.",
            closed_at=_at("2023-10-12T15:00:00+07:00"),
            on_time=True,
        ),
        InspectionActionReturned(
            **_inspection_action(),
            reason="Biên bản niêm yết chưa có xác nhận của trưởng ấp.",
            returned_at=_at("2023-10-11T15:00:00+07:00"),
            due_at=_at("2023-10-15T23:59:59.999999+07:00"),
        ),
        ConferenceRecorded(
            **conference,
            plan_doc_number="123/KH-UBND",
            receiving_unit="SNV",
            year=2023,
            held_on=date(2023, 2, 8),
            participants=42,
            due_at=last_instant_before(date(2023, 4, 1)),
            on_time=True,
            recorded_at=_at("2023-02-10T09:00:00+07:00"),
            obligation_id="5c4d3e2f-1a0b-5c9d-8e7f-6a5b4c3d2e1f",
        ),
        ConferenceMinutesAttached(
            **conference,
            filename="Biên bản hội nghị CBCCVC 2023.pdf",
            content_type="application/pdf",
            size=182734,
            sha256="9f2c1e0b7a6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b",
            attached_at=_at("2023-02-10T09:05:00+07:00"),
        ),
        NotificationDelivered(
            **notification,
            attempts=1,
            delivered_at=_at("2023-06-02T09:15:09+07:00"),
        ),
        NotificationFailed(
            **notification,
            attempts=8,
            last_error="SMTPRecipientRefused(550, '5.1.1 mailbox unavailable')",
            failed_at=_at("2023-06-02T09:31:40+07:00"),
        ),
        TokenIssued(
            unit_path=COMMUNE,
            token_id="5b7e2c9a-1f0d-4c3b-9a8e-7d6c5b4a3f21",
            token_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            unit_code=COMMUNE[-1],
            role="submitter",
            expires_at=_at("2024-01-16T08:00:00+07:00"),
            issued_by="1c2d3e4f-admin-token",
        ),
        TokenRevoked(
            unit_path=COMMUNE,
            token_id="5b7e2c9a-1f0d-4c3b-9a8e-7d6c5b4a3f21",
            revoked_at=_at("2023-09-01T10:00:00+07:00"),
            revoked_by="1c2d3e4f-admin-token",
        ),
    ]
    by_type = {type(event): event for event in found}
    missing = [cls.__name__ for cls in CATALOGUE if cls not in by_type]
    if missing:
        raise LookupError(f"no example event for: {', '.join(missing)}")
    return by_type


# --- JSON Schema and tables ---------------------------------------------------------------


def subject_pattern(cls: type[Event]) -> str:
    return f"{cls.subject_prefix()}.<unit path tokens>"


def owner_of(cls: type[Event]) -> tuple[str, str]:
    """(stream name, owning service) of the stream that holds the event's subjects."""
    spec = stream_for_subject(f"{cls.subject_prefix()}.X")
    return spec.name, spec.owner


def docstring(cls: type[BaseModel]) -> str:
    text = inspect.getdoc(cls) or ""
    if cls.__doc__ is None or text == inspect.getdoc(Event) or text == inspect.getdoc(BaseModel):
        return ""
    return " ".join(text.replace("``", "`").split())


def schema_of(cls: type[Event]) -> dict[str, Any]:
    """The event's JSON Schema (validation mode), with dialect, id and bus coordinates."""
    schema = cls.model_json_schema()
    stream, owner = owner_of(cls)
    head: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{cls.ce_type()}.json",
        "$comment": (
            f"Body of ce-type {cls.ce_type()} on {subject_pattern(cls)} "
            f"(stream {stream}, published by the {owner} service). "
            "Generated by scripts/gen_event_docs.py from shared/events.py; do not edit."
        ),
    }
    if "description" not in schema and cls.__name__ in EVENT_NOTES:
        head["description"] = EVENT_NOTES[cls.__name__]
    return {**head, **schema}


@functools.cache
def schema_files() -> dict[Path, str]:
    """Relative path → content of every schema file (computed once per process)."""
    return {
        SCHEMAS_DIR / f"{cls.ce_type()}.json": json.dumps(
            schema_of(cls), indent=2, ensure_ascii=False
        )
        + "\n"
        for cls in CATALOGUE
    }


def type_text(schema: Mapping[str, Any]) -> str:
    """A JSON Schema type as a short phrase, linking to the shared types below."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(type_text(part) for part in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_text(schema.get('items', {}))}"
    if kind == "string":
        if schema.get("pattern") == UNIT_CODE_PATTERN:
            return "unit code"
        if "format" in schema:
            return f"string ({schema['format']})"
        if "pattern" in schema:
            return f"string matching `{schema['pattern']}`"
        return "string"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_text(schema['additionalProperties'])} by key"
    return str(kind)


def pretty_json(value: Any, indent: str = "") -> str:
    """JSON indented by two spaces, with lists of plain values kept on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {pretty_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        items = [f"{inner}{pretty_json(item, inner)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default_text(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "empty"
    rendered = json.dumps(value, ensure_ascii=False, default=str)
    return f"`{rendered}`"


def fields_table(
    owners: Sequence[str],
    properties: Mapping[str, Any],
    required: Sequence[str],
    defaults: Mapping[str, Any],
) -> list[str]:
    """A markdown table of fields; ``owners`` are the model and its bases, for FIELD_NOTES."""
    lines = ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for name, prop in properties.items():
        if name in required:
            needed = "yes"
        elif name in defaults:
            needed = f"no, default {_default_text(defaults[name])}"
        else:
            needed = "no"
        description = prop.get("description") or next(
            (FIELD_NOTES[f"{o}.{name}"] for o in owners if f"{o}.{name}" in FIELD_NOTES), ""
        )
        lines.append(f"| `{name}` | {_cell(type_text(prop))} | {needed} | {_cell(description)} |")
    return lines


def model_defaults(cls: type[BaseModel]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if not info.is_required():
            value = info.get_default(call_default_factory=True, validated_data={})
            found[name] = value.value if isinstance(value, ReportKind | Channel) else value
    return found


def _check_notes() -> None:
    known: set[str] = set()
    for cls in CATALOGUE:
        known.update(f"{cls.__name__}.{name}" for name in cls.model_fields)
        for name, definition in cls.model_json_schema().get("$defs", {}).items():
            known.update(f"{name}.{field}" for field in definition.get("properties", {}))
    unknown = sorted(set(FIELD_NOTES) - known) + sorted(
        set(EVENT_NOTES) - {cls.__name__ for cls in CATALOGUE}
    )
    if unknown:
        raise LookupError(f"notes name fields or events that do not exist: {', '.join(unknown)}")


def shared_types() -> dict[str, dict[str, Any]]:
    """Every nested type ($defs) used by an event; the same name must mean the same type."""
    found: dict[str, dict[str, Any]] = {}
    for cls in CATALOGUE:
        for name, definition in cls.model_json_schema().get("$defs", {}).items():
            if name in found and found[name] != definition:
                raise ValueError(f"two different types are named {name}")
            found[name] = definition
    return dict(sorted(found.items()))


def example_message() -> list[str]:
    """A complete message (subject, headers, body) exactly as the envelope encodes it."""
    event = examples()[ReportSubmitted]
    _stream, owner = owner_of(ReportSubmitted)
    subject, headers, body = encode(
        event,
        source=f"/qcdc/{owner}",
        correlation_id=EXAMPLE_CORRELATION_ID,
        event_id=EXAMPLE_EVENT_ID,
        time=EXAMPLE_TIME,
    )
    lines = ["```text", f"subject: {subject}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["", body.decode(), "```"]
    return lines


@functools.cache
def render_reference() -> str:
    """The generated part of docs/events.md (computed once per process)."""
    _check_notes()
    samples = examples()
    out: list[str] = [
        "<!-- Generated by scripts/gen_event_docs.py from shared/events.py and",
        "     shared/bus/streams.py. Do not edit by hand: run the script. -->",
        "",
        "## Event reference",
        "",
        "| Event | ce-type | Subject | Stream | Published by |",
        "|---|---|---|---|---|",
    ]
    for cls in CATALOGUE:
        stream, owner = owner_of(cls)
        anchor = cls.__name__.lower()
        out.append(
            f"| [{cls.__name__}](#{anchor}) | `{cls.ce_type()}` | `{subject_pattern(cls)}` "
            f"| `{stream}` | {owner} |"
        )
    out += [
        "",
        "A complete message, as `shared.bus.envelope.encode` writes it (headers, then the body):",
        "",
        *example_message(),
    ]
    for cls in CATALOGUE:
        stream, owner = owner_of(cls)
        schema = cls.model_json_schema()
        out += ["", f"### {cls.__name__}", ""]
        summary = docstring(cls) or EVENT_NOTES.get(cls.__name__, "")
        if summary:
            out += [summary, ""]
        out += [
            f"- Subject: `{subject_pattern(cls)}`",
            f"- ce-type: `{cls.ce_type()}`",
            f"- Stream: `{stream}`, published by the {owner} service",
            f"- JSON Schema: [`schemas/{cls.ce_type()}.json`](schemas/{cls.ce_type()}.json)",
            "",
            *fields_table(
                [base.__name__ for base in cls.__mro__ if issubclass(base, Event)],
                schema["properties"],
                schema.get("required", []),
                model_defaults(cls),
            ),
            "",
            "Example body:",
            "",
            "```json",
            pretty_json(samples[cls].model_dump(mode="json")),
            "```",
        ]
    out += ["", "## Types used inside events"]
    for name, definition in shared_types().items():
        out += ["", f"### {name}", ""]
        description = " ".join(str(definition.get("description", "")).replace("``", "`").split())
        if description:
            out += [description, ""]
        if "enum" in definition:
            out.append("A string, one of: " + ", ".join(f"`{v}`" for v in definition["enum"]) + ".")
            continue
        properties = definition.get("properties", {})
        defaults = {k: v["default"] for k, v in properties.items() if "default" in v}
        out += fields_table([name], properties, definition.get("required", []), defaults)
    return "\n".join(out) + "\n"


# --- the files ----------------------------------------------------------------------------


def splice(document: str, generated: str) -> str:
    """Replace what lies between the markers; append a marked section if there is none."""
    block = f"{BEGIN}\n{generated}{END}"
    start = document.find(BEGIN)
    end = document.find(END)
    if start == -1 or end == -1 or end < start:
        separator = "" if not document or document.endswith("\n\n") else "\n"
        return f"{document}{separator}{block}\n"
    return document[:start] + block + document[end + len(END) :]


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    """Every generated file (relative path → full content) as it should be now."""
    events_md = root / EVENTS_MD
    current = events_md.read_text(encoding="utf-8") if events_md.exists() else ""
    return {
        EVENTS_MD: splice(current, render_reference()),
        **schema_files(),
        ASYNCAPI_YAML: asyncapi.render(),
    }


def stray_schemas(root: Path = ROOT) -> list[Path]:
    """Schema files of events that are no longer in the catalogue."""
    expected = {SCHEMAS_DIR / f"{cls.ce_type()}.json" for cls in CATALOGUE}
    folder = root / SCHEMAS_DIR
    if not folder.is_dir():
        return []
    return sorted(
        path.relative_to(root)
        for path in folder.glob("qcdc.*.json")
        if path.relative_to(root) not in expected
    )


def out_of_date(root: Path = ROOT) -> list[Path]:
    """Generated files that differ from what the code says (relative paths)."""
    stale = [
        path
        for path, content in expected_files(root).items()
        if not (root / path).exists() or (root / path).read_text(encoding="utf-8") != content
    ]
    return stale + stray_schemas(root)


def write(root: Path = ROOT) -> list[Path]:
    """Bring every generated file up to date; return the ones that changed."""
    changed: list[Path] = []
    for path, content in expected_files(root).items():
        target = root / path
        if target.exists() and target.read_text(encoding="utf-8") == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        changed.append(path)
    for path in stray_schemas(root):
        (root / path).unlink()
        changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the generated files are out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_date()
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        if stale:
            print("run: python scripts/gen_event_docs.py", file=sys.stderr)
            return 1
        print("event docs are up to date")
        return 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
