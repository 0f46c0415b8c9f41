"""What a plan gives rise to besides itself: report requests, difficulties raised against
it, and the assignees' own implementation plans (sub-plans). Each is first a command (its
``id`` empty, nothing decided yet) and then, completed by its handler, what is kept and what
its event tells. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from shared.events import ReportKind


@dataclass(frozen=True)
class ReportRequest:
    """A unit's request to chosen units for a thematic or an ad-hoc report."""

    requesting_unit: str
    kind: ReportKind
    topic: str
    units: tuple[str, ...]
    period_start: date
    period_end: date
    due_before: date
    content_areas: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    plan_id: str | None = None
    id: str = ""


@dataclass(frozen=True)
class Difficulty:
    """A difficulty (vướng mắc) a unit met in implementing a plan; its answers are kept
    apart, as a thread."""

    plan_id: str
    unit_code: str
    description: str
    content_area: str | None = None
    id: str = ""
    raised_at: datetime | None = None
    raised_to: str | None = None
    """The unit that answers it (the plan's rule decides when none is kept)."""


@dataclass(frozen=True)
class SubPlan:
    """An assignee's own implementation plan of a parent plan, registered against it."""

    parent_plan_id: str
    unit_code: str
    doc_number: str
    issued_on: date
    title: str = ""
    plan_id: str | None = None
    """The sub-plan's id when it was issued here; None when it was issued elsewhere."""
