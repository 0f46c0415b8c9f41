"""HTTP API of the plans service: parse the request, call a handler, shape the answer."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from services.plans import handlers
from services.plans.adapters.db import PlanRepository, UnitRepository
from services.plans.domain.plans import AssigneeRule, Plan, PlanRefused, ScheduleEntry
from services.plans.domain.units import Unit, UnitRefused
from shared.events import Contacts, ContentArea, ReportKind
from shared.http import DomainError, NotFound, Unprocessable
from shared.runtime import Runtime
from shared.units import NfcText, UnitCode


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactsIn(Strict):
    focal_email: str | None = Field(None, max_length=256)
    head_email: str | None = Field(None, max_length=256)
    webhook_url: str | None = Field(None, max_length=2048)


class UnitIn(Strict):
    code: UnitCode
    name: NfcText = Field(min_length=1, max_length=256)
    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")
    parent_code: UnitCode | None = None
    reports_to_code: UnitCode | None = None
    contacts: ContactsIn = Field(default_factory=ContactsIn)


class UnitOut(BaseModel):
    code: str
    name: str
    kind: str
    path: list[str]
    parent_code: str | None
    reports_to_code: str | None
    contacts: Contacts
    active: bool


class ContentAreaIn(Strict):
    code: str = Field(min_length=1, max_length=16)
    title: NfcText = Field(min_length=1, max_length=1000)


class AssigneesIn(Strict):
    kinds: list[str] = Field(default_factory=list)
    subtrees: list[UnitCode] = Field(default_factory=list)
    units: list[UnitCode] = Field(default_factory=list)


class ScheduleEntryIn(Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")
    kind: ReportKind
    title: NfcText = ""
    period_start: date
    period_end: date
    due_before: date = Field(description="The plan's 'before <date>': due by the day before.")
    receiving_unit: UnitCode


class PlanIn(Strict):
    doc_number: str = Field(min_length=1, max_length=64)
    title: NfcText = Field(min_length=1, max_length=1000)
    issuing_unit: UnitCode
    issued_on: date
    year: int = Field(ge=2000, le=2100)
    place: NfcText = ""
    content_areas: list[ContentAreaIn] = Field(default_factory=list)
    assignees: AssigneesIn
    schedule: list[ScheduleEntryIn] = Field(default_factory=list)


class PlanOut(BaseModel):
    id: str
    doc_number: str
    title: str
    issuing_unit: str
    issued_on: date
    year: int
    status: str
    assignees: list[str]


def _unit_out(unit: Unit) -> UnitOut:
    return UnitOut(
        code=unit.code,
        name=unit.name,
        kind=unit.kind,
        path=unit.path,
        parent_code=unit.parent_code,
        reports_to_code=unit.reports_to_code,
        contacts=unit.contacts,
        active=unit.active,
    )


def _plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.id,
        doc_number=plan.doc_number,
        title=plan.title,
        issuing_unit=plan.issuing_unit,
        issued_on=plan.issued_on,
        year=plan.year,
        status=plan.status.value,
        assignees=plan.assignees,
    )


def _refusal(exc: UnitRefused | PlanRefused) -> DomainError:
    if "already registered" in exc.message:
        from shared.http import Conflict

        return Conflict(exc.message, field=exc.field)
    return Unprocessable(exc.message, field=exc.field)


def build_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/units", status_code=status.HTTP_201_CREATED, response_model=UnitOut, tags=["units"]
    )
    async def register_unit(body: UnitIn) -> UnitOut:
        command = handlers.RegisterUnit(
            code=body.code,
            name=body.name,
            kind=body.kind,
            parent_code=body.parent_code,
            reports_to_code=body.reports_to_code,
            contacts=Contacts(**body.contacts.model_dump()),
        )
        try:
            async with runtime.uow() as uow:
                unit = await handlers.register_unit(command, uow)
        except UnitRefused as exc:
            raise _refusal(exc) from exc
        return _unit_out(unit)

    @router.get("/units", response_model=list[UnitOut], tags=["units"])
    async def list_units() -> list[UnitOut]:
        async with runtime.uow() as uow:
            registry = await UnitRepository(uow.session).all()
        return [_unit_out(u) for u in registry.values()]

    @router.get("/units/{code}", response_model=UnitOut, tags=["units"])
    async def get_unit(code: str) -> UnitOut:
        async with runtime.uow() as uow:
            unit = await UnitRepository(uow.session).get(code)
        if unit is None:
            raise NotFound(f"no unit {code}")
        return _unit_out(unit)

    @router.post(
        "/plans",
        status_code=status.HTTP_201_CREATED,
        response_model=PlanOut,
        tags=["plans"],
        summary="Create a plan as a draft",
    )
    async def draft_plan(body: PlanIn) -> PlanOut:
        command = handlers.DraftPlan(
            doc_number=body.doc_number,
            title=body.title,
            issuing_unit=body.issuing_unit,
            issued_on=body.issued_on,
            year=body.year,
            place=body.place,
            content_areas=tuple(
                ContentArea(code=a.code, title=a.title) for a in body.content_areas
            ),
            assignee_rule=AssigneeRule(
                kinds=tuple(body.assignees.kinds),
                subtrees=tuple(body.assignees.subtrees),
                units=tuple(body.assignees.units),
            ),
            schedule=tuple(ScheduleEntry(**entry.model_dump()) for entry in body.schedule),
        )
        try:
            async with runtime.uow() as uow:
                plan = await handlers.draft_plan(command, uow)
        except PlanRefused as exc:
            raise _refusal(exc) from exc
        return _plan_out(plan)

    @router.post(
        "/plans/{plan_id}/issue",
        response_model=PlanOut,
        tags=["plans"],
        summary="Issue a draft plan: expands its assignees and publishes PlanIssued",
    )
    async def issue_plan(plan_id: str) -> PlanOut:
        try:
            async with runtime.uow() as uow:
                plan = await handlers.issue_plan(plan_id, uow)
        except PlanRefused as exc:
            raise _refusal(exc) from exc
        except LookupError as exc:
            raise NotFound(f"no plan {plan_id}") from exc
        return _plan_out(plan)

    @router.get("/plans/{plan_id}", response_model=PlanOut, tags=["plans"])
    async def get_plan(plan_id: str) -> PlanOut:
        async with runtime.uow() as uow:
            plan = await PlanRepository(uow.session).get(plan_id)
        if plan is None:
            raise NotFound(f"no plan {plan_id}")
        return _plan_out(plan)

    return router
