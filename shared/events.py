"""Event contracts, version 1: the public bus contract.

Every event is published on ``qcdc.v1.<aggregate>.<event>.<unit path tokens>`` with a JSON
body (this model) and CloudEvents headers (see :mod:`shared.bus.envelope`). Within v1 these
models only grow: fields are added with defaults, never renamed, retyped or removed.
Unknown fields are ignored when decoding, so a consumer on an older version keeps working.

``unit_path`` on every event is the path of the unit the event speaks for; it becomes the
subject's tail, and a consumer refuses an event whose subject does not match it.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.units import NfcName, NfcText, UnitCode, UnitPath

SPEC_VERSION = "v1"


class ReportKind(StrEnum):
    SIX_MONTH = "six_month"
    ANNUAL = "annual"
    THEMATIC = "thematic"
    AD_HOC = "ad_hoc"


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class Part(BaseModel):
    """Every event and every part of one: frozen, and tolerant of fields a later version
    adds (an older reader ignores them)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Contacts(Part):
    focal_email: str | None = Field(
        None,
        description="E-mail of the unit's focal person. Personal data: never filled on the "
        "bus any more (see sealed); kept in the v1 schema.",
    )
    head_email: str | None = Field(
        None,
        description="E-mail of the unit's head. Personal data: never filled on the bus any "
        "more (see sealed); kept in the v1 schema.",
    )
    webhook_url: str | None = Field(None, description="Webhook of the unit's own system.")
    sealed: str | None = Field(
        None,
        description="The e-mail addresses (focal_email, head_email), encrypted (Fernet) under "
        "the key only the plans and notify services hold (QCDC_CONTACTS_KEY); empty when "
        "the unit has none. Personal data stays off the bus (Decree 13/2023/NĐ-CP).",
    )


class Event(Part):
    """Base of every event. Subclasses set ``aggregate`` and ``event``."""

    aggregate: ClassVar[str]
    event: ClassVar[str]

    unit_path: UnitPath = Field(description="Path of the unit the event speaks for.")

    @classmethod
    def ce_type(cls) -> str:
        return f"qcdc.{cls.aggregate}.{cls.event}.{SPEC_VERSION}"

    @classmethod
    def subject_prefix(cls) -> str:
        return f"qcdc.{SPEC_VERSION}.{cls.aggregate}.{cls.event}"

    def subject(self) -> str:
        return ".".join([self.subject_prefix(), *self.unit_path])


# --- units (published by the plans service) -------------------------------------------


class UnitRegistered(Event):
    """A unit joined the registry."""

    aggregate = "unit"
    event = "registered"

    code: UnitCode
    name: NfcName = Field(description="Vietnamese name, NFC.")
    kind: str = Field(description="Unit kind, e.g. province, department, district, commune.")
    parent_code: UnitCode | None = Field(None, description="Administrative parent.")
    reports_to_code: UnitCode | None = Field(None, description="Unit receiving its reports.")
    contacts: Contacts = Field(default_factory=Contacts)
    active: bool = True
    tags: list[str] = Field(
        default_factory=list, description="Roles of the unit, e.g. 'home_affairs'."
    )


class UnitUpdated(UnitRegistered):
    """A unit's name, contacts, reporting line or state changed. Carries the full new state."""

    aggregate = "unit"
    event = "updated"

    dissolved_on: date | None = None


# --- plans (published by the plans service) -------------------------------------------


class ContentArea(Part):
    code: str
    title: NfcName
    description: NfcText = ""


class Assignee(Part):
    """A concrete unit a plan assigns, expanded at issue time."""

    code: UnitCode
    unit_path: UnitPath
    kind: str
    name: NfcName = ""


class ScheduledReport(Part):
    """One entry of a plan's reporting schedule."""

    key: str = Field(description="Stable key of the entry within the plan, e.g. 'six_month'.")
    kind: ReportKind
    title: NfcText = ""
    period_start: date = Field(description="First day of the data period (cut-off start).")
    period_end: date = Field(description="Last day of the data period (cut-off end).")
    due_before: date = Field(description="The plan's 'before <date>' as written.")
    due_at: AwareDatetime = Field(description="Last on-time instant (UTC).")
    receiving_unit: UnitCode


class StaffConferenceSchedule(Part):
    """What a plan asks of the agencies and public service units it binds: their annual
    conference of officials, civil servants and employees (hội nghị cán bộ, công chức, viên
    chức và người lao động), held and recorded by a deadline (seed part II.4)."""

    key: str = Field("staff_conference", description="Schedule key of the obligations it opens.")
    title: NfcText = ""
    unit_kinds: list[str] = Field(
        description="Kinds of the assignees that owe a conference, e.g. department, "
        "public_service_unit."
    )
    held_from: date = Field(description="First day a conference counts for the plan's year.")
    due_before: date = Field(description="The plan's 'before <date>' as written.")
    due_at: AwareDatetime = Field(description="Last on-time instant (UTC).")
    receiving_unit: UnitCode = Field(description="The unit that follows the records up.")


class PlanIssued(Event):
    """A plan was issued; ``assignees`` are the concrete units it binds."""

    aggregate = "plan"
    event = "issued"

    plan_id: str
    doc_number: str = Field(description="Number and symbol, e.g. '123/KH-UBND'.")
    title: NfcText
    issuing_unit: UnitCode
    issued_on: date
    year: int
    content_areas: list[ContentArea] = Field(default_factory=list)
    assignees: list[Assignee]
    schedule: list[ScheduledReport]
    sub_plan_due_at: AwareDatetime | None = Field(
        None, description="Last on-time instant for each assignee's own implementation plan."
    )
    parent_plan_id: str | None = Field(
        None, description="Set when this plan implements another (a unit's sub-plan)."
    )
    staff_conference: StaffConferenceSchedule | None = Field(
        None,
        description="Set when the plan asks its agencies and public service units to record "
        "their annual staff conference.",
    )


class ScheduleChange(Part):
    key: str
    old_due_at: AwareDatetime
    new_due_at: AwareDatetime


class PlanAmended(Event):
    """An issued plan changed; carries exactly what changed."""

    aggregate = "plan"
    event = "amended"

    plan_id: str
    doc_number: str = ""
    title: NfcText = ""
    amendment: int = Field(description="1 for the first amendment, then 2, …")
    reason: NfcText = ""
    added_assignees: list[Assignee] = Field(default_factory=list)
    removed_assignees: list[UnitCode] = Field(default_factory=list)
    schedule_changes: list[ScheduleChange] = Field(default_factory=list)
    schedule: list[ScheduledReport] = Field(
        default_factory=list, description="The whole schedule after the amendment."
    )
    staff_conference: StaffConferenceSchedule | None = Field(
        None, description="The staff conference requirement after the amendment, if any."
    )


class PlanClosed(Event):
    """An issued plan was closed; it binds no one from now on."""

    aggregate = "plan"
    event = "closed"

    plan_id: str
    closed_at: AwareDatetime
    reason: NfcText = ""


class SubPlanRegistered(Event):
    """A unit registered its own implementation plan of a parent plan."""

    aggregate = "subplan"
    event = "registered"

    plan_id: str = Field(
        "", description="The sub-plan's id when it was issued here; empty if only registered."
    )
    parent_plan_id: str
    unit_code: UnitCode
    doc_number: str
    issued_on: date


class ReportRequested(Event):
    """A unit asked chosen units for a thematic or ad-hoc report (subject: the requester)."""

    aggregate = "request"
    event = "issued"

    request_id: str
    kind: ReportKind
    topic: NfcText
    requesting_unit: UnitCode
    units: list[Assignee]
    content_areas: list[str] = Field(default_factory=list)
    indicators: list[str] = Field(default_factory=list)
    period_start: date
    period_end: date
    due_at: AwareDatetime
    plan_id: str | None = None


class DifficultyRaised(Event):
    """A unit raised a difficulty (vướng mắc) met in implementing a plan."""

    aggregate = "difficulty"
    event = "raised"

    difficulty_id: str
    plan_id: str
    unit_code: UnitCode
    content_area: str | None = None
    description: NfcText
    raised_at: AwareDatetime
    raised_to: UnitCode | None = Field(
        None, description="The unit that answers it (Home Affairs, or whom the plan names)."
    )


class DifficultyAnswered(Event):
    """The unit a difficulty was raised to answered it (subject: the raiser's path). Each
    answer is its own event: a thread keeps them all."""

    aggregate = "difficulty"
    event = "answered"

    difficulty_id: str
    plan_id: str
    unit_code: UnitCode = Field(description="The unit that raised the difficulty.")
    content_area: str | None = None
    raised_to: UnitCode
    answer_number: int = Field(description="1 for the first answer, then 2, …")
    answer: NfcText
    answered_by_unit: UnitCode
    answered_at: AwareDatetime


# --- API tokens (published by the plans service) ---------------------------------------


class TokenIssued(Event):
    """An API token was created. Carries its SHA-256, never the token itself, so every
    service can check the token on its own."""

    aggregate = "token"
    event = "issued"

    token_id: str
    token_hash: str = Field(description="SHA-256 (hex) of the token.")
    unit_code: UnitCode
    role: str = Field(description="submitter, reviewer, planner, administrator, integrator, front")
    expires_at: AwareDatetime | None = None
    issued_by: str = ""


class TokenRevoked(Event):
    aggregate = "token"
    event = "revoked"

    token_id: str
    revoked_at: AwareDatetime
    revoked_by: str = ""


# --- reports (published by the reports service) ---------------------------------------


class ObligationRef(Part):
    """What a report answers: which plan entry, which unit, which period, due when."""

    obligation_id: str
    plan_id: str
    schedule_key: str
    report_kind: ReportKind
    unit_code: UnitCode
    receiving_unit: UnitCode
    period_start: date
    period_end: date
    due_at: AwareDatetime
    plan_doc_number: str = ""
    plan_title: NfcText = ""


class ReportSubmitted(Event):
    """A unit submitted a report for one of its obligations; it has a receipt."""

    aggregate = "report"
    event = "submitted"

    report_id: str
    receipt_number: str
    version: int
    obligation: ObligationRef
    submitted_at: AwareDatetime
    on_time: bool
    submitted_by: str | None = Field(
        None,
        description="Never filled on the bus (a person's name or e-mail: personal data); the "
        "reports service keeps it, readable over its API within the read scopes.",
    )
    narrative: dict[str, NfcText] = Field(
        default_factory=dict, description="Text per content area code of the plan."
    )
    indicators: dict[str, int] = Field(
        default_factory=dict, description="Indicator values by code (see docs/reports.md)."
    )


class ReportAccepted(Event):
    """The receiving unit accepted a submitted report."""

    aggregate = "report"
    event = "accepted"

    report_id: str
    receipt_number: str
    obligation: ObligationRef
    reviewed_by_unit: UnitCode
    reviewed_at: AwareDatetime


class ReportReturned(Event):
    """The receiving unit returned a report for revision."""

    aggregate = "report"
    event = "returned"

    report_id: str
    receipt_number: str
    obligation: ObligationRef
    reviewed_by_unit: UnitCode
    reviewed_at: AwareDatetime
    reason: NfcText


class DeadlineApproaching(Event):
    """An obligation's deadline is near and no report has been received."""

    aggregate = "deadline"
    event = "approaching"

    obligation: ObligationRef
    days_before: int = Field(
        description="The configured offset this reminder is for (the smallest of ``steps``)."
    )
    fire_on: date = Field(description="The working day the reminder was planned for (ICT).")
    steps: list[int] = Field(
        default_factory=list,
        description="Every configured offset this one reminder covers, largest first: the "
        "working calendar put them on the same day (a long holiday, Tết). Empty from "
        "producers before it was added: just ``days_before``.",
    )
    working_days_left: int | None = Field(
        None,
        description="Working days after ``fire_on`` up to and including the last on-time "
        "day (``obligation.due_at``, ICT): 0 on the last working day. None from producers "
        "before it was added.",
    )


class DeadlineMissed(Event):
    """An obligation's deadline passed without a report (đôn đốc steps)."""

    aggregate = "deadline"
    event = "missed"

    obligation: ObligationRef
    step: int = Field(description="0 when the deadline passes, then 1, 2, … per urging step.")
    escalated: bool = Field(False, description="True once the unit's head is to be told too.")
    escalated_to_receiving_unit: bool = Field(
        False, description="True once the receiving unit's leadership is to be told too."
    )
    final: bool = Field(
        False,
        description="The last urging: no more follow; the daily digest of the receiving "
        "unit lists the obligation until it is met, waived or its deadline moves.",
    )
    urge_max_steps: int | None = Field(
        None, description="How many urgings the sender's settings make (the last is final)."
    )


class ConsolidationPublished(Event):
    """A receiving unit published a new version of a consolidation (tổng hợp) of reports.
    Publishing again when nothing but the time changed emits nothing. Who published
    (`published_by`: the official's name or e-mail) is kept by the reports service with the
    version and is not in the event."""

    aggregate = "consolidation"
    event = "published"

    consolidation_id: str
    version: int
    plan_id: str
    schedule_key: str
    receiving_unit: UnitCode
    period_start: date
    period_end: date
    expected: int
    received: int
    on_time: int
    late: int
    missing: int
    returned: int
    published_at: AwareDatetime


# --- recommendations after supervision (published by the reports service) -------------


class RecommendationRegistered(Event):
    """A recommendation after supervision (kiến nghị sau giám sát) of the Fatherland Front or
    a socio-political organisation was registered for a unit (subject: the addressed unit's
    path); an obligation to answer it in writing is open from now on."""

    aggregate = "recommendation"
    event = "registered"

    recommendation_id: str
    source_organisation: NfcText = Field(
        description="The organisation that supervised and recommends, e.g. 'Ủy ban Mặt trận "
        "Tổ quốc Việt Nam xã …'."
    )
    topic: NfcText = Field(description="The supervision topic (nội dung giám sát).")
    content: NfcText = Field(description="What is recommended.")
    addressed_unit: UnitCode = Field(description="The unit that must answer.")
    registered_by_unit: UnitCode = Field(
        description="The unit that registered it: the addressed unit, or the unit of the "
        "Fatherland Front user who did."
    )
    received_on: date = Field(description="Date the addressed unit received it.")
    answer_due_at: AwareDatetime = Field(description="Last on-time instant of the answer.")
    obligation_id: str = Field(description="The answer obligation (reminders and urging).")


class RecommendationAnswered(Event):
    """The addressed unit answered a recommendation in writing (subject: its path)."""

    aggregate = "recommendation"
    event = "answered"

    recommendation_id: str
    addressed_unit: UnitCode
    registered_by_unit: UnitCode
    source_organisation: NfcText
    topic: NfcText
    answer: NfcText
    answered_at: AwareDatetime
    on_time: bool = Field(description="Answered by answer_due_at.")


class RecommendationImplementationReported(Event):
    """The addressed unit reported how it implements an answered recommendation; the report
    marked ``completed`` closes it (subject: the addressed unit's path)."""

    aggregate = "recommendation"
    event = "implementation_reported"

    recommendation_id: str
    addressed_unit: UnitCode
    registered_by_unit: UnitCode
    source_organisation: NfcText
    topic: NfcText
    report_number: int = Field(description="1 for the first implementation report, then 2, …")
    content: NfcText
    completed: bool = Field(description="True when this report closes the recommendation.")
    reported_at: AwareDatetime


# --- inspections and surveys (published by the reports service) -----------------------


class InspectionKind(StrEnum):
    INSPECTION = "inspection"
    """Kiểm tra."""
    SURVEY = "survey"
    """Khảo sát."""


class InspectionScheduled(Event):
    """An inspecting unit scheduled an inspection or survey (kiểm tra, khảo sát) of how the
    Regulation is implemented. One event per inspected unit (subject: its path)."""

    aggregate = "inspection"
    event = "scheduled"

    inspection_id: str
    kind: InspectionKind
    topic: NfcText = Field(description="What is inspected or surveyed (nội dung).")
    inspecting_unit: UnitCode = Field(description="The unit that inspects.")
    inspected_unit: UnitCode = Field(description="The unit this event is about.")
    inspected_units: list[UnitCode] = Field(description="Every unit the inspection covers.")
    planned_start: date = Field(description="First day of the planned window.")
    planned_end: date = Field(description="Last day of the planned window.")
    plan_id: str | None = Field(None, description="The plan the inspection carries out, if any.")


class InspectionAction(Part):
    """A required action (kiến nghị khắc phục) of a finding, with its deadline."""

    action_id: str
    number: int = Field(description="1, 2, … within its finding.")
    content: NfcText
    due_at: AwareDatetime = Field(description="Last on-time instant of the follow-up.")
    obligation_id: str = Field(description="The follow-up obligation (reminders, urging).")


class InspectionFinding(Part):
    number: int = Field(description="1, 2, … within the inspected unit.")
    content: NfcText
    actions: list[InspectionAction] = Field(default_factory=list)


class InspectionFindingsRecorded(Event):
    """The inspecting unit recorded what it found at one inspected unit (subject: that
    unit's path): the inspection is done there; each required action opens a follow-up
    obligation of the inspected unit, due at the action's deadline."""

    aggregate = "inspection"
    event = "findings_recorded"

    inspection_id: str
    kind: InspectionKind
    topic: NfcText
    inspecting_unit: UnitCode
    inspected_unit: UnitCode
    conducted_on: date = Field(description="Day the inspection of this unit concluded.")
    conclusion: NfcText = Field("", description="The overall conclusion (kết luận).")
    findings: list[InspectionFinding] = Field(default_factory=list)


class InspectionActionReported(Event):
    """The inspected unit reported on a required action (subject: its path); a report with
    ``done`` asks the inspecting unit to close the action."""

    aggregate = "inspection"
    event = "action_reported"

    inspection_id: str
    action_id: str
    topic: NfcText
    inspecting_unit: UnitCode
    inspected_unit: UnitCode
    action: NfcText = Field(description="The required action reported on.")
    report_number: int = Field(description="1 for the first follow-up report, then 2, …")
    content: NfcText
    done: bool = Field(description="The unit says the action is carried out.")
    reported_at: AwareDatetime
    on_time: bool = Field(description="Reported by the action's deadline.")


class InspectionActionClosed(Event):
    """The inspecting unit closed a required action after the inspected unit reported it
    done (subject: the inspected unit's path)."""

    aggregate = "inspection"
    event = "action_closed"

    inspection_id: str
    action_id: str
    topic: NfcText
    inspecting_unit: UnitCode
    inspected_unit: UnitCode
    action: NfcText
    note: NfcText = ""
    closed_at: AwareDatetime
    on_time: bool = Field(description="The report that closed it was made by the deadline.")


class InspectionActionReturned(Event):
    """The inspecting unit did not accept a report that an action is done: the follow-up
    obligation is open again (subject: the inspected unit's path)."""

    aggregate = "inspection"
    event = "action_returned"

    inspection_id: str
    action_id: str
    topic: NfcText
    inspecting_unit: UnitCode
    inspected_unit: UnitCode
    action: NfcText
    reason: NfcText
    returned_at: AwareDatetime
    due_at: AwareDatetime = Field(description="The action's deadline, unchanged.")


# --- staff conferences (published by the reports service) ------------------------------


class ConferenceRecorded(Event):
    """An agency or public service unit recorded that it held its annual conference of
    officials, civil servants and employees (subject: its path); the obligation the plan
    opened for it is met."""

    aggregate = "conference"
    event = "recorded"

    conference_id: str
    plan_id: str
    plan_doc_number: str = ""
    unit_code: UnitCode
    receiving_unit: UnitCode
    year: int = Field(description="The plan year the conference is for.")
    held_on: date = Field(description="Day the conference was held (ICT).")
    participants: int | None = Field(None, description="How many took part, when given.")
    due_at: AwareDatetime = Field(description="Last on-time instant the plan set.")
    on_time: bool = Field(description="Held on or before the last on-time day (ICT).")
    recorded_at: AwareDatetime
    obligation_id: str


class ConferenceMinutesAttached(Event):
    """The minutes (biên bản) of a recorded conference were attached (subject: the unit's
    path). Carries the file's name and digest, never its content."""

    aggregate = "conference"
    event = "minutes_attached"

    conference_id: str
    plan_id: str
    unit_code: UnitCode
    filename: str
    content_type: str
    size: int
    sha256: str
    attached_at: AwareDatetime


# --- notifications (published by the notify service) ----------------------------------


class NotificationDelivered(Event):
    """A notification was accepted by its channel (e.g. the SMTP server)."""

    aggregate = "notification"
    event = "delivered"

    delivery_key: str
    event_id: str = Field(description="ce-id of the event that caused the notification.")
    event_type: str
    channel: Channel
    recipient: str = Field(
        description="Who was reached, never the address: 'email:unit:<code>', "
        "'webhook:unit:<code>' or '<channel>:subscription:<id>'. The address is in the "
        "delivery log, readable by the recipient's unit and administrators."
    )
    attempts: int
    delivered_at: AwareDatetime


class NotificationFailed(Event):
    """A notification was given up after its last attempt."""

    aggregate = "notification"
    event = "failed"

    delivery_key: str
    event_id: str
    event_type: str
    channel: Channel
    recipient: str = Field(description="As in NotificationDelivered: never the address.")
    attempts: int
    last_error: str = Field(description="The last error, any e-mail address in it masked.")
    failed_at: AwareDatetime


CATALOGUE: tuple[type[Event], ...] = (
    UnitRegistered,
    UnitUpdated,
    PlanIssued,
    PlanAmended,
    PlanClosed,
    SubPlanRegistered,
    ReportRequested,
    DifficultyRaised,
    DifficultyAnswered,
    ReportSubmitted,
    ReportAccepted,
    ReportReturned,
    DeadlineApproaching,
    DeadlineMissed,
    ConsolidationPublished,
    RecommendationRegistered,
    RecommendationAnswered,
    RecommendationImplementationReported,
    InspectionScheduled,
    InspectionFindingsRecorded,
    InspectionActionReported,
    InspectionActionClosed,
    InspectionActionReturned,
    ConferenceRecorded,
    ConferenceMinutesAttached,
    NotificationDelivered,
    NotificationFailed,
    TokenIssued,
    TokenRevoked,
)

BY_TYPE: dict[str, type[Event]] = {cls.ce_type(): cls for cls in CATALOGUE}
