"""Handlers for inspections and surveys: schedule, record findings, report on an action,
close or return it, read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import structlog

from services.reports.adapters.inspections import InspectionRepository
from services.reports.adapters.repositories import ObligationRepository, UnitDirectory
from services.reports.domain.deadlines import ClockRules
from services.reports.domain.inspections import (
    Action,
    ActionStatus,
    FindingInput,
    InspectedUnit,
    Inspection,
    InspectionRefused,
    Step,
)
from services.reports.domain.model import Obligation, Ownership
from services.reports.handlers.acting import act_for_unit
from services.reports.handlers.follow_up import commit_step, open_on_the_clock
from shared.auth import Forbidden, Principal, Role
from shared.errors import Missing
from shared.events import InspectionKind
from shared.security import audit, authorize
from shared.uow import UnitOfWork
from shared.vntime import ict_date

log = structlog.get_logger(__name__)

INSPECTING_ROLES = (Role.PLANNER, Role.REVIEWER, Role.ADMINISTRATOR)
"""Who acts for the inspecting unit: who plans for it, who reviews what it receives, its
administrator (also for the units of its subtree)."""


@dataclass(frozen=True)
class ScheduleInspection:
    kind: InspectionKind
    topic: str
    inspected_units: tuple[str, ...]
    planned_start: date
    planned_end: date
    inspecting_unit: str | None = None
    """None: the caller's unit."""
    plan_id: str | None = None


@dataclass(frozen=True)
class RecordFindings:
    inspection_id: str
    inspected_unit: str
    conducted_on: date
    conclusion: str
    findings: tuple[FindingInput, ...]


@dataclass(frozen=True)
class ReportFollowUp:
    action_id: str
    content: str
    done: bool = False


@dataclass(frozen=True)
class DecideAction:
    action_id: str
    text: str
    """The closing note, or the reason for returning."""


async def _within_authority(
    directory: UnitDirectory, inspecting: str, path: list[str], code: str
) -> None:
    """An inspecting unit inspects the units of its subtree and those that report to it
    (with theirs): Home Affairs the departments and districts, a district its communes."""
    if inspecting in path[:-1]:
        return
    for member in path:
        unit = await directory.get(member)
        if unit is not None and unit["reports_to_code"] == inspecting:
            return
    raise InspectionRefused(
        f"unit {code} is neither below {inspecting} nor reports to it: "
        f"{inspecting} cannot inspect it",
        field="inspected_units",
    )


async def schedule_inspection(
    command: ScheduleInspection,
    uow: UnitOfWork,
    *,
    caller: Principal,
    ownership: Ownership = Ownership(),
) -> Inspection:
    """Register an inspection or survey of units this instance owns, by a unit with
    authority over them; ``InspectionScheduled`` goes out for each inspected unit."""
    directory = uow.repository(UnitDirectory)
    inspecting = command.inspecting_unit or caller.unit_code
    if inspecting == "*":
        raise InspectionRefused("name the inspecting unit", field="inspecting_unit")
    inspector = await directory.get(inspecting)
    if inspector is None:
        raise InspectionRefused(
            f"unit {inspecting} is not known to this reports service", field="inspecting_unit"
        )
    authorize(
        caller,
        *INSPECTING_ROLES,
        unit=inspecting,
        doing="schedule inspections",
        unit_path=list(inspector["path"]),
    )
    visits: list[InspectedUnit] = []
    for code in command.inspected_units:
        unit = await directory.get(code)
        if unit is None:
            raise InspectionRefused(
                f"unit {code} is not known to this reports service", field="inspected_units"
            )
        path = list(unit["path"])
        if not ownership.owns(path):
            raise InspectionRefused(
                f"unit {code} is served by another instance (its district's): schedule the "
                "inspection there",
                field="inspected_units",
            )
        if code != inspecting:
            await _within_authority(directory, inspecting, path, code)
        visits.append(InspectedUnit(code, path))
    inspection = Inspection(
        id=str(uuid.uuid4()),
        kind=command.kind,
        topic=command.topic,
        inspecting_unit=inspecting,
        inspecting_path=list(inspector["path"]),
        planned_start=command.planned_start,
        planned_end=command.planned_end,
        registered_at=uow.clock.now(),
        plan_id=command.plan_id,
        units=visits,
    )
    inspection.check_schedule()
    await uow.repository(InspectionRepository).add(inspection)
    inspection.scheduled()
    audit(uow, caller, "inspection.scheduled", inspection.id)
    await uow.commit()
    log.info("inspection scheduled", inspection_id=inspection.id, units=len(visits))
    return inspection


def _inspector(caller: Principal, inspection: Inspection, doing: str) -> None:
    authorize(
        caller,
        *INSPECTING_ROLES,
        unit=inspection.inspecting_unit,
        doing=doing,
        unit_path=inspection.inspecting_path,
    )


async def record_findings(
    command: RecordFindings, uow: UnitOfWork, *, caller: Principal, rules: ClockRules
) -> list[Action]:
    """The inspecting unit records what it found at one inspected unit; each required
    action opens a follow-up obligation of that unit, reminded and urged by the clock."""
    repository = uow.repository(InspectionRepository)
    inspection = await repository.get(command.inspection_id, lock=True)
    if inspection is None:
        raise Missing(f"no inspection {command.inspection_id}")
    _inspector(caller, inspection, "record the findings of its inspections")
    now = uow.clock.now()
    actions = inspection.record_findings(
        command.inspected_unit,
        conducted_on=command.conducted_on,
        conclusion=command.conclusion,
        findings=list(command.findings),
        action_ids=[[str(uuid.uuid4()) for _ in f.actions] for f in command.findings],
        at=now,
        today=ict_date(now),
    )
    await repository.save_findings(inspection, command.inspected_unit, actions)
    for action in actions:
        await open_on_the_clock(uow, action.obligation(), rules, now)
    audit(uow, caller, "inspection.findings_recorded", inspection.id)
    await uow.commit()
    log.info(
        "inspection findings recorded",
        inspection_id=inspection.id,
        unit=command.inspected_unit,
        actions=len(actions),
    )
    return actions


async def _action(
    action_id: str, uow: UnitOfWork
) -> tuple[Action, Obligation, InspectionRepository]:
    repository = uow.repository(InspectionRepository)
    found = await repository.action(action_id, lock=True)
    if found is None:
        raise Missing(f"no inspection action {action_id}")
    obligation = await uow.repository(ObligationRepository).get(found.obligation_id)
    assert obligation is not None  # written with the action, in one transaction
    return found, obligation, repository


async def _store(
    action: Action,
    step: Step,
    obligation: Obligation,
    repository: InspectionRepository,
    uow: UnitOfWork,
    caller: Principal,
    what: str,
) -> Step:
    await repository.save_action(action, step)
    await commit_step(uow, caller, obligation, what, action.id)
    return step


async def report_follow_up(command: ReportFollowUp, uow: UnitOfWork, *, caller: Principal) -> Step:
    """The inspected unit reports on a required action; ``done`` asks the inspecting unit
    to close it."""
    action, obligation, repository = await _action(command.action_id, uow)
    act_for_unit(caller, action.unit_code, action.unit_path, "report on inspection actions")
    step = action.report(
        command.content,
        done=command.done,
        at=uow.clock.now(),
        by_unit=action.unit_code,
        obligation=obligation,
    )
    return await _store(action, step, obligation, repository, uow, caller, "inspection.reported")


async def _decide(command: DecideAction, uow: UnitOfWork, caller: Principal, close: bool) -> Step:
    action, obligation, repository = await _action(command.action_id, uow)
    inspection = await repository.get(action.inspection_id)
    assert inspection is not None
    _inspector(caller, inspection, "close or return the actions of its inspections")
    now = uow.clock.now()
    by_unit = action.inspecting_unit
    if close:
        step = action.close(command.text, at=now, by_unit=by_unit, obligation=obligation)
    else:
        step = action.send_back(command.text, at=now, by_unit=by_unit, obligation=obligation)
    what = "inspection.action_closed" if close else "inspection.action_returned"
    return await _store(action, step, obligation, repository, uow, caller, what)


async def close_action(command: DecideAction, uow: UnitOfWork, *, caller: Principal) -> Step:
    """The inspecting unit accepts that an action reported done is carried out."""
    return await _decide(command, uow, caller, close=True)


async def return_action(command: DecideAction, uow: UnitOfWork, *, caller: Principal) -> Step:
    """The inspecting unit does not accept it: the action is open again, and urged."""
    return await _decide(command, uow, caller, close=False)


def _may_read(caller: Principal, inspection: Inspection) -> bool:
    """The inspecting unit's subtree reads the whole inspection; an inspected unit's
    subtree reads it too (its own findings among the others' of the same inspection)."""
    return caller.may_read(inspection.inspecting_path, None) or any(
        caller.covers(u.path) for u in inspection.units
    )


async def inspection(inspection_id: str, uow: UnitOfWork, *, caller: Principal) -> Inspection:
    found = await uow.repository(InspectionRepository).get(inspection_id)
    if found is None:
        raise Missing(f"no inspection {inspection_id}")
    if not _may_read(caller, found):
        raise Forbidden(
            f"a token of unit {caller.unit_code} cannot read this inspection: it neither "
            "inspects nor is inspected"
        )
    return found


@dataclass(frozen=True)
class InspectionFilter:
    """Which inspections, or which of their actions, a listing asks for (None: any)."""

    inspected_unit: str | None = None
    inspecting_unit: str | None = None
    status: ActionStatus | None = None
    """Of an action (inspections have none)."""


async def inspections_of(
    where: InspectionFilter, uow: UnitOfWork, *, caller: Principal, limit: int = 500
) -> list[Inspection]:
    repository = uow.repository(InspectionRepository)
    found = await repository.listing(where.inspected_unit, where.inspecting_unit)
    return [i for i in found if _may_read(caller, i)][:limit]


async def action(action_id: str, uow: UnitOfWork, *, caller: Principal) -> Action:
    """An action with its history, for the inspected unit's subtree and the inspecting
    unit."""
    found = await uow.repository(InspectionRepository).action(action_id)
    if found is None:
        raise Missing(f"no inspection action {action_id}")
    caller.require_read(found.unit_path, found.inspecting_unit, "this inspection action")
    return found


async def actions_of(
    where: InspectionFilter, uow: UnitOfWork, *, caller: Principal, limit: int = 500
) -> list[Action]:
    """The actions the caller may read (its subtree's, or those it inspects), nearest
    deadline first, without their history."""
    status = where.status.value if where.status else None
    found = await uow.repository(InspectionRepository).actions(
        where.inspected_unit, where.inspecting_unit, status
    )
    return [a for a in found if caller.may_read(a.unit_path, a.inspecting_unit)][:limit]
