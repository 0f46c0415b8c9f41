"""HTTP API for consolidations: the live one, its prefill, publishing, published versions.

Every view takes ``format=json`` (default), ``docx`` or ``xlsx``; documents come back as
attachments named after the receiving unit, the schedule key and the date (ICT), e.g.
``tong-hop_T89-SNV_six_month_20230612.docx``, with ``_v2`` for published version 2.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field

from services.reports.adapters.document_formats import DOCX_TYPE, XLSX_TYPE, Edition, Signer
from services.reports.domain.consolidation import (
    Consolidation,
    ConsolidationKey,
    Counts,
    Prefill,
    PublishedConsolidation,
    Rates,
)
from services.reports.entrypoints.dependencies import Settings
from services.reports.entrypoints.http.bodies import refusing_extra
from services.reports.handlers import consolidation as handlers
from shared.dependencies import Uow, UowFactory
from shared.limits import Identifier
from shared.mapping import shown
from shared.security import Caller
from shared.units import NfcName, NfcText, UnitCode
from shared.vntime import ICT

Format = Literal["json", "docx", "xlsx"]
Key = Annotated[Identifier, Field(max_length=64)]

DOCUMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or the DOCX / XLSX document when format asks for one",
        "content": {DOCX_TYPE: {}, XLSX_TYPE: {}},
    },
    404: {"description": "Unknown plan, schedule key or receiving unit"},
}


class KeyQuery(BaseModel):
    plan_id: Key
    schedule_key: Key
    receiving_unit: UnitCode

    def key(self) -> ConsolidationKey:
        return ConsolidationKey(self.plan_id, self.schedule_key, self.receiving_unit)


def key_query(
    plan_id: Annotated[Identifier, Query(max_length=64)],
    schedule_key: Annotated[Identifier, Query(max_length=64)],
    receiving_unit: UnitCode,
) -> ConsolidationKey:
    return ConsolidationKey(plan_id, schedule_key, receiving_unit)


def signer_query(
    signer_name: Annotated[NfcName, Query(max_length=128)] = "",
    signer_position: Annotated[NfcText, Query(max_length=128)] = "",
) -> Signer:
    """Who signs the DOCX; by default the title fits the receiving unit and the name is
    left for the signer to fill in. Both are printed in the document, which cannot hold
    control characters; the position may span two lines (a committee's "TM." title)."""
    return Signer(position=signer_position.strip(), name=signer_name.strip())


class PublishIn(KeyQuery):
    model_config = refusing_extra(
        {
            "plan_id": "pl-4f6c2a",
            "schedule_key": "six_month",
            "receiving_unit": "SNV",
            "published_by": "Trần Văn Minh, Phó Giám đốc Sở Nội vụ",
        }
    )

    published_by: NfcName = Field(
        min_length=1,
        max_length=256,
        description="Who publishes: the official's name or work e-mail, as the caller gives "
        "it. Kept with the version and shown with it; never put on the bus. The audit log "
        "records the credential that published.",
    )


class PublishedOut(BaseModel):
    id: str
    plan_id: str
    schedule_key: str
    receiving_unit: str
    version: int
    published_at: datetime
    published_by: str
    counts: Counts
    rates: Rates


class PublishedWithContent(PublishedOut):
    consolidation: dict[str, Any]


def _published_out(published: PublishedConsolidation) -> PublishedOut:
    return shown(
        PublishedOut,
        published,
        plan_id=published.key.plan_id,
        schedule_key=published.key.schedule_key,
        receiving_unit=published.key.receiving_unit,
        counts=published.consolidation.counts,
        rates=published.consolidation.rates,
    )


def _filename(consolidation: Consolidation, version: int | None, extension: str) -> str:
    day = consolidation.as_of.astimezone(ICT).strftime("%Y%m%d")
    stem = f"tong-hop_{consolidation.receiving_unit.code}_{consolidation.heading.schedule_key}"
    suffix = f"_v{version}" if version is not None else ""
    # Codes and keys are ASCII already; keep the header safe whatever they become.
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{stem}_{day}{suffix}.{extension}")


def json_response(consolidation: Consolidation) -> Response:
    """The consolidation as JSON, serialised by pydantic in one pass (``to_json`` and then
    ``json.dumps`` walk a nation's units twice, in Python)."""
    return Response(consolidation.model_dump_json(), media_type="application/json")


async def _document(
    consolidation: Consolidation, output: Format, signer: Signer, version: int | None = None
) -> Response:
    """The consolidation in the asked format. Rendering is CPU work: off the event loop."""
    if output == "docx":
        edition = Edition(version=version)
        from services.reports.adapters.documents import render_docx  # the writer, when asked

        body = await asyncio.to_thread(render_docx, consolidation, signer=signer, edition=edition)
        media_type = DOCX_TYPE
    else:
        from services.reports.adapters.documents import render_xlsx

        body = await asyncio.to_thread(render_xlsx, consolidation)
        media_type = XLSX_TYPE
    filename = _filename(consolidation, version, output)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=media_type, headers=headers)


router = APIRouter(tags=["consolidations"])


@router.get(
    "/consolidations",
    response_model=None,
    responses=DOCUMENT_RESPONSES,
    summary="The consolidation as it stands now (reports that arrived since are in it)",
)
async def current(
    key: Annotated[ConsolidationKey, Depends(key_query)],
    signer: Annotated[Signer, Depends(signer_query)],
    caller: Caller,
    uows: UowFactory,
    format: Format = "json",
) -> Response:
    # Its own unit of work, closed before the document is rendered.
    consolidation = await handlers.read_current(key, uows, caller=caller)
    if format == "json":
        return json_response(consolidation)
    return await _document(consolidation, format, signer)


@router.get(
    "/consolidations/prefill",
    response_model=Prefill,
    summary="Indicator totals and narratives to start the receiving unit's own report "
    "with (a district reporting its communes' totals upward)",
)
async def prefill(
    key: Annotated[ConsolidationKey, Depends(key_query)], caller: Caller, uows: UowFactory
) -> Prefill:
    return (await handlers.read_current(key, uows, caller=caller)).prefill


@router.post(
    "/consolidations/publish",
    status_code=status.HTTP_201_CREATED,
    response_model=PublishedOut,
    summary="Publish the consolidation as it stands as a new version: ConsolidationPublished "
    "(201); the latest version when nothing changed since it (200, no event)",
    responses={200: {"model": PublishedOut, "description": "Unchanged: the latest version"}},
)
async def publish(
    body: PublishIn, response: Response, caller: Caller, settings: Settings, uows: UowFactory
) -> PublishedOut:
    command = handlers.PublishConsolidation(body.key(), body.published_by, settings.scope)
    published = await handlers.publish_once(command, uows, caller=caller)
    if not published.created:
        response.status_code = status.HTTP_200_OK
    return _published_out(published)


@router.get(
    "/consolidations/published",
    response_model=list[PublishedOut],
    summary="Published versions, oldest first",
)
async def versions(
    key: Annotated[ConsolidationKey, Depends(key_query)],
    uow: Uow,
) -> list[PublishedOut]:
    found = await handlers.published_versions(key, uow)
    return [_published_out(p) for p in found]


@router.get(
    "/consolidations/published/{consolidation_id}",
    response_model=None,
    responses=DOCUMENT_RESPONSES,
    summary="One published version, exactly as published",
)
async def published(
    consolidation_id: Identifier,
    signer: Annotated[Signer, Depends(signer_query)],
    uows: UowFactory,
    format: Format = "json",
) -> Response:
    async with uows() as uow:
        found = await handlers.published_version(consolidation_id, uow)
    if format == "json":
        out = PublishedWithContent(
            **_published_out(found).model_dump(), consolidation=found.consolidation.to_json()
        )
        return Response(out.model_dump_json(), media_type="application/json")
    return await _document(found.consolidation, format, signer, found.version)
