"""Events the tests and benchmarks publish as other services would: a province with its
Home Affairs department and units below it, and reports submitted for a six-month plan
entry. One builder each, so the tests, the e2e bursts and ``bench.notify`` agree."""

from __future__ import annotations

from datetime import UTC, date, datetime

from shared.events import Contacts, ObligationRef, ReportKind, ReportSubmitted, UnitRegistered

PLAN_DOC_NUMBER = "123/KH-UBND"


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
