"""Rows and domain objects mapped once (shared.mapping.RowMapping): an object survives the
trip to its row and back, and the row keeps the stored format that existing databases hold
(a plan's JSON columns, an obligation's values)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.plans.adapters.repositories import PLANS, UNITS
from services.plans.domain.plans import (
    AssigneeRule,
    LegalDocument,
    Plan,
    PlanStatus,
    Signer,
    SubPlanRequirement,
)
from services.plans.domain.units import Unit
from services.reports.adapters.repositories import OBLIGATIONS
from shared.events import Contacts, ContentArea, ReportKind
from tests.unit.test_plans_domain import six_month
from tests.unit.test_reports_domain import an_obligation


def _row(mapping: Any, values: dict[str, Any]) -> tuple[Any, ...]:
    """A row as ``sa.select(table)`` gives it: every column, in the table's order."""
    return tuple(values.get(column.name) for column in mapping.table.columns)


def _plan() -> Plan:
    return Plan(
        id="pl-1",
        doc_number="45/KH-UBND",
        title="Kế hoạch thực hiện dân chủ ở cơ sở năm 2023",
        issuing_unit="T89",
        issued_on=date(2023, 2, 10),
        year=2023,
        place="An Giang",
        signer=Signer(name="Trần Văn A", position="KT. CHỦ TỊCH"),
        legal_basis=[LegalDocument("10/2022/QH15", date(2022, 11, 10), "Quốc hội", "Luật")],
        content_areas=[ContentArea(code="1", title="Công khai thông tin")],
        assignee_rule=AssigneeRule(kinds=("district",), units=("SNV",)),
        schedule=[
            six_month(
                period_start=date(2023, 1, 1), period_end=date(2023, 6, 30), receiving_unit="SNV"
            )
        ],
        on_request=(ReportKind.THEMATIC,),
        sub_plan=SubPlanRequirement(required=True, due_before=date(2023, 3, 1)),
        distribution=["Sở Nội vụ"],
        parent_plan_id=None,
        difficulties_to="SNV",
        status=PlanStatus.ISSUED,
        assignees=["H886", "SNV"],
        amendments=1,
    )


def test_a_plan_keeps_its_stored_format_and_comes_back_equal() -> None:
    plan = _plan()
    values = PLANS.values(plan, created_at=datetime(2023, 2, 10, tzinfo=UTC))
    assert values["status"] == "issued"
    assert values["schedule"] == [
        {
            "key": "six_month",
            "kind": "six_month",
            "title": "Báo cáo 6 tháng",
            "period_start": "2023-01-01",
            "period_end": "2023-06-30",
            "due_before": "2023-06-10",
            "receiving_unit": "SNV",
        }
    ]
    assert values["assignee_rule"] == {
        "kinds": ["district"],
        "kinds_via_parent": [],
        "subtrees": [],
        "units": ["SNV"],
    }
    assert values["details"] == {
        "signer": {"name": "Trần Văn A", "position": "KT. CHỦ TỊCH"},
        "legal_basis": [
            {"number": "10/2022/QH15", "date": "2022-11-10", "issuer": "Quốc hội", "title": "Luật"}
        ],
        "on_request": ["thematic"],
        "sub_plan": {"required": True, "due_before": "2023-03-01"},
        "distribution": ["Sở Nội vụ"],
        "difficulties_to": "SNV",
        "staff_conference": {
            "required": False,
            "due_before": None,
            "unit_kinds": ["department", "public_service_unit"],
        },
    }
    assert PLANS.from_row(_row(PLANS, values)) == plan


def test_a_plan_row_without_details_takes_the_defaults() -> None:
    values = PLANS.values(_plan())
    values["details"] = None
    found = PLANS.from_row(_row(PLANS, values))
    assert found.signer == Signer() and found.legal_basis == [] and found.on_request == ()
    assert found.sub_plan == SubPlanRequirement() and found.difficulties_to is None


def test_a_unit_comes_back_equal_and_null_tags_are_none() -> None:
    unit = Unit(
        code="H886",
        name="Huyện Châu Phú",
        kind="district",
        path=["T89", "H886"],
        parent_code="T89",
        contacts=Contacts(focal_email="vp@h886.demo.gov.vn"),
        tags=("border",),
        established_on=date(1991, 1, 1),
    )
    values = UNITS.values(unit, position=3)
    assert values["tags"] == ["border"] and values["position"] == 3
    assert UNITS.from_row(_row(UNITS, values)) == unit
    assert UNITS.from_row(_row(UNITS, {**values, "tags": None})).tags == ()


def test_an_obligation_stores_when_the_clock_next_looks_and_reads_back() -> None:
    obligation = an_obligation()
    values = OBLIGATIONS.values(obligation, opened_at=datetime(2023, 2, 10, tzinfo=UTC))
    assert values["report_kind"] == "six_month" and values["status"] == "open"
    assert values["next_step_at"] == obligation.on_the_clock_at
    found = OBLIGATIONS.from_row(_row(OBLIGATIONS, values))
    assert found.report_kind is ReportKind.SIX_MONTH
    assert (found.id, found.unit_path, found.due_at) == (
        obligation.id,
        obligation.unit_path,
        obligation.due_at,
    )
