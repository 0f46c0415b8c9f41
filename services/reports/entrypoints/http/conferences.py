"""HTTP API of staff conferences (hội nghị cán bộ, công chức, viên chức và người lao động):
record one, attach its minutes, and list where each unit stands."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from services.reports.adapters.storage import AttachmentStore
from services.reports.domain.conferences import (
    Conference,
    ConferenceState,
    Minutes,
    StateName,
)
from services.reports.entrypoints.http.reports import _read_limited, attachment_body
from services.reports.handlers import conferences as handlers
from services.reports.handlers.intake import Attach, AttachmentRules
from services.reports.settings import ReportsSettings
from shared.dependencies import RuntimeDep
from shared.limits import Identifier
from shared.runtime import Runtime
from shared.security import Caller
from shared.units import UnitCode

router = APIRouter(tags=["conferences"])


class ConferenceIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "plan_id": "pl-4f6c2a",
                    "unit_code": "STP",
                    "held_on": "2026-01-23",
                    "participants": 42,
                }
            ]
        },
    )

    plan_id: Identifier = Field(description="The plan that asks for the conference.")
    unit_code: UnitCode = Field(description="The unit that held it.")
    held_on: date = Field(description="Day the conference was held (Vietnam time).")
    participants: int | None = Field(
        None, ge=1, le=100000, description="How many took part (optional)."
    )


class MinutesOut(BaseModel):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    attached_at: datetime


class ConferenceOut(BaseModel):
    id: str
    obligation_id: str
    plan_id: str
    unit_code: str
    receiving_unit: str
    held_on: date
    participants: int | None
    on_time: bool
    recorded_at: datetime
    recorded_by_unit: str
    minutes: list[MinutesOut]


class ConferenceStateOut(BaseModel):
    """One unit's conference for one plan: held (on time or late), missing or waived."""

    obligation_id: str
    plan_id: str
    plan_doc_number: str
    unit_code: str
    unit_path: list[str]
    receiving_unit: str
    held_from: date
    due_at: datetime
    state: StateName
    overdue: bool = Field(description="Missing and its deadline has passed.")
    conference: ConferenceOut | None


def _minutes_out(m: Minutes) -> MinutesOut:
    return MinutesOut(
        id=m.id,
        filename=m.filename,
        content_type=m.content_type,
        size=m.size,
        sha256=m.sha256,
        attached_at=m.attached_at,
    )


def _out(c: Conference) -> ConferenceOut:
    return ConferenceOut(
        id=c.id,
        obligation_id=c.obligation_id,
        plan_id=c.plan_id,
        unit_code=c.unit_code,
        receiving_unit=c.receiving_unit,
        held_on=c.held_on,
        participants=c.participants,
        on_time=c.on_time,
        recorded_at=c.recorded_at,
        recorded_by_unit=c.recorded_by_unit,
        minutes=[_minutes_out(m) for m in c.minutes],
    )


def _state_out(s: ConferenceState) -> ConferenceStateOut:
    o = s.obligation
    return ConferenceStateOut(
        obligation_id=o.id,
        plan_id=o.plan_id,
        plan_doc_number=o.plan_doc_number,
        unit_code=o.unit_code,
        unit_path=list(o.unit_path),
        receiving_unit=o.receiving_unit,
        held_from=o.period_start,
        due_at=o.due_at,
        state=s.state,
        overdue=s.overdue,
        conference=_out(s.conference) if s.conference else None,
    )


def _settings(runtime: Runtime) -> ReportsSettings:
    settings = runtime.settings
    assert isinstance(settings, ReportsSettings)
    return settings


def _store(settings: ReportsSettings) -> AttachmentStore:
    return AttachmentStore(Path(settings.data_dir) / "attachments")


@router.post(
    "/conferences",
    status_code=status.HTTP_201_CREATED,
    response_model=ConferenceOut,
    summary="Record that the unit held its annual staff conference; meets its obligation",
)
async def record(body: ConferenceIn, runtime: RuntimeDep, caller: Caller) -> ConferenceOut:
    command = handlers.RecordConference(
        plan_id=body.plan_id,
        unit_code=body.unit_code,
        held_on=body.held_on,
        participants=body.participants,
    )
    async with runtime.uow() as uow:
        found = await handlers.record(
            command, uow, caller=caller, ownership=_settings(runtime).ownership()
        )
    return _out(found)


@router.get(
    "/conferences",
    response_model=list[ConferenceStateOut],
    summary="Each unit's staff conference per plan: held on time, held late, missing, waived",
)
async def listing(
    runtime: RuntimeDep,
    caller: Caller,
    plan_id: Annotated[Identifier | None, Query()] = None,
    unit: Annotated[UnitCode | None, Query()] = None,
    receiving_unit: Annotated[UnitCode | None, Query()] = None,
) -> list[ConferenceStateOut]:
    async with runtime.uow() as uow:
        found = await handlers.states(
            uow, caller=caller, plan_id=plan_id, unit_code=unit, receiving_unit=receiving_unit
        )
    return [_state_out(s) for s in found]


@router.get("/conferences/{conference_id}", response_model=ConferenceOut)
async def get(conference_id: Identifier, runtime: RuntimeDep, caller: Caller) -> ConferenceOut:
    async with runtime.uow() as uow:
        return _out(await handlers.conference(conference_id, uow, caller=caller))


MINUTES_PATH = "/conferences/{conference_id}/minutes/{filename}"


@router.put(
    MINUTES_PATH,
    status_code=status.HTTP_201_CREATED,
    response_model=MinutesOut,
    summary="Attach the conference's minutes (biên bản): the raw bytes as the body",
    openapi_extra=attachment_body(ReportsSettings.model_construct()),
)
async def attach_minutes(
    conference_id: Identifier,
    filename: str,
    request: Request,
    runtime: RuntimeDep,
    caller: Caller,
) -> MinutesOut:
    settings = _settings(runtime)
    rules = AttachmentRules(settings.attachment_max_bytes, tuple(settings.attachment_types))
    content = await _read_limited(request, rules.max_bytes)
    command = Attach(
        report_id=conference_id,
        filename=filename,
        content_type=request.headers.get("content-type", "").split(";")[0].strip(),
        content=content,
    )
    async with runtime.uow() as uow:
        minutes = await handlers.attach_minutes(
            command, rules, _store(settings), uow, caller=caller
        )
    return _minutes_out(minutes)


@router.get(
    "/conferences/{conference_id}/minutes/{minutes_id}",
    response_class=Response,
    summary="Download the minutes' file",
)
async def download_minutes(
    conference_id: Identifier, minutes_id: Identifier, runtime: RuntimeDep, caller: Caller
) -> Response:
    async with runtime.uow() as uow:
        minutes, content = await handlers.minutes_file(
            conference_id, minutes_id, _store(_settings(runtime)), uow, caller=caller
        )
    return Response(
        content,
        media_type=minutes.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quoted(minutes.filename)}"
        },
    )


def _quoted(name: str) -> str:
    return quote(name)
