"""HTTP API of inspections and surveys: schedule, record findings, follow the actions up."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from services.reports.domain.inspections import (
    Action,
    ActionStatus,
    FindingInput,
    InspectedUnit,
    Inspection,
    RequiredAction,
)
from services.reports.entrypoints.dependencies import Settings
from services.reports.entrypoints.http.bodies import command_of, refusing_extra
from services.reports.handlers import inspections as handlers
from services.reports.handlers.clock import rules_from
from shared.dependencies import Uow, UowFactory
from shared.events import InspectionKind
from shared.limits import Identifier
from shared.mapping import shown
from shared.security import Caller
from shared.units import NfcName, NfcText, UnitCode

router = APIRouter(tags=["inspections"])

TOPIC = "Kiểm tra việc thực hiện Quy chế dân chủ ở cơ sở năm 2023"


class ScheduleInspectionIn(BaseModel):
    model_config = refusing_extra(
        {
            "kind": "inspection",
            "topic": TOPIC,
            "inspecting_unit": "H886",
            "inspected_units": ["X30337", "X30338"],
            "planned_start": "2026-09-07",
            "planned_end": "2026-09-18",
            "plan_id": "kh-qcdc-2026",
        }
    )

    kind: InspectionKind = Field(description="inspection (kiểm tra) or survey (khảo sát).")
    topic: NfcName = Field(min_length=1, max_length=512)
    inspected_units: list[UnitCode] = Field(min_length=1, max_length=500)
    planned_start: date
    planned_end: date
    inspecting_unit: UnitCode | None = Field(
        None, description="The unit that inspects; the caller's unit when left out."
    )
    plan_id: Identifier | None = Field(None, description="The plan the inspection carries out.")


class ActionIn(BaseModel):
    model_config = refusing_extra()

    content: NfcText = Field(min_length=1, max_length=5000)
    due_on: date = Field(description="The last day of the deadline (on time until its end).")


class FindingIn(BaseModel):
    model_config = refusing_extra()

    content: NfcText = Field(min_length=1, max_length=10000)
    actions: list[ActionIn] = Field(default_factory=list, max_length=50)


class FindingsIn(BaseModel):
    model_config = refusing_extra(
        {
            "inspected_unit": "X30337",
            "conducted_on": "2026-09-09",
            "conclusion": "Ủy ban nhân dân xã cơ bản thực hiện tốt Quy chế dân chủ; "
            "còn hạn chế về công khai tài chính.",
            "findings": [
                {
                    "content": "Chưa niêm yết công khai dự toán ngân sách xã tại "
                    "nhà văn hóa các thôn.",
                    "actions": [
                        {
                            "content": "Niêm yết công khai dự toán ngân sách xã tại 8/8 thôn.",
                            "due_on": "2026-10-15",
                        }
                    ],
                },
                {"content": "Hội nghị tiếp xúc cử tri tổ chức đúng quy định."},
            ],
        }
    )

    inspected_unit: UnitCode
    conducted_on: date = Field(description="The day the inspection of this unit concluded.")
    conclusion: NfcText = Field("", max_length=20000)
    findings: list[FindingIn] = Field(default_factory=list, max_length=100)


class FollowUpIn(BaseModel):
    model_config = refusing_extra(
        {
            "content": "Đã niêm yết công khai tại 8/8 thôn; biên bản niêm yết kèm theo.",
            "done": True,
        }
    )

    content: NfcText = Field(min_length=1, max_length=20000)
    done: bool = Field(False, description="The action is carried out: asks for its closing.")


class CloseActionIn(BaseModel):
    model_config = refusing_extra({"note": "Đã kiểm tra biên bản niêm yết; đạt yêu cầu."})

    note: NfcText = Field("", max_length=5000)


class ReturnActionIn(BaseModel):
    model_config = refusing_extra({"reason": "Biên bản niêm yết chưa có xác nhận của trưởng thôn."})

    reason: NfcText = Field(min_length=1, max_length=5000)


class StepOut(BaseModel):
    number: int
    kind: str
    text: str
    at: datetime
    by_unit: str
    done: bool


class ActionOut(BaseModel):
    id: str
    inspection_id: str
    inspected_unit: str
    inspecting_unit: str
    topic: str
    finding_number: int
    number: int
    content: str
    due_at: datetime
    obligation_id: str
    status: str
    done_reported_at: datetime | None
    closed_at: datetime | None
    closed_on_time: bool | None
    history: list[StepOut]


class FindingOut(BaseModel):
    number: int
    content: str
    actions: list[ActionOut]


class InspectedUnitOut(BaseModel):
    code: str
    done: bool
    conducted_on: date | None
    conclusion: str
    findings: list[FindingOut]


class InspectionOut(BaseModel):
    id: str
    kind: str
    topic: str
    inspecting_unit: str
    planned_start: date
    planned_end: date
    plan_id: str | None
    registered_at: datetime
    units: list[InspectedUnitOut]


def _action_out(a: Action) -> ActionOut:
    return shown(ActionOut, a, inspected_unit=a.unit_code)


def _unit_out(u: InspectedUnit) -> InspectedUnitOut:
    findings = [
        shown(FindingOut, f, actions=[_action_out(a) for a in f.actions]) for f in u.findings
    ]
    return shown(InspectedUnitOut, u, findings=findings)


def _out(i: Inspection) -> InspectionOut:
    return shown(InspectionOut, i, units=[_unit_out(u) for u in i.units])


@router.post(
    "/inspections",
    status_code=status.HTTP_201_CREATED,
    response_model=InspectionOut,
    summary="Schedule an inspection or survey of units the inspecting unit has authority over",
)
async def schedule(
    body: ScheduleInspectionIn, caller: Caller, settings: Settings, uow: Uow
) -> InspectionOut:
    scheduled = command_of(
        handlers.ScheduleInspection, body, inspected_units=tuple(body.inspected_units)
    )
    found = await handlers.schedule_inspection(
        scheduled, uow, caller=caller, ownership=settings.ownership()
    )
    return _out(found)


@router.get(
    "/inspections",
    response_model=list[InspectionOut],
    summary="Inspections the caller may read, newest planned first",
)
async def listing(
    caller: Caller,
    uow: Uow,
    inspected_unit: Annotated[UnitCode | None, Query()] = None,
    inspecting_unit: Annotated[UnitCode | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[InspectionOut]:
    where = handlers.InspectionFilter(inspected_unit, inspecting_unit)
    found = await handlers.inspections_of(where, uow, caller=caller, limit=limit)
    return [_out(i) for i in found]


@router.get("/inspections/{inspection_id}", response_model=InspectionOut)
async def get(inspection_id: Identifier, caller: Caller, uow: Uow) -> InspectionOut:
    return _out(await handlers.inspection(inspection_id, uow, caller=caller))


@router.post(
    "/inspections/{inspection_id}/findings",
    status_code=status.HTTP_201_CREATED,
    response_model=InspectedUnitOut,
    summary="Record the findings at one inspected unit; each action opens a follow-up obligation",
)
async def findings(
    inspection_id: Identifier,
    body: FindingsIn,
    caller: Caller,
    settings: Settings,
    units_of_work: UowFactory,
) -> InspectedUnitOut:
    recorded = command_of(
        handlers.RecordFindings,
        body,
        inspection_id=inspection_id,
        findings=tuple(
            FindingInput(f.content, tuple(RequiredAction(a.content, a.due_on) for a in f.actions))
            for f in body.findings
        ),
    )
    async with units_of_work() as uow:
        await handlers.record_findings(recorded, uow, caller=caller, rules=rules_from(settings))
    async with units_of_work() as uow:
        found = await handlers.inspection(inspection_id, uow, caller=caller)
    return _unit_out(found.unit(body.inspected_unit))


@router.get(
    "/inspection-actions",
    response_model=list[ActionOut],
    summary="Required actions the caller may read, nearest deadline first (no history)",
)
async def action_listing(
    caller: Caller,
    uow: Uow,
    inspected_unit: Annotated[UnitCode | None, Query()] = None,
    inspecting_unit: Annotated[UnitCode | None, Query()] = None,
    status: Annotated[ActionStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[ActionOut]:
    where = handlers.InspectionFilter(inspected_unit, inspecting_unit, status)
    found = await handlers.actions_of(where, uow, caller=caller, limit=limit)
    return [_action_out(a) for a in found]


@router.get("/inspection-actions/{action_id}", response_model=ActionOut)
async def get_action(action_id: Identifier, caller: Caller, uow: Uow) -> ActionOut:
    return _action_out(await handlers.action(action_id, uow, caller=caller))


@router.post(
    "/inspection-actions/{action_id}/follow-ups",
    response_model=StepOut,
    summary="The inspected unit reports on an action; done=true asks for its closing",
)
async def follow_up(action_id: Identifier, body: FollowUpIn, caller: Caller, uow: Uow) -> StepOut:
    command = handlers.ReportFollowUp(action_id, body.content, body.done)
    return shown(StepOut, await handlers.report_follow_up(command, uow, caller=caller))


@router.post(
    "/inspection-actions/{action_id}/close",
    response_model=StepOut,
    summary="The inspecting unit closes an action reported done",
)
async def close(action_id: Identifier, body: CloseActionIn, caller: Caller, uow: Uow) -> StepOut:
    command = handlers.DecideAction(action_id, body.note)
    return shown(StepOut, await handlers.close_action(command, uow, caller=caller))


@router.post(
    "/inspection-actions/{action_id}/return",
    response_model=StepOut,
    summary="The inspecting unit returns an action reported done: it is open and urged again",
)
async def send_back(
    action_id: Identifier, body: ReturnActionIn, caller: Caller, uow: Uow
) -> StepOut:
    command = handlers.DecideAction(action_id, body.reason)
    return shown(StepOut, await handlers.return_action(command, uow, caller=caller))
