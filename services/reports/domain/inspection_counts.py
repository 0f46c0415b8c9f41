"""What a consolidation says of inspections and surveys: per inspected unit and in total,
inspections scheduled and done, actions required, closed on time, closed late, open. Pure,
no I/O.

Counted: the inspections of the consolidation's expected units whose planned window starts
within its data period (both days included), one per inspection and inspected unit (a
"lượt"): **scheduled**; **done**: those whose findings are recorded; **actions required**:
the actions those findings require; **closed on time** / **closed late**: closed by the
inspecting unit, judged by the time of the ``done`` report it accepted against the action's
deadline; **open**: not closed yet (so required = on time + late + open). The total row is
the sum of the units' rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from pydantic import BaseModel, ConfigDict

from services.reports.domain.inspections import ActionStatus, InspectedUnit, Inspection


class InspectionCounts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    scheduled: int = 0
    done: int = 0
    actions_required: int = 0
    actions_closed_on_time: int = 0
    actions_closed_late: int = 0
    actions_open: int = 0


class UnitInspections(InspectionCounts):
    code: str
    name: str


class InspectionSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    total: InspectionCounts = InspectionCounts()
    by_unit: list[UnitInspections] = []
    """Units inspected at least once (scheduled), in the order of the status table."""


def _counts(visits: list[InspectedUnit]) -> dict[str, int]:
    actions = [a for v in visits for f in v.findings for a in f.actions]
    closed = [a for a in actions if a.status is ActionStatus.CLOSED]
    return {
        "scheduled": len(visits),
        "done": sum(1 for v in visits if v.done),
        "actions_required": len(actions),
        "actions_closed_on_time": sum(1 for a in closed if a.closed_on_time),
        "actions_closed_late": sum(1 for a in closed if not a.closed_on_time),
        "actions_open": len(actions) - len(closed),
    }


def summarise_inspections(
    inspections: Iterable[Inspection],
    units: Mapping[str, str],
    period_start: date,
    period_end: date,
) -> InspectionSummary:
    """``units``: code → name of the expected units, in table order."""
    visits = [
        visit
        for inspection in inspections
        if period_start <= inspection.planned_start <= period_end
        for visit in inspection.units
        if visit.code in units
    ]
    by_unit = [
        UnitInspections(code=code, name=name, **_counts(mine))
        for code, name in units.items()
        if (mine := [v for v in visits if v.code == code])
    ]
    return InspectionSummary(total=InspectionCounts(**_counts(visits)), by_unit=by_unit)
