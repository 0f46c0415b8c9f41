"""Report requests (thematic, ad hoc) and difficulties."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from services.plans.adapters.repositories import DifficultyRepository, ReportRequestRepository
from services.plans.entrypoints.schemas import AnswerIn, DifficultyIn, ReportRequestIn
from services.plans.handlers import requests as handlers
from shared.errors import Missing
from shared.limits import Identifier
from shared.runtime import Runtime
from shared.security import Caller
from shared.units import UnitCode


def request_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/report-requests",
        status_code=status.HTTP_201_CREATED,
        tags=["requests"],
        summary="Ask chosen units for a thematic or ad-hoc report: ReportRequested",
    )
    async def request_report(body: ReportRequestIn, caller: Caller) -> dict[str, str]:
        command = handlers.RequestReport(
            requesting_unit=body.requesting_unit,
            kind=body.kind,
            topic=body.topic,
            units=tuple(body.units),
            period_start=body.period_start,
            period_end=body.period_end,
            due_before=body.due_before,
            content_areas=tuple(body.content_areas),
            indicators=tuple(body.indicators),
            plan_id=body.plan_id,
        )
        async with runtime.uow() as uow:
            return {"request_id": await handlers.request_report(command, uow, caller=caller)}

    @router.get("/report-requests", tags=["requests"])
    async def list_requests(requesting_unit: UnitCode | None = None) -> list[dict[str, Any]]:
        async with runtime.uow() as uow:
            return await ReportRequestRepository(uow.session).find(requesting_unit)

    @router.post(
        "/difficulties",
        status_code=status.HTTP_201_CREATED,
        tags=["difficulties"],
        summary="Raise a difficulty (vướng mắc) against a plan: DifficultyRaised",
    )
    async def raise_difficulty(body: DifficultyIn, caller: Caller) -> dict[str, str]:
        command = handlers.RaiseDifficulty(
            plan_id=body.plan_id,
            unit_code=body.unit_code,
            description=body.description,
            content_area=body.content_area,
        )
        async with runtime.uow() as uow:
            return {"difficulty_id": await handlers.raise_difficulty(command, uow, caller=caller)}

    @router.get("/difficulties", tags=["difficulties"])
    async def list_difficulties(plan_id: Identifier | None = None) -> list[dict[str, Any]]:
        async with runtime.uow() as uow:
            return await DifficultyRepository(uow.session).find(plan_id)

    @router.get("/difficulties/{difficulty_id}", tags=["difficulties"])
    async def get_difficulty(difficulty_id: Identifier, caller: Caller) -> dict[str, Any]:
        async with runtime.uow() as uow:
            found = await DifficultyRepository(uow.session).get(difficulty_id)
        if found is None:
            raise Missing(f"no difficulty {difficulty_id}")
        return found

    @router.post(
        "/difficulties/{difficulty_id}/answer",
        tags=["difficulties"],
        summary="The unit it was raised to answers (a reviewer or administrator there); "
        "every answer is kept: DifficultyAnswered",
    )
    async def answer(difficulty_id: Identifier, body: AnswerIn, caller: Caller) -> dict[str, Any]:
        command = handlers.AnswerDifficulty(difficulty_id, body.answered_by, body.answer)
        async with runtime.uow() as uow:
            number = await handlers.answer_difficulty(command, uow, caller=caller)
        return {
            "difficulty_id": difficulty_id,
            "answered_by": body.answered_by,
            "answer_number": number,
        }

    return router
