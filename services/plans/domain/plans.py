"""Plans as data: content areas, assignees, reporting schedule; the lifecycle. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from services.plans.domain.units import Unit
from shared.events import (
    Assignee,
    ContentArea,
    Event,
    PlanIssued,
    ReportKind,
    ScheduledReport,
)
from shared.vntime import last_instant_before


class PlanStatus(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    AMENDED = "amended"
    CLOSED = "closed"


class PlanRefused(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class AssigneeRule:
    """Who a plan binds: units of given kinds, all units of given subtrees, or named units."""

    kinds: tuple[str, ...] = ()
    subtrees: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleEntry:
    key: str
    kind: ReportKind
    title: str
    period_start: date
    period_end: date
    due_before: date
    receiving_unit: str

    @property
    def due_at(self) -> datetime:
        return last_instant_before(self.due_before)


@dataclass
class Plan:
    id: str
    doc_number: str
    title: str
    issuing_unit: str
    issued_on: date
    year: int
    place: str = ""
    content_areas: list[ContentArea] = field(default_factory=list)
    assignee_rule: AssigneeRule = field(default_factory=AssigneeRule)
    schedule: list[ScheduleEntry] = field(default_factory=list)
    status: PlanStatus = PlanStatus.DRAFT
    assignees: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list, repr=False)

    def issue(self, registry: dict[str, Unit]) -> PlanIssued:
        if self.status is not PlanStatus.DRAFT:
            raise PlanRefused(f"plan {self.doc_number} is {self.status.value}, not a draft")
        issuer = registry.get(self.issuing_unit)
        if issuer is None:
            raise PlanRefused(f"unknown issuing unit {self.issuing_unit}", field="issuing_unit")
        assignees = expand_assignees(self.assignee_rule, registry)
        if not assignees:
            raise PlanRefused("the plan assigns no unit", field="assignees")
        if not self.schedule:
            raise PlanRefused("the plan has no reporting schedule", field="schedule")
        for index, entry in enumerate(self.schedule):
            if entry.receiving_unit not in registry:
                raise PlanRefused(
                    f"unknown receiving unit {entry.receiving_unit}",
                    field=f"schedule.{index}.receiving_unit",
                )
            if entry.due_before <= self.issued_on:
                raise PlanRefused(
                    "the deadline must fall after the date of issue",
                    field=f"schedule.{index}.due_before",
                )
        self.status = PlanStatus.ISSUED
        self.assignees = [unit.code for unit in assignees]
        event = PlanIssued(
            unit_path=issuer.path,
            plan_id=self.id,
            doc_number=self.doc_number,
            title=self.title,
            issuing_unit=self.issuing_unit,
            issued_on=self.issued_on,
            year=self.year,
            content_areas=self.content_areas,
            assignees=[
                Assignee(code=u.code, unit_path=u.path, kind=u.kind, name=u.name) for u in assignees
            ],
            schedule=[
                ScheduledReport(
                    key=e.key,
                    kind=e.kind,
                    title=e.title,
                    period_start=e.period_start,
                    period_end=e.period_end,
                    due_before=e.due_before,
                    due_at=e.due_at,
                    receiving_unit=e.receiving_unit,
                )
                for e in self.schedule
            ],
        )
        self.events.append(event)
        return event


def expand_assignees(rule: AssigneeRule, registry: dict[str, Unit]) -> list[Unit]:
    """Concrete active units matching the rule, each once, in registry order."""
    unknown = [code for code in (*rule.units, *rule.subtrees) if code not in registry]
    if unknown:
        raise PlanRefused(f"unknown unit(s): {', '.join(unknown)}", field="assignees")
    if len(set(rule.units)) != len(rule.units):
        raise PlanRefused("a unit is assigned twice", field="assignees.units")
    chosen: list[Unit] = []
    for unit in registry.values():
        if not unit.active:
            continue
        if (
            unit.code in rule.units
            or unit.kind in rule.kinds
            or any(unit.is_within(root) and unit.code != root for root in rule.subtrees)
        ):
            chosen.append(unit)
    return chosen
