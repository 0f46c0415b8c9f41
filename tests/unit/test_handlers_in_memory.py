"""Handlers against the in-memory unit of work (:mod:`tests.unit.fakes`): what each decides,
publishes, audits and commits, in milliseconds. The same handlers run on SQLite and
PostgreSQL in tests/integration."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from services.plans.domain.units import Unit
from services.plans.handlers import units
from services.reports.domain.inspections import InspectionRefused
from services.reports.domain.model import ObligationStatus, ReportRefused, ReportStatus
from services.reports.domain.recommendations import RecommendationRefused
from services.reports.handlers import inspections, intake, recommendations, review
from services.reports.handlers.clock import rules_from
from services.reports.handlers.intake import SubmitReport
from services.reports.handlers.recommendations import RegisterRecommendation
from services.reports.settings import ReportsSettings
from shared.auth import Forbidden, Principal, Role
from shared.errors import Conflict, Missing
from shared.events import (
    Contacts,
    InspectionKind,
    InspectionScheduled,
    RecommendationRegistered,
    ReportAccepted,
    ReportReturned,
    ReportSubmitted,
    UnitRegistered,
)
from tests.unit.fakes import (
    FakeUnitOfWork,
    InMemoryDirectory,
    InMemoryInspections,
    InMemoryObligations,
    InMemoryRecommendations,
    InMemoryReports,
    InMemoryUnits,
)
from tests.unit.test_reports_domain import an_obligation

NOW = datetime(2023, 6, 5, 3, 0, tzinfo=UTC)
PROVINCE_ADMIN = Principal("tk-admin", "T89", ("T89",), Role.ADMINISTRATOR)
RECEIVER = Principal("tk-snv", "SNV", ("T89", "SNV"), Role.REVIEWER)
"""The unit the obligation's reports go to (Home Affairs)."""


def _province() -> Unit:
    return Unit(code="T89", name="Tỉnh An Giang", kind="province", path=["T89"])


def _register(code: str, parent: str | None = "T89") -> units.RegisterUnit:
    return units.RegisterUnit(
        code=code,
        name=f"Huyện {code}",
        kind="district",
        parent_code=parent,
        reports_to_code=parent,
        contacts=Contacts(),
    )


async def test_registering_a_unit_stores_it_announces_it_and_commits_once() -> None:
    registry = InMemoryUnits(_province())
    uow = FakeUnitOfWork(NOW, registry)
    unit = await units.register_unit(_register("H886"), uow.as_uow(), caller=PROVINCE_ADMIN)
    assert unit.path == ["T89", "H886"]
    assert registry.units["H886"] is unit
    [event] = uow.published
    assert isinstance(event, UnitRegistered)
    assert event.unit_path == ["T89", "H886"]
    assert uow.audits == [("T89", "unit.registered", "H886")]
    assert uow.commits == 1


async def test_a_unit_code_is_registered_once() -> None:
    uow = FakeUnitOfWork(NOW, InMemoryUnits(_province()))
    await units.register_unit(_register("H886"), uow.as_uow(), caller=PROVINCE_ADMIN)
    with pytest.raises(Conflict, match="already registered"):
        await units.register_unit(_register("H886"), uow.as_uow(), caller=PROVINCE_ADMIN)
    assert uow.commits == 1 and len(uow.published) == 1


async def test_an_unknown_parent_is_refused_and_nothing_is_committed() -> None:
    uow = FakeUnitOfWork(NOW, InMemoryUnits(_province()))
    with pytest.raises(Exception, match="H999"):
        await units.register_unit(_register("X1", "H999"), uow.as_uow(), caller=PROVINCE_ADMIN)
    assert uow.commits == 0 and uow.published == []


def _submitted() -> tuple[InMemoryObligations, InMemoryReports, str]:
    obligation = an_obligation()
    report = obligation.submit(
        report_id="r-1",
        receipt_number="BC-1",
        version=1,
        submitted_at=NOW,
        submitted_by="dau-moi@x30337.vn",
    )
    obligation.events.clear()
    return InMemoryObligations(obligation), InMemoryReports(report), obligation.receiving_unit


async def test_accepting_a_report_publishes_report_accepted_and_commits() -> None:
    obligations, reports, receiver = _submitted()
    assert receiver == "SNV"
    uow = FakeUnitOfWork(NOW, obligations, reports)
    command = review.Review("r-1", receiver, accept=True)
    obligation, report = await review.review_report(command, uow.as_uow(), caller=RECEIVER)
    assert report.status is ReportStatus.ACCEPTED
    assert obligation.status is ObligationStatus.ACCEPTED
    assert obligations.saved == [obligation]
    [event] = uow.published
    assert isinstance(event, ReportAccepted) and event.reviewed_by_unit == "SNV"
    assert uow.audits == [("SNV", "report.accepted", "r-1")]
    assert uow.commits == 1


async def test_returning_a_report_needs_a_reason_and_keeps_it() -> None:
    obligations, reports, receiver = _submitted()
    uow = FakeUnitOfWork(NOW, obligations, reports)
    command = review.Review("r-1", receiver, accept=False, reason="Bổ sung số liệu")
    await review.review_report(command, uow.as_uow(), caller=RECEIVER)
    [event] = uow.published
    assert isinstance(event, ReportReturned)
    assert reports.reports["r-1"].review_reason == "Bổ sung số liệu"


async def test_only_the_receiving_unit_reviews() -> None:
    obligations, reports, _ = _submitted()
    uow = FakeUnitOfWork(NOW, obligations, reports)
    other = Principal("tk-h887", "H887", ("T89", "H887"), Role.REVIEWER)
    with pytest.raises(Forbidden):
        await review.review_report(
            review.Review("r-1", "H887", accept=True), uow.as_uow(), caller=other
        )
    assert uow.commits == 0 and uow.published == [] and obligations.saved == []


async def test_reviewing_an_unknown_report_is_missing() -> None:
    uow = FakeUnitOfWork(NOW, InMemoryObligations(), InMemoryReports())
    with pytest.raises(Missing, match="no report r-9"):
        await review.review_report(
            review.Review("r-9", "SNV", accept=True), uow.as_uow(), caller=RECEIVER
        )


# --- reports intake ------------------------------------------------------------------------


def _intake() -> tuple[FakeUnitOfWork, InMemoryObligations, InMemoryReports, Principal]:
    obligation = an_obligation()
    obligations = InMemoryObligations(obligation)
    reports = InMemoryReports().beside(obligations)
    submitter = Principal(
        "tk-x30337", obligation.unit_code, tuple(obligation.unit_path), Role.SUBMITTER
    )
    return FakeUnitOfWork(NOW, obligations, reports), obligations, reports, submitter


def _submit(key: str | None = "k-1", narrative: str = "Đã tổ chức hội nghị.") -> SubmitReport:
    obligation = an_obligation()
    return SubmitReport(
        obligation_id=obligation.id,
        unit_code=obligation.unit_code,
        idempotency_key=key,
        submitted_by="Nguyễn Thị Hoa",
        narrative={"1": narrative},
    )


async def test_a_submission_stores_the_report_announces_it_and_commits_once() -> None:
    uow, obligations, reports, submitter = _intake()
    submission = await intake.submit_report(_submit(), uow.as_uow(), caller=submitter)
    assert not submission.replayed
    report = submission.report
    assert reports.reports == {report.id: report}
    assert report.version == 1 and report.receipt_number == "BC-2023-000001"
    assert reports.keys == {("X30337", "k-1"): report.id}
    assert [o.id for o in obligations.saved] == [report.obligation_id]
    [event] = uow.published
    assert isinstance(event, ReportSubmitted) and event.report_id == report.id
    assert uow.audits == [("X30337", "report.submitted", report.id)]
    assert uow.commits == 1


async def test_a_retry_with_the_same_key_answers_the_same_receipt_without_a_new_event() -> None:
    uow, _, reports, submitter = _intake()
    first = await intake.submit_report(_submit(), uow.as_uow(), caller=submitter)
    again = await intake.submit_report(_submit(), uow.as_uow(), caller=submitter)
    assert again.replayed and again.report is first.report
    assert len(reports.reports) == 1 and len(uow.published) == 1
    assert uow.audits[-1] == ("X30337", "report.submission_replayed", first.report.id)
    assert uow.commits == 2


async def test_the_same_key_with_other_content_is_refused() -> None:
    uow, _, reports, submitter = _intake()
    await intake.submit_report(_submit(), uow.as_uow(), caller=submitter)
    with pytest.raises(ReportRefused, match="different submission") as refused:
        await intake.submit_report(_submit(narrative="Khác"), uow.as_uow(), caller=submitter)
    assert refused.value.field == "idempotency_key"
    assert len(reports.reports) == 1 and uow.commits == 1


async def test_a_second_submission_without_a_key_is_the_next_version() -> None:
    uow, _, _, submitter = _intake()
    await intake.submit_report(_submit(None), uow.as_uow(), caller=submitter)
    second = await intake.submit_report(_submit(None), uow.as_uow(), caller=submitter)
    assert second.report.version == 2 and len(uow.published) == 2


async def test_another_units_submitter_is_forbidden_before_any_key_is_read() -> None:
    uow, _, reports, _ = _intake()
    other = Principal("tk-h887", "H887", ("T89", "H887"), Role.SUBMITTER)
    with pytest.raises(Forbidden):
        await intake.submit_report(_submit(), uow.as_uow(), caller=other)
    assert reports.reports == {} and uow.commits == 0 and uow.published == []


async def test_a_submission_for_another_unit_or_an_unknown_obligation_is_refused() -> None:
    uow, _, _, submitter = _intake()
    wrong_unit = replace(_submit(), unit_code="X30338")
    with pytest.raises(ReportRefused, match="belongs to unit X30337") as refused:
        await intake.submit_report(wrong_unit, uow.as_uow(), caller=submitter)
    assert refused.value.field == "unit_code"
    with pytest.raises(Missing, match="no obligation ob-none"):
        await intake.submit_report(
            replace(_submit(), obligation_id="ob-none"), uow.as_uow(), caller=submitter
        )
    assert uow.commits == 0 and uow.published == []


# --- inspections ---------------------------------------------------------------------------


def _directory() -> InMemoryDirectory:
    return InMemoryDirectory(
        ("T89", ["T89"], None),
        ("SNV", ["T89", "SNV"], "T89"),
        ("H886", ["T89", "H886"], "SNV"),
        ("X30337", ["T89", "H886", "X30337"], "H886"),
        ("S2", ["T89", "S2"], "T89"),
    )


def _schedule(*units: str, by: str | None = "SNV") -> inspections.ScheduleInspection:
    return inspections.ScheduleInspection(
        kind=InspectionKind.INSPECTION,
        topic="Kiểm tra việc thực hiện Quy chế dân chủ ở cơ sở",
        inspected_units=units,
        planned_start=date(2023, 9, 7),
        planned_end=date(2023, 9, 18),
        inspecting_unit=by,
    )


async def test_scheduling_an_inspection_announces_it_to_each_inspected_unit() -> None:
    stored = InMemoryInspections()
    uow = FakeUnitOfWork(NOW, _directory(), stored)
    inspection = await inspections.schedule_inspection(
        _schedule("H886", "X30337"), uow.as_uow(), caller=RECEIVER
    )
    assert stored.added == {inspection.id: inspection}
    assert [u.code for u in inspection.units] == ["H886", "X30337"]
    assert all(isinstance(e, InspectionScheduled) for e in uow.published)
    assert [e.inspected_unit for e in uow.published] == ["H886", "X30337"]  # type: ignore[attr-defined]
    assert uow.audits == [("SNV", "inspection.scheduled", inspection.id)]
    assert uow.commits == 1


async def test_a_unit_outside_the_inspecting_units_authority_is_refused() -> None:
    uow = FakeUnitOfWork(NOW, _directory(), InMemoryInspections())
    with pytest.raises(InspectionRefused, match="S2 is neither below SNV nor reports to it"):
        await inspections.schedule_inspection(_schedule("S2"), uow.as_uow(), caller=RECEIVER)
    with pytest.raises(InspectionRefused, match="unit X1 is not known"):
        await inspections.schedule_inspection(_schedule("X1"), uow.as_uow(), caller=RECEIVER)
    assert uow.commits == 0 and uow.published == []


async def test_only_who_acts_for_the_inspecting_unit_schedules() -> None:
    uow = FakeUnitOfWork(NOW, _directory(), InMemoryInspections())
    other = Principal("tk-h887", "H887", ("T89", "H887"), Role.REVIEWER)
    with pytest.raises(Forbidden):
        await inspections.schedule_inspection(_schedule("X30337"), uow.as_uow(), caller=other)
    assert uow.commits == 0 and uow.published == []


# --- recommendations -----------------------------------------------------------------------

RULES = rules_from(ReportsSettings(database_url="sqlite+aiosqlite://"))


def _recommend(
    unit: str = "X30337", received_on: date = date(2023, 6, 1)
) -> RegisterRecommendation:
    return RegisterRecommendation(
        source_organisation="Ủy ban Mặt trận Tổ quốc Việt Nam xã",
        topic="Công khai dự toán ngân sách xã",
        content="Đề nghị niêm yết công khai dự toán tại các thôn.",
        addressed_unit=unit,
        received_on=received_on,
    )


async def test_registering_a_recommendation_opens_its_answer_obligation() -> None:
    stored, obligations = InMemoryRecommendations(), InMemoryObligations()
    uow = FakeUnitOfWork(NOW, _directory(), stored, obligations)
    submitter = Principal("tk-x30337", "X30337", ("T89", "H886", "X30337"), Role.SUBMITTER)
    found = await recommendations.register_recommendation(
        _recommend(), uow.as_uow(), caller=submitter, answer_days=15, rules=RULES
    )
    assert stored.added == {found.id: found}
    [obligation] = obligations.obligations.values()
    assert obligation.id == found.obligation_id and obligation.due_at == found.answer_due_at
    [event] = uow.published
    assert isinstance(event, RecommendationRegistered) and event.recommendation_id == found.id
    assert uow.audits == [("X30337", "recommendation.registered", found.id)]
    assert uow.commits == 1


async def test_a_recommendation_received_in_the_future_or_for_an_unknown_unit_is_refused() -> None:
    uow = FakeUnitOfWork(NOW, _directory(), InMemoryRecommendations(), InMemoryObligations())
    with pytest.raises(RecommendationRefused, match="in the future"):
        await recommendations.register_recommendation(
            _recommend(received_on=date(2023, 6, 6)),
            uow.as_uow(),
            caller=PROVINCE_ADMIN,
            answer_days=15,
            rules=RULES,
        )
    with pytest.raises(RecommendationRefused, match="unit X9 is not known"):
        await recommendations.register_recommendation(
            _recommend("X9"), uow.as_uow(), caller=PROVINCE_ADMIN, answer_days=15, rules=RULES
        )
    assert uow.commits == 0 and uow.published == []
