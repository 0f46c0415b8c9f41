"""HTTP API of recommendations after supervision: register, answer, report implementation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from services.reports.domain.recommendations import Entry, Recommendation, RecommendationStatus
from services.reports.entrypoints.dependencies import Settings
from services.reports.entrypoints.http.bodies import command_of, refusing_extra
from services.reports.handlers import recommendations as handlers
from services.reports.handlers.clock import rules_from
from shared.dependencies import Uow
from shared.limits import Identifier
from shared.mapping import shown
from shared.security import Caller
from shared.units import NfcName, NfcText, UnitCode


class RegisterIn(BaseModel):
    model_config = refusing_extra(
        {
            "source_organisation": "Ủy ban Mặt trận Tổ quốc Việt Nam xã Tân An",
            "topic": "Giám sát việc công khai thông tin ở thôn, tổ dân phố",
            "content": "Đề nghị Ủy ban nhân dân xã niêm yết công khai dự toán ngân "
            "sách xã tại nhà văn hóa các thôn trong thời hạn quy định.",
            "addressed_unit": "X30337",
            "received_on": "2026-03-02",
        }
    )

    source_organisation: NfcName = Field(min_length=1, max_length=512)
    topic: NfcName = Field(min_length=1, max_length=512)
    content: NfcText = Field(min_length=1, max_length=20000)
    addressed_unit: UnitCode
    received_on: date


class AnswerIn(BaseModel):
    model_config = refusing_extra(
        {
            "answer": "Ủy ban nhân dân xã tiếp thu kiến nghị; dự toán ngân sách xã "
            "được niêm yết tại nhà văn hóa các thôn từ ngày 10/3/2026."
        }
    )

    answer: NfcText = Field(min_length=1, max_length=20000)


class ImplementationIn(BaseModel):
    model_config = refusing_extra(
        {
            "content": "Đã niêm yết công khai tại 8/8 thôn; biên bản niêm yết kèm theo.",
            "completed": True,
        }
    )

    content: NfcText = Field(min_length=1, max_length=20000)
    completed: bool = False


class EntryOut(BaseModel):
    number: int
    kind: str
    text: str
    at: datetime
    by_unit: str
    completed: bool


class RecommendationOut(BaseModel):
    id: str
    source_organisation: str
    topic: str
    content: str
    addressed_unit: str
    registered_by_unit: str
    received_on: date
    answer_due_at: datetime
    obligation_id: str
    status: str
    answered_at: datetime | None
    answered_on_time: bool | None
    closed_at: datetime | None
    history: list[EntryOut]


def _entry_out(entry: Entry) -> EntryOut:
    return shown(EntryOut, entry)


def _out(r: Recommendation) -> RecommendationOut:
    return shown(RecommendationOut, r)


router = APIRouter(tags=["recommendations"])


@router.post(
    "/recommendations",
    status_code=status.HTTP_201_CREATED,
    response_model=RecommendationOut,
    summary="Register a recommendation after supervision; opens its answer obligation",
)
async def register(
    body: RegisterIn, caller: Caller, uow: Uow, settings: Settings
) -> RecommendationOut:
    found = await handlers.register_recommendation(
        command_of(handlers.RegisterRecommendation, body),
        uow,
        caller=caller,
        answer_days=settings.recommendation_answer_days,
        rules=rules_from(settings),
        ownership=settings.ownership(),
    )
    return _out(found)


@router.get(
    "/recommendations",
    response_model=list[RecommendationOut],
    summary="Recommendations the caller may read, newest received first (no history)",
)
async def listing(
    caller: Caller,
    addressed_unit: Annotated[UnitCode | None, Query()] = None,
    status: Annotated[RecommendationStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    *,
    uow: Uow,
) -> list[RecommendationOut]:
    where = handlers.RecommendationFilter(addressed_unit, status)
    found = await handlers.recommendations_of(where, uow, caller=caller, limit=limit)
    return [_out(r) for r in found]


@router.get("/recommendations/{recommendation_id}", response_model=RecommendationOut)
async def get(recommendation_id: Identifier, caller: Caller, uow: Uow) -> RecommendationOut:
    return _out(await handlers.recommendation(recommendation_id, uow, caller=caller))


@router.post(
    "/recommendations/{recommendation_id}/answer",
    response_model=EntryOut,
    summary="The addressed unit's written answer; meets the answer obligation",
)
async def answer(
    recommendation_id: Identifier, body: AnswerIn, caller: Caller, uow: Uow
) -> EntryOut:
    command = handlers.AnswerRecommendation(recommendation_id, body.answer)
    return _entry_out(await handlers.answer_recommendation(command, uow, caller=caller))


@router.post(
    "/recommendations/{recommendation_id}/implementation",
    response_model=EntryOut,
    summary="An implementation report; completed=true closes the recommendation",
)
async def implementation(
    recommendation_id: Identifier,
    body: ImplementationIn,
    caller: Caller,
    uow: Uow,
) -> EntryOut:
    command = handlers.ReportImplementation(recommendation_id, body.content, body.completed)
    return _entry_out(await handlers.report_implementation(command, uow, caller=caller))
