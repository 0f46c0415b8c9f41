"""Report requests (thematic, ad hoc) and difficulties."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from services.plans.entrypoints.schemas import AnswerIn, DifficultyIn, ReportRequestIn
from services.plans.handlers import queries
from services.plans.handlers import requests as handlers
from shared.dependencies import Uow
from shared.limits import Identifier
from shared.mapping import taken
from shared.security import Caller
from shared.units import UnitCode

router = APIRouter()


@router.post(
    "/report-requests",
    status_code=status.HTTP_201_CREATED,
    tags=["requests"],
    summary="Ask chosen units for a thematic or ad-hoc report: ReportRequested",
)
async def request_report(body: ReportRequestIn, caller: Caller, uow: Uow) -> dict[str, str]:
    command = taken(handlers.RequestReport, body)
    return {"request_id": await handlers.request_report(command, uow, caller=caller)}


@router.get("/report-requests", tags=["requests"])
async def list_requests(
    requesting_unit: UnitCode | None = None, *, uow: Uow
) -> list[dict[str, Any]]:
    return await queries.report_requests(uow, requesting_unit)


@router.post(
    "/difficulties",
    status_code=status.HTTP_201_CREATED,
    tags=["difficulties"],
    summary="Raise a difficulty (vướng mắc) against a plan: DifficultyRaised",
)
async def raise_difficulty(body: DifficultyIn, caller: Caller, uow: Uow) -> dict[str, str]:
    command = taken(handlers.RaiseDifficulty, body)
    return {"difficulty_id": await handlers.raise_difficulty(command, uow, caller=caller)}


@router.get("/difficulties", tags=["difficulties"])
async def list_difficulties(plan_id: Identifier | None = None, *, uow: Uow) -> list[dict[str, Any]]:
    return await queries.difficulties(uow, plan_id)


@router.get("/difficulties/{difficulty_id}", tags=["difficulties"])
async def get_difficulty(difficulty_id: Identifier, caller: Caller, uow: Uow) -> dict[str, Any]:
    return await queries.difficulty(difficulty_id, uow)


@router.post(
    "/difficulties/{difficulty_id}/answer",
    tags=["difficulties"],
    summary="The unit it was raised to answers (a reviewer or administrator there); "
    "every answer is kept: DifficultyAnswered",
)
async def answer(
    difficulty_id: Identifier, body: AnswerIn, caller: Caller, uow: Uow
) -> dict[str, Any]:
    command = handlers.AnswerDifficulty(difficulty_id, body.answered_by, body.answer)
    number = await handlers.answer_difficulty(command, uow, caller=caller)
    return {
        "difficulty_id": difficulty_id,
        "answered_by": body.answered_by,
        "answer_number": number,
    }
