"""Obligations and reports: what each unit owes, by when, and what it submitted. Pure, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from services.reports.domain.indicators import FieldError, validate_indicators
from shared.errors import Refused
from shared.events import (
    Assignee,
    Event,
    ObligationRef,
    PlanIssued,
    ReportAccepted,
    ReportKind,
    ReportRequested,
    ReportReturned,
    ReportSubmitted,
    ScheduledReport,
)
from shared.vntime import is_on_time

_Verdict = TypeVar("_Verdict", ReportAccepted, ReportReturned)
PERIODIC_KINDS = (ReportKind.SIX_MONTH, ReportKind.ANNUAL)
RECONSIDER = datetime(1970, 1, 1, tzinfo=UTC)
"""``next_step_at`` of an obligation whose next step is not known where it changed (a
report returned for revision: which steps were recorded is the clock's to read): earlier
than any step, so the deadline clock decides for it at its next pass."""
OBLIGATION_NAMESPACE = uuid.UUID("6f1b8f0e-9a43-4c3e-9d7e-4f7a2d3c1b10")
FOLLOW_UP_PREFIX = "inspection-"
"""Schedule key prefix of the follow-up of an inspection's action
(:mod:`services.reports.domain.inspections`): answered by a follow-up report there, never by
a report submitted to the obligation."""
RECOMMENDATION_PREFIX = "recommendation-"
"""Schedule key prefix of the answer to a recommendation after supervision
(:mod:`services.reports.domain.recommendations`): answered in writing there, never by a report
submitted to the obligation."""

MET_ELSEWHERE = {
    FOLLOW_UP_PREFIX: "this obligation follows up an inspection: report on it with "
    "POST /inspection-actions/{}/follow-ups",
    RECOMMENDATION_PREFIX: "this obligation is the answer to a recommendation after "
    "supervision: answer it with POST /recommendations/{}/answer",
}
"""Obligations a report cannot meet, by schedule key prefix: why, and the route that meets
them (``{}``: the action's or the recommendation's id)."""


class ObligationStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"
    WAIVED = "waived"


class ReportRefused(Refused):
    """A command the report rules refuse."""


@dataclass(frozen=True)
class Ownership:
    """Which units' obligations this instance owns: a subtree (or all) minus subtrees
    delegated to other instances. It takes and reviews reports only for those; the others
    it mirrors, read-only, from the bus."""

    scope: str | None = None
    delegated: tuple[str, ...] = ()

    def in_scope(self, unit_path: list[str]) -> bool:
        """Within this instance's subtree (owned or delegated): it knows the unit's
        obligations, mirrored or its own."""
        return self.scope is None or self.scope in unit_path

    def owns(self, unit_path: list[str]) -> bool:
        return (self.scope is None or self.scope in unit_path) and not any(
            code in unit_path for code in self.delegated
        )

    @property
    def instance(self) -> str:
        """This instance's name (``reports``, or ``reports-<scope>`` for a subtree)."""
        return f"reports-{self.scope}" if self.scope else "reports"

    def instance_owning(self, unit_path: list[str]) -> str | None:
        """The instance that owns a unit, as this instance knows it: itself, the instance
        of a subtree delegated to another (``reports-<code>``), or None when the unit is
        outside this instance's scope altogether."""
        for code in self.delegated:
            if code in unit_path:
                return f"reports-{code}"
        return self.instance if self.owns(unit_path) else None

    @property
    def receipt_prefix(self) -> str:
        return f"BC-{self.scope}" if self.scope else "BC"


def obligation_id(plan_id: str, schedule_key: str, unit_code: str) -> str:
    """Deterministic, so the same plan event always opens the same obligations."""
    return str(uuid.uuid5(OBLIGATION_NAMESPACE, f"{plan_id}|{schedule_key}|{unit_code}"))


@dataclass(frozen=True)
class PlanHeading:
    """What an obligation repeats of its plan, for messages and listings."""

    plan_id: str
    doc_number: str = ""
    title: str = ""
    content_areas: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Owed:
    """What an obligation asks of each unit it binds: which report, to whom, for which
    period, by when."""

    schedule_key: str
    report_kind: ReportKind
    receiving_unit: str
    period_start: date
    period_end: date
    due_at: datetime


@dataclass
class Obligation:
    id: str
    plan_id: str
    schedule_key: str
    report_kind: ReportKind
    unit_code: str
    unit_path: list[str]
    receiving_unit: str
    period_start: date
    period_end: date
    due_at: datetime
    plan_doc_number: str = ""
    plan_title: str = ""
    status: ObligationStatus = ObligationStatus.OPEN
    waived_reason: str | None = None
    request_id: str | None = None
    owned: bool = True
    next_step_at: datetime | None = RECONSIDER
    """When the deadline clock next has something to decide for this obligation: never later
    than its next unrecorded step (earlier only costs the clock a decision that fires
    nothing). Only :attr:`on_the_clock_at` is stored."""
    plan_closed: bool = False
    """The plan was closed: nothing more is urged (the status stays as it was)."""
    content_areas: tuple[str, ...] | None = None
    """The content area codes a narrative may speak to (the plan's, or those a request asks
    for); None where none are known (a request without a plan, rows from before 0009)."""
    events: list[Event] = field(default_factory=list, repr=False)

    @classmethod
    def binding(
        cls,
        heading: PlanHeading,
        owed: Owed,
        unit_code: str,
        unit_path: Sequence[str],
        request_id: str | None = None,
    ) -> Obligation:
        """The obligation ``owed`` puts on one unit under a plan (or a request): its id from
        the plan, the schedule key and the unit, so the same cause always opens the same one."""
        return cls(
            id=obligation_id(heading.plan_id, owed.schedule_key, unit_code),
            plan_id=heading.plan_id,
            schedule_key=owed.schedule_key,
            report_kind=owed.report_kind,
            unit_code=unit_code,
            unit_path=list(unit_path),
            receiving_unit=owed.receiving_unit,
            period_start=owed.period_start,
            period_end=owed.period_end,
            due_at=owed.due_at,
            plan_doc_number=heading.doc_number,
            plan_title=heading.title,
            request_id=request_id,
            content_areas=heading.content_areas,
        )

    @classmethod
    def outside_plan(
        cls,
        *,
        schedule_key: str,
        unit_code: str,
        unit_path: list[str],
        receiving_unit: str,
        arose_on: date,
        due_at: datetime,
        title: str,
    ) -> Obligation:
        """An ad-hoc obligation that no plan holds (a recommendation's answer, an
        inspection's follow-up): its id from its key and unit, its period the day it arose."""
        owed = Owed(schedule_key, ReportKind.AD_HOC, receiving_unit, arose_on, arose_on, due_at)
        return cls.binding(PlanHeading("", title=title), owed, unit_code, unit_path)

    @property
    def awaits_report(self) -> bool:
        """Nothing (acceptable) has been submitted yet: open, or returned for revision."""
        return self.status in (ObligationStatus.OPEN, ObligationStatus.RETURNED)

    @property
    def on_the_clock_at(self) -> datetime | None:
        """``next_step_at`` as stored: None (off the clock's scan) unless this instance owns
        the obligation, it awaits a report, however its status got there, and its plan is
        not closed."""
        on_the_clock = self.owned and self.awaits_report and not self.plan_closed
        return self.next_step_at if on_the_clock else None

    def move_deadline(self, due_at: datetime, reports: list[Report]) -> list[Report]:
        """The deadline moves (an amendment): every report already submitted is judged
        again against it (submitted by the new deadline: on time). Returns the reports whose
        verdict changed; the caller keeps the history."""
        self.due_at = due_at
        changed = []
        for report in reports:
            on_time = is_on_time(report.submitted_at, due_at)
            if on_time != report.on_time:
                report.on_time = on_time
                changed.append(report)
        return changed

    def waive(self, reason: str) -> bool:
        """Release the unit from an obligation it has not met; submissions already made
        are never undone, so only an obligation still awaiting a report is waived."""
        if not self.awaits_report:
            return False
        self.status = ObligationStatus.WAIVED
        self.waived_reason = reason
        return True

    def reopen(self) -> bool:
        """Undo a waiver (the unit was assigned again)."""
        if self.status is not ObligationStatus.WAIVED:
            return False
        self.status = ObligationStatus.OPEN
        self.waived_reason = None
        self.next_step_at = RECONSIDER
        return True

    def ref(self) -> ObligationRef:
        return ObligationRef(
            obligation_id=self.id,
            plan_id=self.plan_id,
            schedule_key=self.schedule_key,
            report_kind=self.report_kind,
            unit_code=self.unit_code,
            receiving_unit=self.receiving_unit,
            period_start=self.period_start,
            period_end=self.period_end,
            due_at=self.due_at,
            plan_doc_number=self.plan_doc_number,
            plan_title=self.plan_title,
        )

    def check_submission(
        self,
        indicators: dict[str, int],
        narrative: dict[str, str] | None = None,
        submitted_by: str | None = None,
    ) -> None:
        """Refuse, before anything is numbered, a report this obligation cannot take."""
        if self.status in (ObligationStatus.ACCEPTED, ObligationStatus.WAIVED):
            raise ReportRefused(f"this obligation is {self.status.value}; nothing to submit")
        for prefix, refusal in MET_ELSEWHERE.items():
            if self.schedule_key.startswith(prefix):
                subject = self.schedule_key.removeprefix(prefix)
                raise ReportRefused(refusal.format(subject), field="obligation_id")
        # Absent: a system that submits for the unit may not know a person. Given but
        # empty: a form left blank, which must not become an anonymous official report.
        if submitted_by is not None and not submitted_by.strip():
            raise ReportRefused(
                "submitted_by is empty: name the official who submits the report "
                "(name or e-mail), or leave the field out",
                field="submitted_by",
            )
        errors = [*self._narrative_errors(narrative or {}), *validate_indicators(indicators)]
        if errors:
            raise ReportRefused(
                "the report is not valid: " + "; ".join(f"{e.field}: {e.message}" for e in errors),
                field=errors[0].field,
                errors=[{"field": e.field, "message": e.message} for e in errors],
            )

    def _narrative_errors(self, narrative: dict[str, str]) -> list[FieldError]:
        if self.content_areas is None:
            return []
        known = ", ".join(self.content_areas) or "none"
        return [
            FieldError(
                f"narrative.{code}",
                f"{self.plan_doc_number or 'the plan'} has no content area {code!r} "
                f"(it has {known})",
            )
            for code in narrative
            if code not in self.content_areas
        ]

    def submit(
        self,
        *,
        report_id: str,
        receipt_number: str,
        version: int,
        submitted_at: datetime,
        submitted_by: str | None,
        narrative: dict[str, str] | None = None,
        indicators: dict[str, int] | None = None,
    ) -> Report:
        """Take a report (a first one, a resubmission before review, or a revision of a
        returned one): every version is kept, the latest is the one reviewed."""
        self.check_submission(indicators or {}, narrative, submitted_by)
        self.status = ObligationStatus.SUBMITTED
        report = Report(
            id=report_id,
            obligation_id=self.id,
            version=version,
            receipt_number=receipt_number,
            submitted_at=submitted_at,
            on_time=is_on_time(submitted_at, self.due_at),
            submitted_by=submitted_by,
            narrative=dict(narrative or {}),
            indicators=dict(indicators or {}),
        )
        self.events.append(
            ReportSubmitted(
                unit_path=self.unit_path,
                report_id=report.id,
                receipt_number=receipt_number,
                version=version,
                obligation=self.ref(),
                submitted_at=submitted_at,
                on_time=report.on_time,
                submitted_by=submitted_by,
                narrative=report.narrative,
                indicators=report.indicators,
            )
        )
        return report

    def _check_review(self, report: Report, reviewer: str, latest_version: int) -> None:
        if reviewer != self.receiving_unit:
            raise ReportRefused(
                f"reports of this obligation go to {self.receiving_unit}, not {reviewer}",
                field="reviewer_unit",
            )
        if report.version != latest_version:
            raise ReportRefused(
                f"version {report.version} was replaced by version {latest_version}; "
                "review the latest",
                field="report_id",
            )
        if report.status is not ReportStatus.SUBMITTED:
            raise ReportRefused(f"this report was already {report.status.value}")

    def accept(
        self, report: Report, *, reviewer: str, latest_version: int, at: datetime
    ) -> ReportAccepted:
        self._check_review(report, reviewer, latest_version)
        report.status = ReportStatus.ACCEPTED
        self.status = ObligationStatus.ACCEPTED
        return self._verdict(ReportAccepted, report, reviewer, at)

    def return_for_revision(
        self, report: Report, *, reviewer: str, latest_version: int, reason: str, at: datetime
    ) -> ReportReturned:
        """Send the report back with a reason; the obligation awaits a revised report."""
        self._check_review(report, reviewer, latest_version)
        if not reason.strip():
            raise ReportRefused("say why the report is returned", field="reason")
        report.status = ReportStatus.RETURNED
        self.status = ObligationStatus.RETURNED
        # Awaited again: steps planned while it was submitted were never recorded, and the
        # clock, reading what was, decides which still fire.
        self.next_step_at = RECONSIDER
        return self._verdict(ReportReturned, report, reviewer, at, reason=reason)

    def _verdict(
        self, kind: type[_Verdict], report: Report, reviewer: str, at: datetime, **more: Any
    ) -> _Verdict:
        """The review's event: both verdicts say which report, of which obligation, by whom."""
        event = kind(
            unit_path=self.unit_path,
            report_id=report.id,
            receipt_number=report.receipt_number,
            obligation=self.ref(),
            reviewed_by_unit=reviewer,
            reviewed_at=at,
            **more,
        )
        self.events.append(event)
        return event


class ReportStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"


@dataclass
class Report:
    id: str
    obligation_id: str
    version: int
    receipt_number: str
    submitted_at: datetime
    on_time: bool
    submitted_by: str | None
    narrative: dict[str, str] = field(default_factory=dict)
    indicators: dict[str, Any] = field(default_factory=dict)
    status: ReportStatus = ReportStatus.SUBMITTED
    reviewed_at: datetime | None = None
    reviewed_by_unit: str | None = None
    review_reason: str | None = None
    """Why it was returned: the unit reads it before revising."""


def obligations_for(
    plan: PlanHeading, schedule: list[ScheduledReport], assignees: list[Assignee]
) -> list[Obligation]:
    """One obligation per assignee × periodic report of the schedule. A unit does not
    report to itself (Home Affairs is an assignee of the plan, and its receiver)."""
    return [
        Obligation.binding(plan, _owed(entry), assignee.code, assignee.unit_path)
        for entry in schedule
        if entry.kind in PERIODIC_KINDS
        for assignee in assignees
        if assignee.code != entry.receiving_unit
    ]


def _owed(entry: ScheduledReport) -> Owed:
    return Owed(
        entry.key,
        entry.kind,
        entry.receiving_unit,
        entry.period_start,
        entry.period_end,
        entry.due_at,
    )


def obligations_for_plan(event: PlanIssued) -> list[Obligation]:
    areas = tuple(area.code for area in event.content_areas) or None
    heading = PlanHeading(event.plan_id, event.doc_number, event.title, areas)
    return obligations_for(heading, event.schedule, event.assignees)


def obligations_for_request(
    event: ReportRequested, plan_areas: tuple[str, ...] | None = None
) -> list[Obligation]:
    """One obligation per unit asked, due when the requester says, to the requester. Its
    narrative speaks to the areas the request asks for, or else to the plan's."""
    key = f"request-{event.request_id}"
    areas = tuple(event.content_areas) or plan_areas
    heading = PlanHeading(event.plan_id or "", title=event.topic, content_areas=areas)
    owed = Owed(
        key, event.kind, event.requesting_unit, event.period_start, event.period_end, event.due_at
    )
    return [
        Obligation.binding(heading, owed, unit.code, unit.unit_path, event.request_id)
        for unit in event.units
    ]
