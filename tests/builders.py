"""Events the tests and benchmarks publish as other services would: a province with its
Home Affairs department and units below it, a plan issued with its schedule, and reports
submitted for a six-month plan entry. One builder each, so the tests, the e2e bursts and
``bench.notify`` agree, and a test names only the fields its assertions are about."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from services.reports.domain.consolidation import (
    Consolidation,
    SubmissionFacts,
    UnitFacts,
    consolidate,
)
from services.reports.domain.model import Obligation, ObligationStatus
from shared.bus.envelope import Envelope
from shared.events import (
    Assignee,
    Contacts,
    ObligationRef,
    PlanIssued,
    ReportKind,
    ReportSubmitted,
    ScheduledReport,
    UnitRegistered,
)
from shared.vntime import last_instant_before

PLAN_DOC_NUMBER = "123/KH-UBND"
PLAN_TITLE = "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023"
SIX_MONTH_DUE = last_instant_before(date(2023, 6, 10))
"""The last instant of 9 June 2023 in Vietnam: a six-month report due "before 10/06/2023"."""

_OBLIGATION_REF: dict[str, Any] = {
    "obligation_id": "o-1",
    "plan_id": "p-1",
    "schedule_key": "six_month",
    "report_kind": ReportKind.SIX_MONTH,
    "unit_code": "X30337",
    "receiving_unit": "H886",
    "period_start": date(2022, 12, 15),
    "period_end": date(2023, 6, 14),
    "due_at": SIX_MONTH_DUE,
}


def obligation_ref(**fields: Any) -> ObligationRef:
    """Commune X30337's six-month report of plan p-1 to district H886, due 9 June 2023;
    ``fields`` replace any of it."""
    return ObligationRef(**{**_OBLIGATION_REF, **fields})


def report_submitted(**fields: Any) -> ReportSubmitted:
    """Version 1 of report r-1 for :func:`obligation_ref`, on time; ``fields`` replace any
    of it."""
    defaults: dict[str, Any] = {
        "unit_path": ["T89", "H886", "X30337"],
        "report_id": "r-1",
        "receipt_number": "BC-2023-000001",
        "version": 1,
        "submitted_at": datetime(2023, 6, 1, 2, 0, tzinfo=UTC),
        "on_time": True,
    }
    if "obligation" not in fields:
        defaults["obligation"] = obligation_ref()
    return ReportSubmitted(**{**defaults, **fields})


def scheduled_report(
    key: str = "six_month",
    kind: ReportKind = ReportKind.SIX_MONTH,
    due_before: date = date(2023, 6, 10),
    period_end: date = date(2023, 6, 14),
    **fields: Any,
) -> ScheduledReport:
    """A plan's schedule entry from 15/12/2022, due to Home Affairs (SNV) "before"
    ``due_before``; ``fields`` replace any of the rest."""
    defaults: dict[str, Any] = {
        "period_start": date(2022, 12, 15),
        "due_at": last_instant_before(due_before),
        "receiving_unit": "SNV",
    }
    values = {**defaults, **fields}
    return ScheduledReport(
        key=key, kind=kind, period_end=period_end, due_before=due_before, **values
    )


def plan_issued(
    assignees: list[Assignee], schedule: list[ScheduledReport] | None = None, **fields: Any
) -> PlanIssued:
    """The province's plan 123/KH-UBND for 2023 (p-1, issued 16/01/2023), with a six-month
    report unless ``schedule`` says otherwise; ``fields`` replace any of the rest."""
    defaults: dict[str, Any] = {
        "unit_path": ["T89"],
        "plan_id": "p-1",
        "doc_number": PLAN_DOC_NUMBER,
        "title": PLAN_TITLE,
        "issuing_unit": "T89",
        "issued_on": date(2023, 1, 16),
        "year": 2023,
    }
    values = {**defaults, **fields}
    return PlanIssued(
        assignees=assignees,
        schedule=[scheduled_report()] if schedule is None else schedule,
        **values,
    )


def province(
    name: str = "Ủy ban nhân dân tỉnh", *, home_affairs_focal: str
) -> list[UnitRegistered]:
    """The province T89 and its Home Affairs department SNV (tag ``home_affairs``)."""
    return [
        UnitRegistered(unit_path=["T89"], code="T89", name=name, kind="province"),
        UnitRegistered(
            unit_path=["T89", "SNV"],
            code="SNV",
            name="Sở Nội vụ",
            kind="department",
            parent_code="T89",
            tags=["home_affairs"],
            contacts=Contacts(focal_email=home_affairs_focal),
        ),
    ]


def unit_below(code: str, name: str, focal_email: str, *, kind: str = "commune") -> UnitRegistered:
    """A unit right below T89 that reports to SNV."""
    return UnitRegistered(
        unit_path=["T89", code],
        code=code,
        name=name,
        kind=kind,
        parent_code="T89",
        reports_to_code="SNV",
        contacts=Contacts(focal_email=focal_email),
    )


def obligation(unit: str, *, year: int = 2023, obligation_id: str | None = None) -> ObligationRef:
    """``unit``'s six-month report of plan p-1, due to SNV on 9 June (ICT) of ``year``."""
    return ObligationRef(
        obligation_id=obligation_id or f"o-{unit}",
        plan_id="p-1",
        schedule_key="six_month",
        report_kind=ReportKind.SIX_MONTH,
        unit_code=unit,
        receiving_unit="SNV",
        period_start=date(year - 1, 12, 15),
        period_end=date(year, 6, 14),
        due_at=datetime(year, 6, 9, 16, 59, 59, 999999, tzinfo=UTC),
        plan_doc_number=PLAN_DOC_NUMBER,
        plan_title=f"Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm {year}",
    )


def submitted(
    unit: str,
    *,
    report_id: str,
    receipt_number: str,
    version: int = 1,
    year: int = 2023,
    obligation_id: str | None = None,
    submitted_at: datetime | None = None,
) -> ReportSubmitted:
    """``ReportSubmitted`` for ``unit``'s six-month report, on time."""
    return ReportSubmitted(
        unit_path=["T89", unit],
        report_id=report_id,
        receipt_number=receipt_number,
        version=version,
        obligation=obligation(unit, year=year, obligation_id=obligation_id),
        submitted_at=submitted_at or datetime(year, 6, 1, 2, 0, tzinfo=UTC),
        on_time=True,
    )


def plan_issued_envelope(correlation_id: str) -> Envelope:
    """The envelope plans puts around :func:`plan_issued` (for handlers called directly)."""
    return Envelope(
        id="e-1",
        source="/qcdc/plans",
        type="qcdc.plan.issued.v1",
        time=datetime(2023, 1, 16, tzinfo=UTC),
        subject="T89",
        correlation_id=correlation_id,
        nats_subject="qcdc.v1.plan.issued.T89",
    )


def six_month_obligation(
    code: str, unit_path: Sequence[str], status: ObligationStatus, receiving_unit: str = "SNV"
) -> Obligation:
    """Reports' record of ``code``'s six-month report of plan-2023, due 9 June 2023."""
    return Obligation(
        id=f"o-{code}",
        plan_id="plan-2023",
        schedule_key="six_month",
        report_kind=ReportKind.SIX_MONTH,
        unit_code=code,
        unit_path=list(unit_path),
        receiving_unit=receiving_unit,
        period_start=date(2022, 12, 15),
        period_end=date(2023, 6, 14),
        due_at=SIX_MONTH_DUE,
        plan_doc_number=PLAN_DOC_NUMBER,
        plan_title=PLAN_TITLE,
        status=status,
    )


def submission_facts(
    code: str, number: int, at: datetime, indicators: dict[str, Any], **fields: Any
) -> SubmissionFacts:
    """Version ``number`` of ``code``'s report for :func:`six_month_obligation`, submitted
    ``at`` (on time up to :data:`SIX_MONTH_DUE`); ``fields`` replace any of the rest."""
    defaults: dict[str, Any] = {
        "report_id": f"r-{code}-{number}",
        "receipt_number": f"BC-2023-{code}-{number}",
        "status": "submitted",
        "narrative": {},
    }
    values = {**defaults, **fields}
    return SubmissionFacts(
        obligation_id=f"o-{code}",
        version=number,
        submitted_at=at,
        on_time=at <= SIX_MONTH_DUE,
        indicators=indicators,
        **values,
    )


def consolidation(
    obligations: list[Obligation],
    submissions: list[SubmissionFacts],
    units: dict[str, UnitFacts],
    receiving_unit: str = "SNV",
    content_areas: dict[str, str] | None = None,
) -> Consolidation:
    """What ``receiving_unit`` (Home Affairs unless named) has received, consolidated at
    10:00 ICT on 20/06/2023."""
    return consolidate(
        receiving_unit=receiving_unit,
        obligations=obligations,
        submissions=submissions,
        units=units,
        as_of=datetime(2023, 6, 20, 3, 0, tzinfo=UTC),
        content_areas=content_areas,
    )
