"""Staff conferences: what a plan asks (default deadline, refusals), the obligations it opens,
the recording rules, the consolidation's counts, and the portal's rows. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.plans.domain.plans import AssigneeRule, PlanRefused, StaffConferenceRequirement
from services.portal.domain import oversight
from services.reports.domain.conference_counts import summarise_conferences
from services.reports.domain.conferences import (
    ConferencePlan,
    ConferenceRefused,
    conference_obligations,
    record_conference,
    state_of,
)
from services.reports.domain.model import Obligation, ObligationStatus
from shared.errors import Conflict
from shared.vntime import ICT
from tests.unit.test_plans_domain import build_registry, plan

RULE = AssigneeRule(kinds=("department", "district"))


def test_the_default_deadline_is_before_1_april_of_the_plan_year() -> None:
    issued = plan(RULE, staff_conference=StaffConferenceRequirement(required=True)).issue(
        build_registry()
    )
    schedule = issued.staff_conference
    assert schedule is not None
    assert (schedule.due_before, schedule.held_from) == (date(2023, 4, 1), date(2023, 1, 1))
    assert schedule.due_at.astimezone(ICT) == datetime(2023, 3, 31, 23, 59, 59, 999999, ICT)
    assert schedule.receiving_unit == "S1"  # the annual report's receiving unit
    assert schedule.unit_kinds == ["department", "public_service_unit"]


def test_a_plan_without_the_requirement_carries_none() -> None:
    assert plan(RULE).issue(build_registry()).staff_conference is None


def test_a_default_deadline_already_past_at_issue_is_refused_with_the_field() -> None:
    late = plan(
        RULE,
        issued_on=date(2023, 5, 2),
        staff_conference=StaffConferenceRequirement(required=True),
    )
    with pytest.raises(PlanRefused, match="before 1 April") as refused:
        late.issue(build_registry())
    assert refused.value.field == "staff_conference.due_before"
    outside = plan(
        RULE,
        staff_conference=StaffConferenceRequirement(required=True, due_before=date(2024, 3, 1)),
    )
    with pytest.raises(PlanRefused, match="within the plan year"):
        outside.issue(build_registry())


def _obligations() -> list[Obligation]:
    event = plan(RULE, staff_conference=StaffConferenceRequirement(required=True)).issue(
        build_registry()
    )
    assert event.staff_conference is not None
    heading = ConferencePlan(event.plan_id, event.doc_number, event.title, event.staff_conference)
    return conference_obligations(heading, event.assignees)


def test_only_assignees_of_the_named_kinds_owe_a_conference() -> None:
    owed = _obligations()
    # Departments S1 and S2 (S3 is dissolved); districts are assigned but not named.
    assert sorted(o.unit_code for o in owed) == ["S1", "S2"]
    assert {o.schedule_key for o in owed} == {"staff_conference"}


def test_recording_meets_the_obligation_on_time_or_late_and_only_once() -> None:
    first, second = _obligations()
    at = datetime(2023, 4, 3, 2, tzinfo=UTC)
    held = record_conference(
        first, conference_id="c1", held_on=date(2023, 3, 31), participants=30, at=at, by_unit="S1"
    )
    assert held.on_time and first.status is ObligationStatus.ACCEPTED
    assert first.on_the_clock_at is None  # the clock stops urging
    with pytest.raises(Conflict):
        record_conference(
            first, conference_id="c2", held_on=date(2023, 3, 1), participants=None, at=at,
            by_unit="S1",
        )  # fmt: skip
    with pytest.raises(ConferenceRefused, match="future"):
        record_conference(
            second, conference_id="c3", held_on=date(2023, 4, 4), participants=None, at=at,
            by_unit="S2",
        )  # fmt: skip
    late = record_conference(
        second, conference_id="c4", held_on=date(2023, 4, 1), participants=None, at=at,
        by_unit="S2",
    )  # fmt: skip
    assert late.on_time is False
    states = [state_of(first, held, at), state_of(second, late, at)]
    summary = summarise_conferences(states, {"S1": "Sở Nội vụ"})
    assert summary.total.model_dump() == {
        "expected": 2,
        "held": 2,
        "held_on_time": 1,
        "held_late": 1,
        "missing": 0,
        "overdue": 0,
    }
    assert [u.name for u in summary.by_unit] == ["Sở Nội vụ", "S2"]


def test_a_missing_conference_is_overdue_only_after_its_deadline() -> None:
    owed, _ = _obligations()
    before = state_of(owed, None, owed.due_at)
    after = state_of(owed, None, owed.due_at + timedelta(microseconds=1))
    assert (before.state, before.overdue) == ("missing", False)
    assert (after.state, after.overdue) == ("missing", True)
    row = oversight.conference_rows(
        {"by_unit": [{"code": "S1", "name": "Sở Nội vụ", "state": "missing", "overdue": True}]}
    )[0]
    assert (row.label, row.symbol, row.badge) == ("Chưa tổ chức – đã quá hạn", "✗", "missing")


def test_the_public_rows_keep_no_text_an_official_wrote() -> None:
    found = oversight.public_recommendations(
        [
            {
                "source_organisation": "Ủy ban MTTQ Việt Nam tỉnh",
                "topic": "Công khai ngân sách",
                "addressed_unit": "S1",
                "received_on": "2023-03-01",
                "answered_at": "2023-03-10T02:00:00Z",
                "answered_on_time": True,
                "status": "answered",
                "content": "Nội dung",
                "history": [{"text": "Ông Nguyễn Văn A trả lời"}],
            },
            {
                "status": "awaiting_answer",
                "source_organisation": "x",
                "topic": "y",
                "addressed_unit": "S2",
            },
        ],
        {"S1": "Sở Nội vụ"},
    )
    assert [(r.unit_name, r.status_label) for r in found] == [
        ("Sở Nội vụ", "Đã trả lời, đang thực hiện")
    ]
    assert "Nguyễn" not in repr(found)
