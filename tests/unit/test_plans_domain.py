"""Plans and the unit registry: issuing a plan expands its assignees and checks its schedule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.plans.domain.plans import (
    Amendment,
    AssigneeRule,
    Plan,
    PlanRefused,
    PlanStatus,
    ScheduleEntry,
    difficulty_receiver,
)
from services.plans.domain.units import Unit, UnitRefused
from shared.events import Contacts, PlanIssued, ReportKind, UnitRegistered

ISSUED_ON = date(2023, 3, 1)


def build_registry() -> dict[str, Unit]:
    """T89 province → departments S1, S2, S3 (dissolved), districts H1 (X1, X2, X4 dissolved)
    and H2 (X3); Home Affairs is S1."""
    registry: dict[str, Unit] = {}

    def add(code: str, kind: str, parent: str | None, reports_to: str | None = None) -> None:
        registry[code] = Unit.register(
            code=code,
            name=f"Đơn vị {code}",
            kind=kind,
            parent=registry[parent] if parent else None,
            reports_to=registry[reports_to] if reports_to else None,
            contacts=Contacts(focal_email=f"{code.lower()}@example.vn"),
        )

    add("T89", "province", None)
    add("S1", "department", "T89")
    add("S2", "department", "T89", "S1")
    add("S3", "department", "T89", "S1")
    add("H1", "district", "T89", "S1")
    add("X1", "commune", "H1", "H1")
    add("X2", "commune", "H1", "H1")
    add("X4", "commune", "H1", "H1")
    add("H2", "district", "T89", "S1")
    add("X3", "commune", "H2", "H2")
    registry["S3"].dissolve(date(2023, 1, 1))
    registry["X4"].dissolve(date(2023, 1, 1))
    return registry


def six_month(**overrides: Any) -> ScheduleEntry:
    fields: dict[str, Any] = {
        "key": "six_month",
        "kind": ReportKind.SIX_MONTH,
        "title": "Báo cáo 6 tháng",
        "period_start": date(2022, 12, 15),
        "period_end": date(2023, 6, 8),
        "due_before": date(2023, 6, 10),
        "receiving_unit": "S1",
    }
    fields.update(overrides)
    return ScheduleEntry(**fields)


def annual() -> ScheduleEntry:
    return six_month(
        key="annual",
        kind=ReportKind.ANNUAL,
        title="Báo cáo năm",
        period_end=date(2023, 11, 14),
        due_before=date(2023, 11, 20),
    )


def plan(rule: AssigneeRule, **overrides: Any) -> Plan:
    fields: dict[str, Any] = {
        "id": "plan-2023",
        "doc_number": "123/KH-UBND",
        "title": "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023",
        "issuing_unit": "T89",
        "issued_on": ISSUED_ON,
        "year": 2023,
        "assignee_rule": rule,
        "schedule": [six_month(), annual()],
    }
    fields.update(overrides)
    return Plan(**fields)


def issued_codes(rule: AssigneeRule, issuing_unit: str = "T89") -> list[str]:
    event = plan(rule, issuing_unit=issuing_unit).issue(build_registry())
    return [a.code for a in event.assignees]


# --- units ------------------------------------------------------------------------------


def test_register_builds_the_path_from_the_parent() -> None:
    registry = build_registry()
    assert registry["T89"].path == ["T89"]
    assert registry["H1"].path == ["T89", "H1"]
    assert registry["X1"].path == ["T89", "H1", "X1"]
    assert registry["X1"].parent_code == "H1"
    assert registry["X1"].reports_to_code == "H1"
    assert registry["T89"].parent_code is None


def test_register_records_unit_registered_with_the_path() -> None:
    registry = build_registry()
    event = registry["X1"].events[0]
    assert isinstance(event, UnitRegistered)
    assert event.unit_path == ["T89", "H1", "X1"]
    assert event.code == "X1"
    assert event.parent_code == "H1"
    assert event.subject() == "qcdc.v1.unit.registered.T89.H1.X1"


def test_register_refuses_a_dissolved_parent() -> None:
    registry = build_registry()
    with pytest.raises(UnitRefused) as info:
        Unit.register(
            code="X9",
            name="Xã mới",
            kind="commune",
            parent=registry["S3"],
            reports_to=None,
            contacts=Contacts(),
        )
    assert info.value.field == "parent_code"


# --- expanding assignees ------------------------------------------------------------------


def test_issue_expands_by_kind_skipping_dissolved_units() -> None:
    codes = issued_codes(AssigneeRule(kinds=("department", "district")))
    assert codes == ["S1", "S2", "H1", "H2"]  # S3 is dissolved


def test_issue_expands_by_kind_within_the_issuer_only() -> None:
    # A district issues: only its own communes, never another district's.
    assert issued_codes(AssigneeRule(kinds=("commune",)), issuing_unit="H1") == ["X1", "X2"]


def test_issue_expands_by_subtree_excluding_the_subtree_root() -> None:
    assert issued_codes(AssigneeRule(subtrees=("H1",))) == ["X1", "X2"]  # X4 is dissolved


def test_issue_expands_explicit_units() -> None:
    assert issued_codes(AssigneeRule(units=("X3", "S2"))) == ["S2", "X3"]


def test_issue_never_assigns_a_unit_twice_when_rules_overlap() -> None:
    codes = issued_codes(AssigneeRule(kinds=("commune", "district"), subtrees=("H1", "T89")))
    assert sorted(codes) == sorted(set(codes))
    assert sorted(codes) == ["H1", "H2", "S1", "S2", "X1", "X2", "X3"]


def test_issue_never_assigns_the_issuer_itself() -> None:
    with pytest.raises(PlanRefused) as info:
        plan(AssigneeRule(kinds=("province",))).issue(build_registry())
    assert info.value.field == "assignees"


def test_issue_refuses_a_plan_assigning_no_unit() -> None:
    with pytest.raises(PlanRefused) as info:
        plan(AssigneeRule()).issue(build_registry())
    assert info.value.field == "assignees"
    with pytest.raises(PlanRefused):
        plan(AssigneeRule(kinds=("ward",))).issue(build_registry())


def test_issue_refuses_a_unit_listed_twice() -> None:
    draft = plan(AssigneeRule(units=("S2", "X1", "S2")))
    with pytest.raises(PlanRefused, match="S2") as info:
        draft.issue(build_registry())
    assert info.value.field == "assignees.units"
    assert draft.status is PlanStatus.DRAFT
    assert draft.events == []


def test_issue_refuses_a_unit_named_and_also_selected_by_kind() -> None:
    with pytest.raises(PlanRefused, match="X1"):
        plan(AssigneeRule(kinds=("commune",), units=("X1",))).issue(build_registry())


@pytest.mark.parametrize("code", ["NOPE", "S3"])
def test_issue_refuses_an_unknown_or_dissolved_named_unit(code: str) -> None:
    with pytest.raises(PlanRefused, match=code):
        plan(AssigneeRule(units=(code,))).issue(build_registry())


# --- the schedule -------------------------------------------------------------------------


def test_issue_refuses_a_plan_that_asks_nothing() -> None:
    # No reporting schedule and no sub-plan: the plan would bind units to nothing.
    draft = plan(AssigneeRule(kinds=("department",)), schedule=[])
    with pytest.raises(PlanRefused) as info:
        draft.issue(build_registry())
    assert info.value.field == "schedule"


def test_issue_refuses_an_unknown_receiving_unit() -> None:
    draft = plan(AssigneeRule(kinds=("department",)), schedule=[six_month(receiving_unit="SNV")])
    with pytest.raises(PlanRefused, match="SNV") as info:
        draft.issue(build_registry())
    assert info.value.field == "schedule.0.receiving_unit"


@pytest.mark.parametrize("due_before", [ISSUED_ON, date(2023, 2, 28), date(2022, 6, 10)])
def test_issue_refuses_a_deadline_on_or_before_the_issue_date(due_before: date) -> None:
    draft = plan(
        AssigneeRule(kinds=("department",)),
        schedule=[annual(), six_month(due_before=due_before)],
    )
    with pytest.raises(PlanRefused) as info:
        draft.issue(build_registry())
    assert info.value.field == "schedule.1.due_before"
    assert draft.status is PlanStatus.DRAFT


def test_issue_accepts_a_deadline_the_day_after_issue() -> None:
    draft = plan(
        AssigneeRule(kinds=("department",)),
        schedule=[six_month(due_before=date(2023, 3, 2), period_end=date(2023, 2, 28))],
    )
    event = draft.issue(build_registry())
    assert event.schedule[0].due_at == datetime(2023, 3, 1, 16, 59, 59, 999999, tzinfo=UTC)


def test_issue_refuses_issuing_twice() -> None:
    registry = build_registry()
    draft = plan(AssigneeRule(kinds=("department",)))
    draft.issue(registry)
    with pytest.raises(PlanRefused, match="not a draft"):
        draft.issue(registry)
    assert len(draft.events) == 1


# --- the event ----------------------------------------------------------------------------


def test_plan_issued_carries_due_at_as_the_last_instant_before_the_deadline() -> None:
    registry = build_registry()
    draft = plan(AssigneeRule(kinds=("department", "district")))
    event = draft.issue(registry)
    assert isinstance(event, PlanIssued)
    assert draft.events == [event]
    by_key = {entry.key: entry for entry in event.schedule}
    assert by_key["six_month"].due_before == date(2023, 6, 10)
    assert by_key["six_month"].due_at == datetime(2023, 6, 9, 16, 59, 59, 999999, tzinfo=UTC)
    assert by_key["annual"].due_before == date(2023, 11, 20)
    assert by_key["annual"].due_at == datetime(2023, 11, 19, 16, 59, 59, 999999, tzinfo=UTC)
    assert by_key["six_month"].receiving_unit == "S1"


def test_plan_issued_speaks_for_the_issuing_unit_and_lists_assignee_paths() -> None:
    registry = build_registry()
    draft = plan(AssigneeRule(kinds=("commune",)), issuing_unit="H1")
    event = draft.issue(registry)
    assert event.unit_path == ["T89", "H1"]
    assert event.subject() == "qcdc.v1.plan.issued.T89.H1"
    assert event.issuing_unit == "H1"
    assert [(a.code, a.unit_path, a.kind) for a in event.assignees] == [
        ("X1", ["T89", "H1", "X1"], "commune"),
        ("X2", ["T89", "H1", "X2"], "commune"),
    ]
    assert draft.status is PlanStatus.ISSUED
    assert draft.assignees == ["X1", "X2"]
    assert event.plan_id == "plan-2023"
    assert event.doc_number == "123/KH-UBND"
    assert event.issued_on == ISSUED_ON


# --- dates that hold together, and who answers difficulties ------------------------------


@pytest.mark.parametrize("period_end", [date(2023, 6, 10), date(2023, 6, 30)])
def test_a_data_period_ending_on_or_after_its_deadline_is_refused(period_end: date) -> None:
    draft = plan(AssigneeRule(kinds=("department",)), schedule=[six_month(period_end=period_end)])
    with pytest.raises(PlanRefused, match="after the deadline") as info:
        draft.issue(build_registry())
    assert info.value.field == "schedule.0.period_end"


def test_a_data_period_ending_on_the_last_on_time_day_is_accepted() -> None:
    draft = plan(
        AssigneeRule(kinds=("department",)), schedule=[six_month(period_end=date(2023, 6, 9))]
    )
    assert draft.issue(build_registry()).schedule[0].period_end == date(2023, 6, 9)


def test_an_amendment_cannot_move_a_deadline_into_the_data_period() -> None:
    registry = build_registry()
    issued = plan(AssigneeRule(kinds=("department",)))
    issued.issue(registry)
    with pytest.raises(PlanRefused) as info:
        issued.amend(
            Amendment(reason="Lùi hạn", deadlines={"six_month": date(2023, 6, 5)}), registry
        )
    assert info.value.field == "deadlines.six_month"


def test_a_sub_plan_dated_before_its_parent_is_refused() -> None:
    registry = build_registry()
    parent = plan(AssigneeRule(kinds=("district",)))
    parent.issue(registry)
    child = plan(
        AssigneeRule(subtrees=("H1",)),
        id="plan-h1",
        issuing_unit="H1",
        issued_on=date(2023, 1, 2),
        parent_plan_id=parent.id,
        schedule=[six_month(due_before=date(2023, 6, 5), period_end=date(2023, 6, 1))],
    )
    with pytest.raises(PlanRefused, match="before the plan it implements") as info:
        child.issue(registry, parent)
    assert info.value.field == "issued_on"
    assert child.status is PlanStatus.DRAFT


def test_difficulties_go_to_the_named_unit_or_else_home_affairs_or_else_the_issuer() -> None:
    registry = build_registry()
    assert difficulty_receiver(plan(AssigneeRule(), difficulties_to="H1"), registry).code == "H1"
    assert difficulty_receiver(plan(AssigneeRule()), registry).code == "T89"
    registry["S1"] = replace(registry["S1"], tags=("home_affairs",))
    assert difficulty_receiver(plan(AssigneeRule()), registry).code == "S1"
    with pytest.raises(PlanRefused) as info:
        difficulty_receiver(plan(AssigneeRule(), difficulties_to="S3"), registry)  # dissolved
    assert info.value.field == "difficulties_to"
