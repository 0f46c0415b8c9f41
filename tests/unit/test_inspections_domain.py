"""The rules of an inspection, pure: the schedule's checks, findings once per inspected unit,
an action's deadline and follow-up obligation, report → close or return, the events each
step records, and how a consolidation counts them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.reports.domain.inspection_counts import summarise_inspections
from services.reports.domain.inspections import (
    Action,
    ActionStatus,
    FindingInput,
    InspectedUnit,
    Inspection,
    InspectionRefused,
    RequiredAction,
    action_due_at,
)
from services.reports.domain.model import RECONSIDER, ObligationStatus
from shared.events import (
    InspectionActionClosed,
    InspectionActionReported,
    InspectionActionReturned,
    InspectionFindingsRecorded,
    InspectionKind,
)
from shared.vntime import ICT

AT = datetime(2023, 3, 8, 2, tzinfo=UTC)
TODAY = date(2023, 3, 8)


def inspection(*codes: str, start: date = date(2023, 3, 6)) -> Inspection:
    return Inspection(
        id="i-1",
        kind=InspectionKind.INSPECTION,
        topic="Kiểm tra thực hiện QCDC",
        inspecting_unit="SNV",
        inspecting_path=["T89", "SNV"],
        planned_start=start,
        planned_end=date(2023, 3, 17),
        registered_at=AT,
        units=[InspectedUnit(code, ["T89", code]) for code in codes],
    )


def record(found: Inspection, code: str, *due: date) -> list[Action]:
    given = [
        FindingInput(f"Tồn tại {i}", (RequiredAction("Khắc phục", d),)) for i, d in enumerate(due)
    ]
    return found.record_findings(
        code,
        conducted_on=TODAY,
        conclusion="",
        findings=given,
        action_ids=[[f"a-{code}-{i}"] for i in range(len(due))],
        at=AT,
        today=TODAY,
    )


def test_an_action_is_due_at_the_end_of_its_day_in_vietnam_time() -> None:
    due = action_due_at(date(2023, 3, 31)).astimezone(ICT)
    assert (due.date(), due.hour, due.minute) == (date(2023, 3, 31), 23, 59)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"planned_end": date(2023, 3, 1)}, "planned_end"),
        ({"planned_end": date(2024, 3, 6)}, "planned_end"),
        ({"topic": "  "}, "topic"),
        ({"units": []}, "inspected_units"),
        ({"units": [InspectedUnit("X1", ["T89", "X1"])] * 2}, "inspected_units"),
        ({"units": [InspectedUnit("SNV", ["T89", "SNV"])]}, "inspected_units"),
    ],
)
def test_a_schedule_that_cannot_be_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    found = inspection("X1")
    for name, value in change.items():
        setattr(found, name, value)
    with pytest.raises(InspectionRefused) as refused:
        found.check_schedule()
    assert refused.value.field == field


def test_findings_open_one_follow_up_per_action_and_are_recorded_once() -> None:
    found = inspection("X1", "X2")
    first, second = record(found, "X1", date(2023, 3, 31), date(2023, 4, 14))
    obligation = first.obligation()
    assert (obligation.unit_code, obligation.receiving_unit) == ("X1", "SNV")
    assert obligation.schedule_key == "inspection-a-X1-0" and obligation.plan_id == ""
    assert obligation.due_at == action_due_at(date(2023, 3, 31))
    assert obligation.plan_title == "Khắc phục sau kiểm tra: Kiểm tra thực hiện QCDC"
    assert first.obligation_id != second.obligation_id
    (event,) = found.events
    assert isinstance(event, InspectionFindingsRecorded) and event.unit_path == ["T89", "X1"]
    assert [a.obligation_id for f in event.findings for a in f.actions] == [
        first.obligation_id,
        second.obligation_id,
    ]
    with pytest.raises(InspectionRefused, match="not recorded twice"):
        record(found, "X1")
    with pytest.raises(InspectionRefused, match="not among"):
        record(found, "X9")
    with pytest.raises(InspectionRefused, match="in the past"):
        record(found, "X2", date(2023, 3, 7))


def test_report_done_then_return_then_close_moves_the_obligation_like_a_review() -> None:
    found = inspection("X1")
    (action,) = record(found, "X1", date(2023, 3, 31))
    obligation = action.obligation()
    with pytest.raises(InspectionRefused, match="only an action reported done"):
        action.close("", at=AT, by_unit="SNV", obligation=obligation)
    action.report("Đang làm", done=False, at=AT, by_unit="X1", obligation=obligation)
    assert obligation.status is ObligationStatus.OPEN
    late = datetime(2023, 4, 2, 2, tzinfo=UTC)
    action.report("Xong", done=True, at=late, by_unit="X1", obligation=obligation)
    assert (action.status, obligation.status) == (
        ActionStatus.REPORTED_DONE,
        ObligationStatus.SUBMITTED,
    )
    assert obligation.on_the_clock_at is None
    with pytest.raises(InspectionRefused, match="say why"):
        action.send_back(" ", at=late, by_unit="SNV", obligation=obligation)
    action.send_back("Chưa đạt", at=late, by_unit="SNV", obligation=obligation)
    assert (action.status, obligation.status) == (ActionStatus.OPEN, ObligationStatus.RETURNED)
    assert obligation.next_step_at == RECONSIDER
    action.report("Đã xong", done=True, at=AT, by_unit="X1", obligation=obligation)
    action.close("Đạt", at=late, by_unit="SNV", obligation=obligation)
    # Judged by the accepted "done" report (on time), not by when it was closed.
    assert (action.status, action.closed_on_time) == (ActionStatus.CLOSED, True)
    assert obligation.status.value == "accepted"  # (mypy narrowed it to OPEN above)
    kinds = [type(e) for e in action.events]
    assert kinds == [
        InspectionActionReported,
        InspectionActionReported,
        InspectionActionReturned,
        InspectionActionReported,
        InspectionActionClosed,
    ]
    assert [e.report_number for e in action.events if isinstance(e, InspectionActionReported)] == [
        1,
        2,
        3,
    ]
    with pytest.raises(InspectionRefused, match="closed"):
        action.report("x", done=False, at=AT, by_unit="X1", obligation=obligation)


def test_counts_per_unit_and_in_total_within_the_period() -> None:
    found = inspection("X1", "X2")
    a, b = record(found, "X1", date(2023, 3, 31), date(2023, 4, 14))
    ob_a, ob_b = a.obligation(), b.obligation()
    a.report("Xong", done=True, at=AT, by_unit="X1", obligation=ob_a)
    a.close("", at=AT, by_unit="SNV", obligation=ob_a)
    b.report("Xong", done=True, at=datetime(2023, 5, 1, tzinfo=UTC), by_unit="X1", obligation=ob_b)
    b.close("", at=datetime(2023, 5, 2, tzinfo=UTC), by_unit="SNV", obligation=ob_b)
    later = inspection("X2", start=date(2023, 7, 1))
    units = {"X1": "Xã 1", "X2": "Xã 2", "X3": "Xã 3"}
    summary = summarise_inspections([found, later], units, date(2022, 12, 15), date(2023, 6, 14))
    assert [(u.code, u.scheduled, u.done, u.actions_required) for u in summary.by_unit] == [
        ("X1", 1, 1, 2),
        ("X2", 1, 0, 0),
    ]
    assert summary.total.model_dump() == {
        "scheduled": 2,
        "done": 1,
        "actions_required": 2,
        "actions_closed_on_time": 1,
        "actions_closed_late": 1,
        "actions_open": 0,
    }
