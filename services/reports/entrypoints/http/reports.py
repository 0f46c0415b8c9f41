"""HTTP API of the reports service: parse the request, call a handler, shape the answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from services.reports.adapters.repositories import ObligationRepository, ReportRepository
from services.reports.domain.model import Obligation, Report
from services.reports.handlers import intake as handlers
from shared.errors import Missing
from shared.runtime import Runtime
from shared.units import UnitCode


class SubmitReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    obligation_id: str = Field(max_length=64)
    unit_code: UnitCode
    submitted_by: str | None = Field(None, max_length=256)
    narrative: dict[str, Annotated[str, Field(max_length=20000)]] = Field(default_factory=dict)
    indicators: dict[str, float | int] = Field(default_factory=dict)


class ReceiptOut(BaseModel):
    report_id: str
    receipt_number: str
    obligation_id: str
    version: int
    submitted_at: datetime
    on_time: bool


class ReportOut(ReceiptOut):
    submitted_by: str | None
    narrative: dict[str, str]
    indicators: dict[str, Any]


class ObligationOut(BaseModel):
    id: str
    plan_id: str
    schedule_key: str
    report_kind: str
    unit_code: str
    unit_path: list[str]
    receiving_unit: str
    period_start: date
    period_end: date
    due_at: datetime
    status: str
    waived_reason: str | None = None
    request_id: str | None = None


def _receipt(report: Report) -> ReceiptOut:
    return ReceiptOut(
        report_id=report.id,
        receipt_number=report.receipt_number,
        obligation_id=report.obligation_id,
        version=report.version,
        submitted_at=report.submitted_at,
        on_time=report.on_time,
    )


def _obligation_out(obligation: Obligation) -> ObligationOut:
    return ObligationOut(
        id=obligation.id,
        plan_id=obligation.plan_id,
        schedule_key=obligation.schedule_key,
        report_kind=obligation.report_kind.value,
        unit_code=obligation.unit_code,
        unit_path=obligation.unit_path,
        receiving_unit=obligation.receiving_unit,
        period_start=obligation.period_start,
        period_end=obligation.period_end,
        due_at=obligation.due_at,
        status=obligation.status.value,
        waived_reason=obligation.waived_reason,
        request_id=obligation.request_id,
    )


def report_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/reports",
        status_code=status.HTTP_201_CREATED,
        response_model=ReceiptOut,
        tags=["reports"],
        summary="Submit a report for an obligation; retries with the same Idempotency-Key "
        "return the same receipt.",
    )
    async def submit(
        body: SubmitReportRequest,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> ReceiptOut:
        command = handlers.SubmitReport(
            obligation_id=body.obligation_id,
            unit_code=body.unit_code,
            idempotency_key=idempotency_key,
            submitted_by=body.submitted_by,
            narrative=body.narrative,
            indicators=body.indicators,
        )
        submission = await _submit(runtime, command)
        if submission.replayed:
            response.status_code = status.HTTP_200_OK
        return _receipt(submission.report)

    @router.get("/reports/{report_id}", response_model=ReportOut, tags=["reports"])
    async def get_report(report_id: str) -> ReportOut:
        async with runtime.uow() as uow:
            report = await ReportRepository(uow.session).get(report_id)
        if report is None:
            raise Missing(f"no report {report_id}")
        return ReportOut(
            **_receipt(report).model_dump(),
            submitted_by=report.submitted_by,
            narrative=report.narrative,
            indicators=report.indicators,
        )

    @router.get("/obligations", response_model=list[ObligationOut], tags=["obligations"])
    async def list_obligations(
        unit: UnitCode | None = None,
        status: str | None = None,
        plan_id: str | None = None,
    ) -> list[ObligationOut]:
        async with runtime.uow() as uow:
            found = await ObligationRepository(uow.session).find(
                unit_code=unit, status=status, plan_id=plan_id
            )
        return [_obligation_out(o) for o in found]

    @router.get("/obligations/{obligation_id}", response_model=ObligationOut, tags=["obligations"])
    async def get_obligation(obligation_id: str) -> ObligationOut:
        async with runtime.uow() as uow:
            obligation = await ObligationRepository(uow.session).get(obligation_id)
        if obligation is None:
            raise Missing(f"no obligation {obligation_id}")
        return _obligation_out(obligation)

    return router


async def _submit(runtime: Runtime, command: handlers.SubmitReport) -> handlers.Submission:
    for attempt in range(2):
        try:
            async with runtime.uow() as uow:
                return await handlers.submit_report(command, uow)
        except IntegrityError:
            # Two submissions with the same key raced; the other one won: answer with it.
            if attempt == 1 or not command.idempotency_key:
                raise
    raise AssertionError("unreachable")
