"""Obligations from an issued plan, and submitting a report against one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.reports.domain.model import (
    Obligation,
    ObligationStatus,
    ReportRefused,
    obligation_id,
    obligations_for_plan,
)
from shared.events import Assignee, PlanIssued, ReportKind, ReportSubmitted, ScheduledReport
from shared.vntime import ICT, last_instant_before
from tests import builders

SIX_MONTH_DUE = last_instant_before(date(2023, 6, 10))
ANNUAL_DUE = last_instant_before(date(2023, 11, 20))


def entry(key: str, kind: ReportKind, due_before: date) -> ScheduledReport:
    return builders.scheduled_report(key, kind, due_before, title=key)


def assignee(code: str, *parents: str) -> Assignee:
    return Assignee(
        code=code, unit_path=["T89", *parents, code], kind="unit", name=f"Đơn vị {code}"
    )


def plan_issued(assignees: list[Assignee] | None = None, plan_id: str = "plan-2023") -> PlanIssued:
    schedule = [
        entry("six_month", ReportKind.SIX_MONTH, date(2023, 6, 10)),
        entry("annual", ReportKind.ANNUAL, date(2023, 11, 20)),
        entry("thematic", ReportKind.THEMATIC, date(2023, 9, 1)),
    ]
    return builders.plan_issued(
        assignees or [assignee("S2"), assignee("H886"), assignee("H887")],
        schedule,
        plan_id=plan_id,
        issued_on=date(2023, 3, 1),
    )


def an_obligation() -> Obligation:
    (first, *_) = obligations_for_plan(plan_issued([assignee("X30337", "H886")]))
    assert first.schedule_key == "six_month"
    return first


def submit(obligation: Obligation, at: datetime, version: int = 1) -> tuple[bool, ReportSubmitted]:
    report = obligation.submit(
        report_id=f"r-{version}",
        receipt_number=f"BC-{version}",
        version=version,
        submitted_at=at,
        submitted_by="dau-moi@x30337.vn",
    )
    event = obligation.events[-1]
    assert isinstance(event, ReportSubmitted)
    assert event.on_time is report.on_time
    return report.on_time, event


# --- obligations from a plan ---------------------------------------------------------------


def test_one_obligation_per_assignee_and_periodic_schedule_entry() -> None:
    obligations = obligations_for_plan(plan_issued())
    pairs = sorted((o.unit_code, o.schedule_key) for o in obligations)
    assert pairs == sorted(
        (unit, key) for unit in ("S2", "H886", "H887") for key in ("six_month", "annual")
    )
    assert len({o.id for o in obligations}) == 6  # thematic entries wait for a request


def test_obligation_carries_the_schedule_entry_and_the_unit() -> None:
    obligations = obligations_for_plan(plan_issued([assignee("X30337", "H886")]))
    by_key = {o.schedule_key: o for o in obligations}
    six = by_key["six_month"]
    assert six.due_at == SIX_MONTH_DUE
    assert by_key["annual"].due_at == ANNUAL_DUE
    assert six.report_kind is ReportKind.SIX_MONTH
    assert six.unit_path == ["T89", "H886", "X30337"]
    assert six.receiving_unit == "SNV"
    assert six.plan_id == "plan-2023"
    assert six.plan_doc_number == "123/KH-UBND"
    assert six.status is ObligationStatus.OPEN


def test_obligation_ids_are_deterministic() -> None:
    first = [o.id for o in obligations_for_plan(plan_issued())]
    again = [o.id for o in obligations_for_plan(plan_issued())]
    assert first == again
    assert obligation_id("plan-2023", "six_month", "S2") in first


def test_obligation_ids_differ_by_unit_plan_and_entry() -> None:
    ids = {
        obligation_id("plan-2023", "six_month", "H886"),
        obligation_id("plan-2023", "six_month", "H887"),
        obligation_id("plan-2023", "annual", "H886"),
        obligation_id("plan-2024", "six_month", "H886"),
    }
    assert len(ids) == 4


def test_a_unit_does_not_owe_a_report_to_itself() -> None:
    obligations = obligations_for_plan(plan_issued([assignee("SNV"), assignee("H886")]))
    assert {o.unit_code for o in obligations} == {"H886"}


# --- submitting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submitted_at", "on_time"),
    [
        (datetime(2023, 6, 9, 23, 59, 59, tzinfo=ICT), True),
        (datetime(2023, 6, 1, 8, 0, tzinfo=ICT), True),
        (SIX_MONTH_DUE, True),
        (SIX_MONTH_DUE + timedelta(microseconds=1), False),
        (datetime(2023, 6, 10, 0, 0, 0, tzinfo=ICT), False),
        (datetime(2023, 7, 1, 9, 0, tzinfo=ICT), False),
    ],
)
def test_submit_is_on_time_until_due_at_and_late_after(
    submitted_at: datetime, on_time: bool
) -> None:
    obligation = an_obligation()
    assert submit(obligation, submitted_at)[0] is on_time
    assert obligation.status is ObligationStatus.SUBMITTED


def test_submit_records_report_submitted_speaking_for_the_obligations_unit() -> None:
    obligation = an_obligation()
    at = datetime(2023, 6, 5, 3, 0, tzinfo=UTC)
    _, event = submit(obligation, at)
    assert len(obligation.events) == 1
    assert event.unit_path == ["T89", "H886", "X30337"]
    assert event.subject() == "qcdc.v1.report.submitted.T89.H886.X30337"
    assert event.obligation.obligation_id == obligation.id
    assert event.obligation.unit_code == "X30337"
    assert event.obligation.due_at == SIX_MONTH_DUE
    assert event.submitted_at == at
    assert event.report_id == "r-1"
    assert event.receipt_number == "BC-1"
    assert event.version == 1
    assert event.submitted_by == "dau-moi@x30337.vn"


@pytest.mark.parametrize("status", [ObligationStatus.ACCEPTED, ObligationStatus.WAIVED])
def test_submit_is_refused_when_accepted_or_waived(status: ObligationStatus) -> None:
    obligation = an_obligation()
    obligation.status = status
    with pytest.raises(ReportRefused, match=status.value):
        submit(obligation, datetime(2023, 6, 5, tzinfo=UTC))
    assert obligation.status is status
    assert obligation.events == []


def test_a_returned_report_can_be_submitted_again() -> None:
    obligation = an_obligation()
    submit(obligation, datetime(2023, 6, 5, tzinfo=UTC))
    obligation.status = ObligationStatus.RETURNED
    on_time, event = submit(obligation, datetime(2023, 6, 12, tzinfo=UTC), version=2)
    assert on_time is False
    assert event.version == 2
    assert obligation.status is ObligationStatus.SUBMITTED
    assert len(obligation.events) == 2
