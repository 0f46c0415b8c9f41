"""HTTP API of staff conferences (hội nghị cán bộ, công chức, viên chức và người lao động):
record one, attach its minutes, and list where each unit stands."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from services.reports.domain.conferences import (
    Conference,
    ConferenceState,
    StateName,
)
from services.reports.entrypoints.dependencies import (
    Rules,
    Settings,
    Store,
    Uploaded,
    attachment_body,
)
from services.reports.entrypoints.http.bodies import command_of, refusing_extra
from services.reports.handlers import conferences as handlers
from services.reports.settings import ReportsSettings
from shared.dependencies import Uow
from shared.limits import Identifier
from shared.mapping import shown
from shared.security import Caller
from shared.units import UnitCode

router = APIRouter(tags=["conferences"])


class ConferenceIn(BaseModel):
    model_config = refusing_extra(
        {
            "plan_id": "pl-4f6c2a",
            "unit_code": "STP",
            "held_on": "2026-01-23",
            "participants": 42,
        }
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


def _out(c: Conference) -> ConferenceOut:
    return shown(ConferenceOut, c)


def _state_out(s: ConferenceState) -> ConferenceStateOut:
    o = s.obligation
    return shown(
        ConferenceStateOut,
        o,
        obligation_id=o.id,
        held_from=o.period_start,
        state=s.state,
        overdue=s.overdue,
        conference=_out(s.conference) if s.conference else None,
    )


@router.post(
    "/conferences",
    status_code=status.HTTP_201_CREATED,
    response_model=ConferenceOut,
    summary="Record that the unit held its annual staff conference; meets its obligation",
)
async def record(body: ConferenceIn, caller: Caller, settings: Settings, uow: Uow) -> ConferenceOut:
    recorded = command_of(handlers.RecordConference, body)
    found = await handlers.record(recorded, uow, caller=caller, ownership=settings.ownership())
    return _out(found)


@router.get(
    "/conferences",
    response_model=list[ConferenceStateOut],
    summary="Each unit's staff conference per plan: held on time, held late, missing, waived",
)
async def listing(
    caller: Caller,
    uow: Uow,
    plan_id: Annotated[Identifier | None, Query()] = None,
    unit: Annotated[UnitCode | None, Query()] = None,
    receiving_unit: Annotated[UnitCode | None, Query()] = None,
) -> list[ConferenceStateOut]:
    where = handlers.ConferenceFilter(plan_id, unit, receiving_unit)
    found = await handlers.states(where, uow, caller=caller)
    return [_state_out(s) for s in found]


@router.get("/conferences/{conference_id}", response_model=ConferenceOut)
async def get(conference_id: Identifier, caller: Caller, uow: Uow) -> ConferenceOut:
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
    caller: Caller,
    uploaded: Uploaded,
    rules: Rules,
    store: Store,
    uow: Uow,
) -> MinutesOut:
    command = uploaded.attached_to(conference_id)
    minutes = await handlers.attach_minutes(command, rules, store, uow, caller=caller)
    return shown(MinutesOut, minutes)


@router.get(
    "/conferences/{conference_id}/minutes/{minutes_id}",
    response_class=Response,
    summary="Download the minutes' file",
)
async def download_minutes(
    conference_id: Identifier, minutes_id: Identifier, caller: Caller, store: Store, uow: Uow
) -> Response:
    minutes, content = await handlers.minutes_file(
        conference_id, minutes_id, store, uow, caller=caller
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
