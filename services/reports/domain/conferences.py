"""Staff conferences (hội nghị cán bộ, công chức, viên chức và người lao động): each agency
and public service unit a plan binds holds its annual conference and records it (seed part
II.4). Pure, no I/O.

A plan that asks for them (``PlanIssued.staff_conference``) opens one obligation per assignee
of the named unit kinds (schedule key ``staff_conference``, due when the plan says), so the
deadline clock reminds and urges a unit that has not recorded it like any unit that has not
reported. Recording the conference meets the obligation (nothing to review). **On time**:
held on or before the last on-time day (ICT); the record may be entered later, the clock
urges until it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from services.reports.domain.model import (
    Obligation,
    ObligationStatus,
    Owed,
    PlanHeading,
)
from shared.errors import Conflict, Refused
from shared.events import (
    Assignee,
    ConferenceMinutesAttached,
    ConferenceRecorded,
    Event,
    ReportKind,
    StaffConferenceSchedule,
)
from shared.mapping import shown
from shared.vntime import ict_date

CONFERENCE_KEY = "staff_conference"
"""Schedule key of a staff conference obligation (a plan's schedule may not use it)."""


class ConferenceRefused(Refused):
    """A command the staff conference rules refuse."""


def is_conference(obligation: Obligation) -> bool:
    return obligation.schedule_key == CONFERENCE_KEY


def check_not_conference(obligation: Obligation) -> None:
    """A conference is recorded, not reported: POST /reports refuses its obligation."""
    if is_conference(obligation):
        raise ConferenceRefused(
            "this obligation is a staff conference: record it with POST /conferences",
            field="obligation_id",
        )


@dataclass(frozen=True)
class ConferencePlan:
    """What a conference obligation repeats of its plan."""

    plan_id: str
    doc_number: str
    title: str
    schedule: StaffConferenceSchedule
    content_areas: tuple[str, ...] | None = None


def conference_obligations(plan: ConferencePlan, assignees: list[Assignee]) -> list[Obligation]:
    """One obligation per assignee whose kind holds a conference; its period runs from the
    first day a conference counts to the last on-time day."""
    schedule = plan.schedule
    heading = PlanHeading(plan.plan_id, plan.doc_number, plan.title, plan.content_areas)
    owed = Owed(
        schedule.key,
        ReportKind.ANNUAL,
        schedule.receiving_unit,
        schedule.held_from,
        ict_date(schedule.due_at),
        schedule.due_at,
    )
    return [
        Obligation.binding(heading, owed, assignee.code, assignee.unit_path)
        for assignee in assignees
        if assignee.kind in schedule.unit_kinds
    ]


@dataclass(frozen=True)
class Minutes:
    """The minutes (biên bản) of a conference, a file in the attachment store."""

    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    stored_as: str
    attached_at: datetime


@dataclass
class Conference:
    id: str
    obligation_id: str
    plan_id: str
    unit_code: str
    unit_path: list[str]
    receiving_unit: str
    held_on: date
    participants: int | None
    on_time: bool
    recorded_at: datetime
    recorded_by_unit: str
    minutes: list[Minutes] = field(default_factory=list)
    events: list[Event] = field(default_factory=list, repr=False)

    def attach_minutes(self, minutes: Minutes) -> None:
        self.minutes.append(minutes)
        # The file's own fields (name, type, size, digest, when) as the minutes say them.
        self.events.append(
            shown(
                ConferenceMinutesAttached,
                minutes,
                unit_path=self.unit_path,
                conference_id=self.id,
                plan_id=self.plan_id,
                unit_code=self.unit_code,
            )
        )


def record_conference(
    obligation: Obligation,
    *,
    conference_id: str,
    held_on: date,
    participants: int | None,
    at: datetime,
    by_unit: str,
) -> Conference:
    """The unit records that it held its conference: the obligation is met."""
    if not is_conference(obligation):
        raise ConferenceRefused(
            f"obligation {obligation.id} is not a staff conference", field="obligation_id"
        )
    if obligation.status is ObligationStatus.WAIVED:
        raise ConferenceRefused("this unit owes no conference for this plan any more")
    if not obligation.awaits_report:
        raise Conflict("this unit's conference for this plan is already recorded")
    if held_on > ict_date(at):
        raise ConferenceRefused("held_on is in the future", field="held_on")
    if held_on < obligation.period_start:
        raise ConferenceRefused(
            f"held on {held_on:%d/%m/%Y}, before {obligation.period_start:%d/%m/%Y}: that "
            "conference is the previous year's",
            field="held_on",
        )
    if participants is not None and participants < 1:
        raise ConferenceRefused("participants must be at least 1", field="participants")
    on_time = held_on <= ict_date(obligation.due_at)
    obligation.status = ObligationStatus.ACCEPTED
    conference = Conference(
        id=conference_id,
        obligation_id=obligation.id,
        plan_id=obligation.plan_id,
        unit_code=obligation.unit_code,
        unit_path=list(obligation.unit_path),
        receiving_unit=obligation.receiving_unit,
        held_on=held_on,
        participants=participants,
        on_time=on_time,
        recorded_at=at,
        recorded_by_unit=by_unit,
    )
    # What the conference says of itself, and what it repeats of its obligation.
    conference.events.append(
        shown(
            ConferenceRecorded,
            conference,
            conference_id=conference_id,
            plan_doc_number=obligation.plan_doc_number,
            year=obligation.period_start.year,
            due_at=obligation.due_at,
        )
    )
    return conference


StateName = Literal["held_on_time", "held_late", "missing", "waived"]


@dataclass(frozen=True)
class ConferenceState:
    """Where one unit stands with its conference for one plan: ``held_on_time``,
    ``held_late``, ``missing`` (not recorded; ``overdue`` once the deadline passed) or
    ``waived`` (the unit owes none any more)."""

    obligation: Obligation
    conference: Conference | None
    state: StateName
    overdue: bool


def state_of(
    obligation: Obligation, conference: Conference | None, now: datetime
) -> ConferenceState:
    state: StateName
    if conference is not None:
        state = "held_on_time" if conference.on_time else "held_late"
    elif obligation.status is ObligationStatus.WAIVED:
        state = "waived"
    else:
        state = "missing"
    return ConferenceState(
        obligation, conference, state, state == "missing" and now > obligation.due_at
    )
