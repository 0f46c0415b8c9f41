"""What a consolidation says of staff conferences: per unit and in total, held on time, held
late, missing. Pure, no I/O.

Counted: the plan's conference obligations followed up by the consolidation's receiving unit
(the receiving unit of the plan's annual report), except waived ones. **held on time** /
**held late**: by the day held against the last on-time day (ICT); **missing**: not recorded
(``overdue`` of those: the deadline has passed). So expected = held + missing and held = on
time + late.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict

from services.reports.domain.conferences import ConferenceState


class ConferenceCounts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    expected: int = 0
    held: int = 0
    held_on_time: int = 0
    held_late: int = 0
    missing: int = 0
    overdue: int = 0


class UnitConference(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str
    name: str
    state: str
    """held_on_time, held_late or missing."""
    held_on: date | None = None
    participants: int | None = None
    minutes: int = 0
    """Files of minutes attached."""
    due_at: AwareDatetime
    overdue: bool = False


class ConferenceSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    total: ConferenceCounts = ConferenceCounts()
    by_unit: list[UnitConference] = []
    """Every unit that owes a conference, in tree order."""


def summarise_conferences(
    states: Iterable[ConferenceState], names: Mapping[str, str]
) -> ConferenceSummary:
    """``names``: unit code → name (a unit not known yet shows its code)."""
    counted = sorted(
        (s for s in states if s.state != "waived"),
        key=lambda s: (tuple(s.obligation.unit_path), s.obligation.unit_code),
    )
    by_unit = [
        UnitConference(
            code=s.obligation.unit_code,
            name=names.get(s.obligation.unit_code, s.obligation.unit_code),
            state=s.state,
            held_on=s.conference.held_on if s.conference else None,
            participants=s.conference.participants if s.conference else None,
            minutes=len(s.conference.minutes) if s.conference else 0,
            due_at=s.obligation.due_at,
            overdue=s.overdue,
        )
        for s in counted
    ]
    on_time = sum(1 for u in by_unit if u.state == "held_on_time")
    late = sum(1 for u in by_unit if u.state == "held_late")
    total = ConferenceCounts(
        expected=len(by_unit),
        held=on_time + late,
        held_on_time=on_time,
        held_late=late,
        missing=len(by_unit) - on_time - late,
        overdue=sum(1 for u in by_unit if u.overdue),
    )
    return ConferenceSummary(total=total, by_unit=by_unit)
