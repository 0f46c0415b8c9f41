"""Plans as data: legal basis, content areas, assignees, reporting schedule, sub-plans, and the
lifecycle draft → issued → amended → closed. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from services.plans.domain.units import Unit
from shared.errors import Refused
from shared.events import (
    Assignee,
    ContentArea,
    Event,
    PlanAmended,
    PlanClosed,
    PlanIssued,
    ReportKind,
    ScheduleChange,
    ScheduledReport,
    StaffConferenceSchedule,
)
from shared.mapping import shown
from shared.vntime import last_instant_before

PERIODIC_KINDS = (ReportKind.SIX_MONTH, ReportKind.ANNUAL)


class PlanStatus(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    AMENDED = "amended"
    CLOSED = "closed"


class PlanRefused(Refused):
    """A command the plan rules refuse."""


@dataclass(frozen=True)
class LegalDocument:
    """A document the plan cites as its basis: number, date, issuer, title."""

    number: str
    date: date | None
    issuer: str
    title: str


@dataclass(frozen=True)
class Signer:
    name: str = ""
    position: str = ""


@dataclass(frozen=True)
class AssigneeRule:
    """Who a plan binds, expanded to concrete units within the issuer's subtree at issue time.

    ``kinds``: every unit of these kinds. ``subtrees``: every unit below these units.
    ``units``: these units. ``kinds_via_parent``: units of these kinds are reached through an
    assigned ancestor (who cascades the plan to them); where none of their ancestors is
    assigned (a two-level province has no districts) they are assigned directly."""

    kinds: tuple[str, ...] = ()
    kinds_via_parent: tuple[str, ...] = ()
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
        """The last on-time instant: the day before ``due_before``, 23:59:59.999999 ICT."""
        return last_instant_before(self.due_before)

    def to_event(self) -> ScheduledReport:
        return ScheduledReport.model_validate(self, from_attributes=True)


@dataclass(frozen=True)
class SubPlanRequirement:
    """Each assignee issues its own implementation plan, by ``due_before`` if set."""

    required: bool = False
    due_before: date | None = None


CONFERENCE_KEY = "staff_conference"
DEFAULT_CONFERENCE_KINDS = ("department", "public_service_unit")
"""Unit kinds that hold a conference of officials, civil servants and employees: state
administrative agencies and public service units (Decree 04/2015/NĐ-CP; Law 10/2022/QH15,
chapter IV). A project default: a plan names other kinds (kinds are data)."""
CONFERENCE_DEFAULT_MONTH = 4
"""Default deadline: before 1 April of the plan year, i.e. within the first quarter. A
project default (the annual conference is commonly held in the first quarter; the plan sets
its own date with ``staff_conference.due_before``)."""


@dataclass(frozen=True)
class StaffConferenceRequirement:
    """Each assignee of ``unit_kinds`` records its annual staff conference (seed part II.4),
    held on or after 1 January of the plan year and before ``due_before`` (default: before
    1 April of the plan year, see :data:`CONFERENCE_DEFAULT_MONTH`)."""

    required: bool = False
    due_before: date | None = None
    unit_kinds: tuple[str, ...] = DEFAULT_CONFERENCE_KINDS

    def deadline(self, year: int) -> date:
        return self.due_before or date(year, CONFERENCE_DEFAULT_MONTH, 1)


@dataclass(frozen=True)
class Amendment:
    """What an amendment changes: deadlines by schedule key, assignees added or removed."""

    reason: str
    deadlines: dict[str, date] = field(default_factory=dict)
    add_units: tuple[str, ...] = ()
    remove_units: tuple[str, ...] = ()


@dataclass
class Plan:
    id: str
    doc_number: str
    title: str
    issuing_unit: str
    issued_on: date
    year: int
    place: str = ""
    signer: Signer = field(default_factory=Signer)
    legal_basis: list[LegalDocument] = field(default_factory=list)
    content_areas: list[ContentArea] = field(default_factory=list)
    assignee_rule: AssigneeRule = field(default_factory=AssigneeRule)
    schedule: list[ScheduleEntry] = field(default_factory=list)
    on_request: tuple[ReportKind, ...] = ()
    sub_plan: SubPlanRequirement = field(default_factory=SubPlanRequirement)
    staff_conference: StaffConferenceRequirement = field(default_factory=StaffConferenceRequirement)
    distribution: list[str] = field(default_factory=list)
    parent_plan_id: str | None = None
    difficulties_to: str | None = None
    """The unit that answers the difficulties raised against the plan, when the plan names
    one; otherwise Home Affairs (see :func:`difficulty_receiver`)."""
    status: PlanStatus = PlanStatus.DRAFT
    assignees: list[str] = field(default_factory=list)
    amendments: int = 0
    events: list[Event] = field(default_factory=list, repr=False)

    # --- lifecycle -------------------------------------------------------------------

    def issue(self, registry: dict[str, Unit], parent: Plan | None = None) -> PlanIssued:
        if self.status is not PlanStatus.DRAFT:
            raise PlanRefused(f"plan {self.doc_number} is {self.status.value}, not a draft")
        issuer = _active(registry, self.issuing_unit, "issuing_unit")
        assignees = expand_assignees(self.assignee_rule, issuer, registry)
        if not assignees:
            raise PlanRefused("the plan assigns no unit", field="assignees")
        self._check_schedule(registry)
        if parent is not None:
            self._check_against_parent(parent)
        self.status = PlanStatus.ISSUED
        self.assignees = [unit.code for unit in assignees]
        event = shown(
            PlanIssued,
            self,
            unit_path=issuer.path,
            plan_id=self.id,
            assignees=[_assignee(u) for u in assignees],
            schedule=[entry.to_event() for entry in self.schedule],
            sub_plan_due_at=(
                last_instant_before(self.sub_plan.due_before)
                if self.sub_plan.required and self.sub_plan.due_before
                else None
            ),
            parent_plan_id=self.parent_plan_id,
            staff_conference=self.conference_schedule(registry),
        )
        self.events.append(event)
        return event

    def conference_schedule(self, registry: dict[str, Unit]) -> StaffConferenceSchedule | None:
        """The staff conference requirement as the bus carries it; its records are followed
        up by the receiving unit of the plan's annual report (else of its first entry, else
        the issuer)."""
        requirement = self.staff_conference
        if not requirement.required:
            return None
        receiving = next(
            (e.receiving_unit for e in self.schedule if e.kind is ReportKind.ANNUAL),
            self.schedule[0].receiving_unit if self.schedule else self.issuing_unit,
        )
        due_before = requirement.deadline(self.year)
        return StaffConferenceSchedule(
            key=CONFERENCE_KEY,
            title=f"Hội nghị cán bộ, công chức, viên chức và người lao động năm {self.year}",
            unit_kinds=list(requirement.unit_kinds),
            held_from=date(self.year, 1, 1),
            due_before=due_before,
            due_at=last_instant_before(due_before),
            receiving_unit=receiving,
        )

    def _check_conference(self) -> None:
        requirement = self.staff_conference
        if not requirement.required:
            return
        due_before = requirement.deadline(self.year)
        if due_before <= self.issued_on:
            default = "" if requirement.due_before else " (the default: before 1 April)"
            raise PlanRefused(
                f"the staff conference deadline{default} must fall after the date of issue: "
                "set staff_conference.due_before",
                field="staff_conference.due_before",
            )
        if not date(self.year, 1, 1) < due_before <= date(self.year + 1, 1, 1):
            raise PlanRefused(
                f"the staff conference deadline must fall within the plan year {self.year}",
                field="staff_conference.due_before",
            )
        if any(entry.key == CONFERENCE_KEY for entry in self.schedule):
            raise PlanRefused(
                f"schedule key {CONFERENCE_KEY!r} is the staff conference's", field="schedule"
            )
        if not requirement.unit_kinds:
            raise PlanRefused(
                "name the unit kinds that hold a staff conference",
                field="staff_conference.unit_kinds",
            )

    def _check_schedule(self, registry: dict[str, Unit]) -> None:
        self._check_conference()
        if not self.schedule and not self.sub_plan.required and not self.staff_conference.required:
            raise PlanRefused(
                "the plan asks nothing of its assignees: no reporting schedule, no sub-plan",
                field="schedule",
            )
        keys = [entry.key for entry in self.schedule]
        if len(set(keys)) != len(keys):
            raise PlanRefused("two schedule entries share a key", field="schedule")
        for index, entry in enumerate(self.schedule):
            where = f"schedule.{index}"
            _active(registry, entry.receiving_unit, f"{where}.receiving_unit")
            if entry.due_before <= self.issued_on:
                raise PlanRefused(
                    "the deadline must fall after the date of issue", field=f"{where}.due_before"
                )
            if entry.period_end < entry.period_start:
                raise PlanRefused(
                    "the data period ends before it starts", field=f"{where}.period_end"
                )
            check_period_before_deadline(entry.period_end, entry.due_before, f"{where}.period_end")
        if self.sub_plan.due_before and self.sub_plan.due_before <= self.issued_on:
            raise PlanRefused(
                "the sub-plan deadline must fall after the date of issue",
                field="sub_plan.due_before",
            )

    def _check_against_parent(self, parent: Plan) -> None:
        """A sub-plan collects its units' reports before its own are due upward."""
        if parent.status not in (PlanStatus.ISSUED, PlanStatus.AMENDED):
            raise PlanRefused(f"parent plan {parent.doc_number} is {parent.status.value}")
        check_not_before_parent(self.issued_on, parent, "issued_on")
        if self.issuing_unit not in parent.assignees:
            raise PlanRefused(
                f"unit {self.issuing_unit} is not an assignee of plan {parent.doc_number}",
                field="parent_plan_id",
            )
        upward = {entry.key: entry for entry in parent.schedule}
        for index, entry in enumerate(self.schedule):
            above = upward.get(entry.key)
            if above is not None and entry.due_before >= above.due_before:
                raise PlanRefused(
                    f"due before {entry.due_before:%d/%m/%Y}, not earlier than the parent "
                    f"plan's {above.due_before:%d/%m/%Y}: no time left to consolidate",
                    field=f"schedule.{index}.due_before",
                )

    def amend(
        self, amendment: Amendment, registry: dict[str, Unit], now: datetime | None = None
    ) -> PlanAmended:
        """``now``: a deadline may not be moved to an instant already past."""
        if self.status not in (PlanStatus.ISSUED, PlanStatus.AMENDED):
            raise PlanRefused(
                f"plan {self.doc_number} is {self.status.value}; only an issued plan can be amended"
            )
        if not (amendment.deadlines or amendment.add_units or amendment.remove_units):
            raise PlanRefused("the amendment changes nothing")
        changes = self._move_deadlines(amendment.deadlines, now)
        added = self._add_assignees(amendment.add_units, registry)
        removed = self._remove_assignees(amendment.remove_units)
        self.status = PlanStatus.AMENDED
        self.amendments += 1
        issuer = registry[self.issuing_unit]
        event = PlanAmended(
            unit_path=issuer.path,
            plan_id=self.id,
            doc_number=self.doc_number,
            title=self.title,
            amendment=self.amendments,
            reason=amendment.reason,
            added_assignees=[_assignee(u) for u in added],
            removed_assignees=removed,
            schedule_changes=changes,
            schedule=[entry.to_event() for entry in self.schedule],
            staff_conference=self.conference_schedule(registry),
        )
        self.events.append(event)
        return event

    def _move_deadlines(
        self, deadlines: dict[str, date], now: datetime | None
    ) -> list[ScheduleChange]:
        by_key = {entry.key: i for i, entry in enumerate(self.schedule)}
        changes = []
        for key, due_before in deadlines.items():
            if key not in by_key:
                raise PlanRefused(f"no schedule entry {key!r}", field=f"deadlines.{key}")
            old = self.schedule[by_key[key]]
            if due_before <= self.issued_on:
                raise PlanRefused(
                    "the deadline must fall after the date of issue", field=f"deadlines.{key}"
                )
            check_period_before_deadline(old.period_end, due_before, f"deadlines.{key}")
            if due_before == old.due_before:
                continue
            new = replace(old, due_before=due_before)
            if now is not None and new.due_at <= now:
                # Moved into the past, every unit would at once be overdue and urged.
                raise PlanRefused(
                    f"the new deadline (before {due_before:%d/%m/%Y}) has already passed",
                    field=f"deadlines.{key}",
                )
            self.schedule[by_key[key]] = new
            changes.append(ScheduleChange(key=key, old_due_at=old.due_at, new_due_at=new.due_at))
        return changes

    def _add_assignees(self, codes: tuple[str, ...], registry: dict[str, Unit]) -> list[Unit]:
        issuer = registry[self.issuing_unit]
        added = []
        for code in codes:
            unit = _active(registry, code, "add_units")
            if code in self.assignees:
                raise PlanRefused(f"unit {code} is already assigned", field="add_units")
            if not unit.is_within(issuer.code) or unit.code == issuer.code:
                raise PlanRefused(f"unit {code} is outside the issuer's units", field="add_units")
            self.assignees.append(code)
            added.append(unit)
        return added

    def _remove_assignees(self, codes: tuple[str, ...]) -> list[str]:
        for code in codes:
            if code not in self.assignees:
                raise PlanRefused(f"unit {code} is not assigned", field="remove_units")
            self.assignees.remove(code)
        if codes and not self.assignees:
            raise PlanRefused(
                "the amendment would leave the plan with no assignee", field="remove_units"
            )
        return list(codes)

    def close(self, reason: str, at: datetime, registry: dict[str, Unit]) -> PlanClosed:
        if self.status not in (PlanStatus.ISSUED, PlanStatus.AMENDED):
            raise PlanRefused(
                f"plan {self.doc_number} is {self.status.value}; only an issued plan can be closed"
            )
        self.status = PlanStatus.CLOSED
        event = PlanClosed(
            unit_path=registry[self.issuing_unit].path, plan_id=self.id, closed_at=at, reason=reason
        )
        self.events.append(event)
        return event

    def roll_over(self, new_id: str, year: int) -> Plan:
        """A copy for another year, every date shifted by whole years, as a new draft."""
        years = year - self.year
        if years == 0:
            raise PlanRefused("the plan is already for that year", field="year")
        return Plan(
            id=new_id,
            doc_number=self.doc_number,
            title=self.title.replace(str(self.year), str(year)),
            issuing_unit=self.issuing_unit,
            issued_on=shift_years(self.issued_on, years),
            year=year,
            place=self.place,
            signer=self.signer,
            legal_basis=list(self.legal_basis),
            content_areas=list(self.content_areas),
            assignee_rule=self.assignee_rule,
            schedule=[
                replace(
                    e,
                    period_start=shift_years(e.period_start, years),
                    period_end=shift_years(e.period_end, years),
                    due_before=shift_years(e.due_before, years),
                )
                for e in self.schedule
            ],
            on_request=self.on_request,
            sub_plan=replace(
                self.sub_plan,
                due_before=shift_years(self.sub_plan.due_before, years)
                if self.sub_plan.due_before
                else None,
            ),
            staff_conference=replace(
                self.staff_conference,
                due_before=shift_years(self.staff_conference.due_before, years)
                if self.staff_conference.due_before
                else None,
            ),
            distribution=list(self.distribution),
        )


HOME_AFFAIRS_TAG = "home_affairs"


def difficulty_receiver(plan: Plan, registry: dict[str, Unit]) -> Unit:
    """Who answers a difficulty raised against ``plan``: the unit the plan names, or else
    the issuer's province's Home Affairs ("through the Department of Home Affairs"), or,
    where none is registered, the issuing unit itself."""
    if plan.difficulties_to:
        return _active(registry, plan.difficulties_to, "difficulties_to")
    issuer = registry[plan.issuing_unit]
    home_affairs = [
        unit
        for unit in registry.values()
        if unit.active and HOME_AFFAIRS_TAG in unit.tags and unit.path[0] == issuer.path[0]
    ]
    return home_affairs[0] if home_affairs else issuer


def check_period_before_deadline(period_end: date, due_before: date, where: str) -> None:
    """A report's data period ends on or before its last on-time day ("before 10/6" is due
    by 9/6): a period still running after the deadline cannot be reported on in time."""
    if period_end >= due_before:
        raise PlanRefused(
            f"the data period ends on {period_end:%d/%m/%Y}, after the deadline "
            f"(before {due_before:%d/%m/%Y})",
            field=where,
        )


def check_not_before_parent(issued_on: date, parent: Plan, where: str) -> None:
    """A unit's own plan implements its parent: it cannot be dated before it."""
    if issued_on < parent.issued_on:
        raise PlanRefused(
            f"dated {issued_on:%d/%m/%Y}, before the plan it implements "
            f"({parent.doc_number} of {parent.issued_on:%d/%m/%Y})",
            field=where,
        )


def shift_years(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _assignee(unit: Unit) -> Assignee:
    return Assignee(code=unit.code, unit_path=unit.path, kind=unit.kind, name=unit.name)


def _active(registry: dict[str, Unit], code: str, where: str) -> Unit:
    unit = registry.get(code)
    if unit is None:
        raise PlanRefused(f"unknown unit {code}", field=where)
    if not unit.active:
        raise PlanRefused(f"unit {code} is dissolved", field=where)
    return unit


def expand_assignees(rule: AssigneeRule, issuer: Unit, registry: dict[str, Unit]) -> list[Unit]:
    """Concrete active units below the issuer matching the rule, in registry order.

    A unit named explicitly that a kind or subtree rule also selects counts as assigned
    twice, and so does a unit named twice: both are refused."""
    for code in (*rule.units, *rule.subtrees):
        _active(registry, code, "assignees")
    seen: set[str] = set()
    for code in rule.units:
        if code in seen:
            raise PlanRefused(f"unit {code} is assigned twice", field="assignees.units")
        seen.add(code)
    below = [
        u
        for u in registry.values()
        if u.active and u.code != issuer.code and u.is_within(issuer.code)
    ]
    by_rule = {u.code for u in below if _by_kind_or_subtree(u, rule)}
    twice = sorted(by_rule & set(rule.units))
    if twice:
        raise PlanRefused(
            f"unit(s) {', '.join(twice)} assigned twice: by name and by kind or subtree",
            field="assignees.units",
        )
    chosen = by_rule | set(rule.units)
    for unit in below:
        if unit.kind in rule.kinds_via_parent and not _has_chosen_ancestor(unit, issuer, chosen):
            chosen.add(unit.code)
    return [u for u in below if u.code in chosen]


def _by_kind_or_subtree(unit: Unit, rule: AssigneeRule) -> bool:
    return unit.kind in rule.kinds or any(
        unit.is_within(root) and unit.code != root for root in rule.subtrees
    )


def _has_chosen_ancestor(unit: Unit, issuer: Unit, chosen: set[str]) -> bool:
    below_issuer = unit.path[unit.path.index(issuer.code) + 1 : -1]
    return any(code in chosen for code in below_issuer)
