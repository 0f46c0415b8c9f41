"""The rules of a recommendation after supervision, pure: the answer period, the answer
obligation, the order answer → implementation → closed, and the events each step records."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.reports.domain.model import ObligationStatus
from services.reports.domain.recommendations import (
    Recommendation,
    RecommendationRefused,
    RecommendationStatus,
    answer_due_at,
)
from shared.events import RecommendationAnswered, RecommendationImplementationReported
from shared.vntime import ICT


def recommendation(received_on: date = date(2023, 3, 6), days: int = 30) -> Recommendation:
    return Recommendation(
        id="r-1",
        source_organisation="Ủy ban MTTQ Việt Nam xã Tân An",
        topic="Công khai thu, chi",
        content="Đề nghị công khai theo quý.",
        addressed_unit="X001",
        addressed_path=["T89", "X001"],
        registered_by_unit="T89",
        received_on=received_on,
        registered_at=datetime(2023, 3, 6, 2, tzinfo=UTC),
        answer_due_at=answer_due_at(received_on, days),
    )


def test_the_answer_is_due_at_the_end_of_the_last_day_of_the_period_in_vietnam_time() -> None:
    due = answer_due_at(date(2023, 3, 6), 30)
    assert due.astimezone(ICT).date() == date(2023, 4, 5)
    assert (due.astimezone(ICT).hour, due.astimezone(ICT).minute) == (23, 59)


def test_the_answer_obligation_goes_from_the_addressed_unit_to_the_unit_that_registered_it() -> (
    None
):
    found = recommendation()
    obligation = found.answer_obligation()
    assert (obligation.unit_code, obligation.receiving_unit) == ("X001", "T89")
    assert obligation.schedule_key == "recommendation-r-1" and obligation.plan_id == ""
    assert obligation.id == found.obligation_id
    assert obligation.due_at == found.answer_due_at
    assert obligation.plan_title == "Trả lời kiến nghị sau giám sát: Công khai thu, chi"


def test_answer_then_implementation_until_closed() -> None:
    found = recommendation()
    obligation = found.answer_obligation()
    with pytest.raises(RecommendationRefused, match="answer the recommendation"):
        found.report_implementation(
            "Đang làm", at=found.registered_at, by_unit="X001", completed=False
        )
    late = datetime(2023, 4, 6, 2, tzinfo=UTC)  # 09:00 ICT, the day after the last day
    found.answer("Đã tiếp thu.", at=late, by_unit="X001", obligation=obligation)
    assert found.answered_on_time is False
    assert obligation.status is ObligationStatus.ACCEPTED and obligation.on_the_clock_at is None
    with pytest.raises(RecommendationRefused, match="already answered"):
        found.answer("Lần nữa", at=late, by_unit="X001", obligation=obligation)
    with pytest.raises(RecommendationRefused, match="empty"):
        found.report_implementation("  ", at=late, by_unit="X001", completed=False)
    found.report_implementation("Một phần", at=late, by_unit="X001", completed=False)
    found.report_implementation("Xong", at=late, by_unit="X001", completed=True)
    assert found.status is RecommendationStatus.CLOSED and found.closed_at == late
    with pytest.raises(RecommendationRefused, match="closed"):
        found.report_implementation("Thêm", at=late, by_unit="X001", completed=False)
    kinds = [type(e) for e in found.events]
    assert kinds == [
        RecommendationAnswered,
        RecommendationImplementationReported,
        RecommendationImplementationReported,
    ]
    last = found.events[-1]
    assert isinstance(last, RecommendationImplementationReported)
    assert (last.report_number, last.completed, last.unit_path) == (2, True, ["T89", "X001"])
    assert [e.number for e in found.history] == [1, 2, 3]
