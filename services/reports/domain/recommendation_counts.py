"""What a consolidation says of recommendations after supervision: per unit and in total,
received, answered on time, answered late, unanswered, implemented. Pure, no I/O.

Counted: the recommendations addressed to the consolidation's expected units and received
within its data period (both days included). **answered on time** / **answered late**: by the
written answer against the answer period's last instant; **unanswered**: no answer yet (so
received = on time + late + unanswered); **implemented**: closed by an implementation report
marked completed (a subset of the answered ones).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from pydantic import BaseModel, ConfigDict

from services.reports.domain.recommendations import Recommendation, RecommendationStatus


class RecommendationCounts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    received: int = 0
    answered_on_time: int = 0
    answered_late: int = 0
    unanswered: int = 0
    implemented: int = 0


class UnitRecommendations(RecommendationCounts):
    code: str
    name: str


class RecommendationSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    total: RecommendationCounts = RecommendationCounts()
    by_unit: list[UnitRecommendations] = []
    """Units with at least one recommendation, in the order of the status table."""


def _counts(found: list[Recommendation]) -> dict[str, int]:
    answered = [r for r in found if r.answered_on_time is not None]
    return {
        "received": len(found),
        "answered_on_time": sum(1 for r in answered if r.answered_on_time),
        "answered_late": sum(1 for r in answered if not r.answered_on_time),
        "unanswered": len(found) - len(answered),
        "implemented": sum(1 for r in found if r.status is RecommendationStatus.CLOSED),
    }


def summarise(
    recommendations: Iterable[Recommendation],
    units: Mapping[str, str],
    period_start: date,
    period_end: date,
) -> RecommendationSummary:
    """``units``: code → name of the expected units, in table order."""
    counted = [
        r
        for r in recommendations
        if r.addressed_unit in units and period_start <= r.received_on <= period_end
    ]
    by_unit = [
        UnitRecommendations(code=code, name=name, **_counts(mine))
        for code, name in units.items()
        if (mine := [r for r in counted if r.addressed_unit == code])
    ]
    return RecommendationSummary(total=RecommendationCounts(**_counts(counted)), by_unit=by_unit)
