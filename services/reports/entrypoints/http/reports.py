"""HTTP API of the reports service: parse the request, call a handler, shape the answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from services.reports.domain.indicators import CATALOGUE, NOT_MORE_THAN
from services.reports.domain.model import Obligation, ObligationStatus, Report
from services.reports.entrypoints.dependencies import (
    AttachmentContent,
    Rules,
    Settings,
    Store,
    attachment_body,
)
from services.reports.handlers import intake as handlers
from services.reports.handlers import queries, review
from services.reports.settings import ReportsSettings
from shared.dependencies import Grouped, Uow
from shared.limits import Identifier
from shared.mapping import shown
from shared.security import Caller
from shared.units import NfcName, NfcText, UnitCode


class SubmitReportRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "obligation_id": "ob-7d1e90",
                    "unit_code": "X30337",
                    "submitted_by": "Nguyễn Thị Hoa, công chức Văn phòng - Thống kê",
                    "narrative": {
                        "1": "Đã tổ chức hội nghị quán triệt Quy chế dân chủ ở cơ sở tại 12 thôn.",
                        "6": "Không có khiếu nại, tố cáo liên quan đến thực hiện dân chủ ở cơ sở.",
                    },
                    "indicators": {"complaints_received": 3, "complaints_resolved": 2},
                }
            ]
        },
    )

    obligation_id: Identifier
    unit_code: UnitCode
    submitted_by: NfcName | None = Field(None, max_length=256)
    narrative: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,16}$")],
        Annotated[NfcText, Field(max_length=20000)],
    ] = Field(default_factory=dict, max_length=50)
    indicators: dict[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")], StrictInt] = Field(
        default_factory=dict, max_length=200
    )


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
    status: str
    reviewed_at: datetime | None = None
    reviewed_by_unit: str | None = None
    review_reason: str | None = Field(None, description="Why it was returned for revision.")


class ReviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reviewer_unit": "SNV"}]}
    )

    reviewer_unit: UnitCode


class ReturnIn(ReviewIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reviewer_unit": "SNV",
                    "reason": "Bổ sung số liệu về hội nghị nhân dân ở thôn, tổ dân phố",
                }
            ]
        }
    )

    reason: NfcText = Field(min_length=1, max_length=5000)


class DeadlineChangeOut(BaseModel):
    changed_at: datetime
    old_due_at: datetime
    new_due_at: datetime
    cause: str
    reclassified: list[dict[str, Any]] = Field(
        description="Reports whose verdict changed: report_id, receipt_number, "
        "on_time_before, on_time."
    )


class IndicatorOut(BaseModel):
    code: str
    label: str
    unit: str
    content_area: str
    minimum: int = 0


class NotMoreThanOut(BaseModel):
    """The indicator ``part`` may never exceed ``whole``."""

    part: str
    whole: str


class IndicatorCatalogueOut(BaseModel):
    indicators: list[IndicatorOut]
    not_more_than: list[NotMoreThanOut]


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
    plan_closed: bool = Field(False, description="The plan was closed: nothing more is urged.")
    next_step_at: datetime | None = Field(
        None,
        description="When the deadline clock next looks at it (a reminder or an urging may "
        "be due then); null: nothing more will be sent (submitted, waived, plan closed, "
        "urging ended, or another instance owns it).",
    )
    deadline_changes: list[DeadlineChangeOut] = Field(
        default_factory=list,
        description="Every move of the deadline and the reports it judged again (on "
        "``GET /obligations/{id}`` only).",
    )


def _receipt(report: Report) -> ReceiptOut:
    return shown(ReceiptOut, report, report_id=report.id)


def _report_out(report: Report) -> ReportOut:
    return shown(ReportOut, report, report_id=report.id)


def _obligation_out(obligation: Obligation) -> ObligationOut:
    return shown(ObligationOut, obligation, next_step_at=obligation.on_the_clock_at)


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
    caller: Caller,
    settings: Settings,
    transactions: Grouped,
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
    submission = await handlers.submit_with_retry(
        transactions, command, settings.ownership(), caller=caller
    )
    if submission.replayed:
        response.status_code = status.HTTP_200_OK
    return _receipt(submission.report)


@router.get("/reports/{report_id}", response_model=ReportOut, tags=["reports"])
async def get_report(report_id: Identifier, caller: Caller, uow: Uow) -> ReportOut:
    return _report_out(await queries.report(report_id, uow, caller=caller))


@router.get(
    "/obligations/{obligation_id}/reports",
    response_model=list[ReportOut],
    tags=["reports"],
    summary="Every version submitted for an obligation",
)
async def versions(obligation_id: Identifier, caller: Caller, uow: Uow) -> list[ReportOut]:
    return [_report_out(r) for r in await queries.versions(obligation_id, uow, caller=caller)]


@router.post(
    "/reports/{report_id}/accept",
    response_model=ReportOut,
    tags=["review"],
    summary="The receiving unit accepts the report: ReportAccepted",
)
async def accept(report_id: Identifier, body: ReviewIn, caller: Caller, uow: Uow) -> ReportOut:
    command = review.Review(report_id, body.reviewer_unit, accept=True)
    return _report_out((await review.review_report(command, uow, caller=caller))[1])


@router.post(
    "/reports/{report_id}/return",
    response_model=ReportOut,
    tags=["review"],
    summary="The receiving unit returns it for revision: ReportReturned",
)
async def return_report(
    report_id: Identifier, body: ReturnIn, caller: Caller, uow: Uow
) -> ReportOut:
    command = review.Review(report_id, body.reviewer_unit, accept=False, reason=body.reason)
    return _report_out((await review.review_report(command, uow, caller=caller))[1])


ATTACHMENT_PATH = "/reports/{report_id}/attachments/{filename}"


@router.put(
    ATTACHMENT_PATH,
    status_code=status.HTTP_201_CREATED,
    tags=["reports"],
    summary="Attach a file (e.g. the signed PDF) to a report: the raw bytes as the body",
    openapi_extra=attachment_body(ReportsSettings.model_construct()),
)
async def attach(
    report_id: Identifier,
    filename: str,
    request: Request,
    caller: Caller,
    content: AttachmentContent,
    rules: Rules,
    store: Store,
    uow: Uow,
) -> dict[str, Any]:
    command = handlers.Attach(
        report_id=report_id,
        filename=filename,
        content_type=request.headers.get("content-type", "").split(";")[0].strip(),
        content=content,
    )
    record = await handlers.attach(command, rules, store, uow, caller=caller)
    return {k: v for k, v in record.items() if k != "stored_as"}


@router.get("/obligations", response_model=list[ObligationOut], tags=["obligations"])
async def list_obligations(
    unit: UnitCode | None = None,
    status: ObligationStatus | None = None,
    plan_id: Identifier | None = None,
    schedule_key: Annotated[Identifier | None, Query(max_length=64)] = None,
    receiving_unit: UnitCode | None = None,
    *,
    caller: Caller,
    uow: Uow,
) -> list[ObligationOut]:
    where = queries.ObligationFilter(unit, status, plan_id, schedule_key, receiving_unit)
    return [_obligation_out(o) for o in await queries.obligations(where, uow, caller=caller)]


@router.get(
    "/indicators",
    response_model=IndicatorCatalogueOut,
    tags=["reports"],
    summary="The indicator catalogue and the rules between indicators (for entry forms)",
)
async def indicator_catalogue() -> IndicatorCatalogueOut:
    return IndicatorCatalogueOut(
        indicators=[
            IndicatorOut(code=i.code, label=i.label, unit=i.unit, content_area=i.content_area)
            for i in CATALOGUE
        ],
        not_more_than=[NotMoreThanOut(part=p, whole=w) for p, w in NOT_MORE_THAN],
    )


@router.get("/obligations/{obligation_id}", response_model=ObligationOut, tags=["obligations"])
async def get_obligation(obligation_id: Identifier, caller: Caller, uow: Uow) -> ObligationOut:
    obligation, changes = await queries.obligation(obligation_id, uow, caller=caller)
    found = _obligation_out(obligation)
    found.deadline_changes = [shown(DeadlineChangeOut, c) for c in changes]
    return found
