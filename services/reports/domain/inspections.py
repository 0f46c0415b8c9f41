"""Inspections and surveys (kiểm tra, khảo sát) of how the Regulation is implemented, their
findings per inspected unit, and the follow-up of the actions the findings require (the seed
plan's part II.6). Pure, no I/O.

An **inspection** is scheduled by an inspecting unit for one or more inspected units within
a planned window. When it is done at a unit, the inspecting unit records its findings there;
each finding may require **actions**, each with a deadline. Every action opens a follow-up
obligation of the inspected unit (schedule key ``inspection-<action id>``, kind ad hoc, due
at the end of the action's deadline day, received by the inspecting unit), which the
deadline clock reminds and urges like a report.

The inspected unit reports on an action as often as it needs; a report marked ``done``
meets the obligation for now (status ``submitted``: off the clock) and asks the inspecting
unit to verify. The inspecting unit then **closes** the action (obligation ``accepted``), or
**returns** it with a reason (obligation ``returned``: awaited again, back on the clock). So
the unit that found the problem decides that it is corrected, as with a report's review. An
action closed counts as on time when the ``done`` report that the inspecting unit accepted
was made by the deadline. Every report, closing and return is kept in the action's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from services.reports.domain.model import (
    FOLLOW_UP_PREFIX,
    RECONSIDER,
    Obligation,
    ObligationStatus,
    obligation_id,
)
from shared.errors import Refused
from shared.events import (
    Event,
    InspectionAction,
    InspectionActionClosed,
    InspectionActionReported,
    InspectionActionReturned,
    InspectionFinding,
    InspectionFindingsRecorded,
    InspectionKind,
    InspectionScheduled,
)
from shared.mapping import shown
from shared.vntime import is_on_time, last_instant_before

_E = TypeVar("_E", bound=Event)
SCHEDULE_PREFIX = FOLLOW_UP_PREFIX
"""Schedule key of a follow-up obligation: ``inspection-<action id>`` (its plan id is empty)."""

KIND_LABELS = {InspectionKind.INSPECTION: "kiểm tra", InspectionKind.SURVEY: "khảo sát"}
MAX_WINDOW_DAYS = 366
MAX_FINDINGS = 100
MAX_ACTIONS = 50
"""Per finding."""


class InspectionRefused(Refused):
    """A command the inspection rules refuse."""


class ActionStatus(StrEnum):
    OPEN = "open"
    """Awaiting the inspected unit's report that it is done."""
    REPORTED_DONE = "reported_done"
    """Reported done; the inspecting unit verifies."""
    CLOSED = "closed"


class StepKind(StrEnum):
    REPORT = "report"
    CLOSED = "closed"
    RETURNED = "returned"


@dataclass(frozen=True)
class Step:
    """One step of an action's history: a follow-up report, its closing or its return."""

    number: int
    kind: StepKind
    text: str
    at: datetime
    by_unit: str
    done: bool = False


def action_due_at(due_on: date) -> datetime:
    """The last on-time instant of an action due on ``due_on``: the end of that day (ICT)."""
    return last_instant_before(due_on + timedelta(days=1))


@dataclass
class Action:
    """A required action of a finding and its follow-up: the aggregate the inspected unit
    reports on and the inspecting unit closes."""

    id: str
    inspection_id: str
    kind: InspectionKind
    topic: str
    inspecting_unit: str
    unit_code: str
    unit_path: list[str]
    finding_number: int
    number: int
    content: str
    conducted_on: date
    due_at: datetime
    status: ActionStatus = ActionStatus.OPEN
    done_reported_at: datetime | None = None
    closed_at: datetime | None = None
    closed_on_time: bool | None = None
    history: list[Step] = field(default_factory=list)
    events: list[Event] = field(default_factory=list, repr=False)

    @property
    def schedule_key(self) -> str:
        return f"{SCHEDULE_PREFIX}{self.id}"

    @property
    def obligation_id(self) -> str:
        return obligation_id("", self.schedule_key, self.unit_code)

    def obligation(self) -> Obligation:
        """What the inspected unit owes: a report that the action is carried out, by its
        deadline, to the inspecting unit."""
        return Obligation.outside_plan(
            schedule_key=self.schedule_key,
            unit_code=self.unit_code,
            unit_path=self.unit_path,
            receiving_unit=self.inspecting_unit,
            arose_on=self.conducted_on,
            due_at=self.due_at,
            title=f"Khắc phục sau {KIND_LABELS[self.kind]}: {self.topic}",
        )

    def ref(self) -> InspectionAction:
        return shown(InspectionAction, self, action_id=self.id)

    def _tell(self, kind: type[Event], **said: Any) -> None:
        """Raise ``kind`` about this action: the action's own fields of the event (its
        inspection, topic, inspecting unit, …) and ``said``."""
        self.events.append(
            shown(
                kind,
                self,
                action_id=self.id,
                inspected_unit=self.unit_code,
                action=self.content,
                **said,
            )
        )

    def _step(self, kind: StepKind, text: str, at: datetime, by_unit: str, done: bool) -> Step:
        step = Step(len(self.history) + 1, kind, text, at, by_unit, done)
        self.history.append(step)
        return step

    def report(
        self, text: str, *, done: bool, at: datetime, by_unit: str, obligation: Obligation
    ) -> Step:
        """A follow-up report of the inspected unit; ``done`` says the action is carried out
        and takes the obligation off the clock until the inspecting unit decides."""
        if self.status is ActionStatus.CLOSED:
            raise InspectionRefused("this action is closed")
        if self.status is ActionStatus.REPORTED_DONE:
            raise InspectionRefused(
                "this action was reported done; the inspecting unit closes or returns it first"
            )
        if not text.strip():
            raise InspectionRefused("the report is empty", field="content")
        step = self._step(StepKind.REPORT, text, at, by_unit, done)
        if done:
            self.status = ActionStatus.REPORTED_DONE
            self.done_reported_at = at
            obligation.status = ObligationStatus.SUBMITTED
        self._tell(
            InspectionActionReported,
            report_number=sum(s.kind is StepKind.REPORT for s in self.history),
            content=text,
            done=done,
            reported_at=at,
            on_time=is_on_time(at, self.due_at),
        )
        return step

    def _awaiting_decision(self) -> datetime:
        if self.status is not ActionStatus.REPORTED_DONE or self.done_reported_at is None:
            raise InspectionRefused(
                f"this action is {self.status.value}: only an action reported done is closed "
                "or returned"
            )
        return self.done_reported_at

    def close(self, note: str, *, at: datetime, by_unit: str, obligation: Obligation) -> Step:
        """The inspecting unit accepts that the action is carried out."""
        reported_at = self._awaiting_decision()
        step = self._step(StepKind.CLOSED, note, at, by_unit, True)
        self.status = ActionStatus.CLOSED
        self.closed_at = at
        self.closed_on_time = is_on_time(reported_at, self.due_at)
        obligation.status = ObligationStatus.ACCEPTED
        self._tell(InspectionActionClosed, note=note, closed_at=at, on_time=self.closed_on_time)
        return step

    def send_back(self, reason: str, *, at: datetime, by_unit: str, obligation: Obligation) -> Step:
        """The inspecting unit does not accept that the action is done: it is open again,
        and its obligation is awaited (reminded, urged) again."""
        self._awaiting_decision()
        if not reason.strip():
            raise InspectionRefused("say why the action is returned", field="reason")
        step = self._step(StepKind.RETURNED, reason, at, by_unit, False)
        self.status = ActionStatus.OPEN
        self.done_reported_at = None
        obligation.status = ObligationStatus.RETURNED
        obligation.next_step_at = RECONSIDER
        self._tell(InspectionActionReturned, reason=reason, returned_at=at, due_at=self.due_at)
        return step


@dataclass(frozen=True)
class RequiredAction:
    content: str
    due_on: date


@dataclass(frozen=True)
class FindingInput:
    content: str
    actions: tuple[RequiredAction, ...] = ()


@dataclass
class Finding:
    number: int
    content: str
    actions: list[Action] = field(default_factory=list)


@dataclass
class InspectedUnit:
    code: str
    path: list[str]
    conducted_on: date | None = None
    """Set when the findings are recorded: the inspection is done at this unit."""
    conclusion: str = ""
    findings_recorded_at: datetime | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.conducted_on is not None


@dataclass
class Inspection:
    id: str
    kind: InspectionKind
    topic: str
    inspecting_unit: str
    inspecting_path: list[str]
    planned_start: date
    planned_end: date
    registered_at: datetime
    plan_id: str | None = None
    units: list[InspectedUnit] = field(default_factory=list)
    events: list[Event] = field(default_factory=list, repr=False)

    def check_schedule(self) -> None:
        if not self.topic.strip():
            raise InspectionRefused("the topic is empty", field="topic")
        if self.planned_end < self.planned_start:
            raise InspectionRefused(
                "planned_end is before planned_start: the window ends after it starts",
                field="planned_end",
            )
        if (self.planned_end - self.planned_start).days >= MAX_WINDOW_DAYS:
            raise InspectionRefused(
                f"the planned window is longer than {MAX_WINDOW_DAYS} days: schedule one "
                "inspection per year at most",
                field="planned_end",
            )
        codes = [u.code for u in self.units]
        if not codes:
            raise InspectionRefused("name at least one inspected unit", field="inspected_units")
        if len(set(codes)) != len(codes):
            raise InspectionRefused("an inspected unit is named twice", field="inspected_units")
        if self.inspecting_unit in codes:
            raise InspectionRefused(
                f"unit {self.inspecting_unit} cannot inspect itself", field="inspected_units"
            )

    def _said_at(self, kind: type[_E], unit: InspectedUnit, **said: Any) -> _E:
        """An event about this inspection at one of its units, under that unit's path: the
        inspection's own fields of the event (kind, topic, inspecting unit, …) and ``said``."""
        return shown(
            kind, self, unit_path=unit.path, inspection_id=self.id, inspected_unit=unit.code, **said
        )

    def scheduled(self) -> list[InspectionScheduled]:
        """One event per inspected unit, under its path."""
        codes = [u.code for u in self.units]
        found = [
            self._said_at(InspectionScheduled, unit, inspected_units=codes) for unit in self.units
        ]
        self.events.extend(found)
        return found

    def unit(self, code: str) -> InspectedUnit:
        for unit in self.units:
            if unit.code == code:
                return unit
        raise InspectionRefused(
            f"unit {code} is not among the units this inspection covers "
            f"({', '.join(u.code for u in self.units)})",
            field="inspected_unit",
        )

    def record_findings(
        self,
        code: str,
        *,
        conducted_on: date,
        conclusion: str,
        findings: list[FindingInput],
        action_ids: list[list[str]],
        at: datetime,
        today: date,
    ) -> list[Action]:
        """The inspection is done at unit ``code``: its findings, each with the actions it
        requires (``action_ids`` names them, finding by finding). Returns the actions, each
        to open its follow-up obligation."""
        unit = self.unit(code)
        if unit.done:
            raise InspectionRefused(
                f"the findings at unit {code} were recorded on {unit.conducted_on:%d/%m/%Y}; "
                "they are not recorded twice",
                field="inspected_unit",
            )
        if conducted_on > today:
            raise InspectionRefused("conducted_on is in the future", field="conducted_on")
        if conducted_on < self.planned_start:
            raise InspectionRefused(
                f"conducted_on is before the planned window ({self.planned_start:%d/%m/%Y})",
                field="conducted_on",
            )
        if len(findings) > MAX_FINDINGS:
            raise InspectionRefused(f"at most {MAX_FINDINGS} findings", field="findings")
        unit.conducted_on = conducted_on
        unit.conclusion = conclusion
        unit.findings_recorded_at = at
        actions: list[Action] = []
        for f_number, (given, ids) in enumerate(zip(findings, action_ids, strict=True), start=1):
            where = f"findings[{f_number - 1}]"
            if not given.content.strip():
                raise InspectionRefused("a finding is empty", field=f"{where}.content")
            if len(given.actions) > MAX_ACTIONS:
                raise InspectionRefused(f"at most {MAX_ACTIONS} actions", field=where)
            finding = Finding(f_number, given.content)
            for a_number, (required, action_id) in enumerate(
                zip(given.actions, ids, strict=True), start=1
            ):
                field_name = f"{where}.actions[{a_number - 1}]"
                if not required.content.strip():
                    raise InspectionRefused("an action is empty", field=f"{field_name}.content")
                # Deadlines lie ahead: one already past would only produce overdue notices.
                if required.due_on < today:
                    raise InspectionRefused(
                        f"the deadline {required.due_on:%d/%m/%Y} is in the past",
                        field=f"{field_name}.due_on",
                    )
                action = Action(
                    id=action_id,
                    inspection_id=self.id,
                    kind=self.kind,
                    topic=self.topic,
                    inspecting_unit=self.inspecting_unit,
                    unit_code=code,
                    unit_path=list(unit.path),
                    finding_number=f_number,
                    number=a_number,
                    content=required.content,
                    conducted_on=conducted_on,
                    due_at=action_due_at(required.due_on),
                )
                finding.actions.append(action)
                actions.append(action)
            unit.findings.append(finding)
        self.events.append(
            self._said_at(
                InspectionFindingsRecorded,
                unit,
                conducted_on=conducted_on,
                conclusion=conclusion,
                findings=[
                    InspectionFinding(
                        number=f.number, content=f.content, actions=[a.ref() for a in f.actions]
                    )
                    for f in unit.findings
                ],
            )
        )
        return actions
