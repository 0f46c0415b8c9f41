"""Import and export of the unit registry over HTTP (the file format is described in
:mod:`services.plans.handlers.unit_import`).

Include this router before the unit routes: ``GET /units/export`` would otherwise be taken
for ``GET /units/{code}`` of a unit coded "export".
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.plans.handlers import unit_import as handlers
from shared.auth import Role
from shared.dependencies import Uow, UowFactory
from shared.limits import allow_body
from shared.security import Caller
from shared.units import UnitCode

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MEDIA_TYPES = {
    "text/csv": handlers.FileFormat.CSV,
    "application/yaml": handlers.FileFormat.YAML,
    "application/x-yaml": handlers.FileFormat.YAML,
    "text/yaml": handlers.FileFormat.YAML,
}
EXPORT_MEDIA_TYPES = {
    handlers.FileFormat.CSV: "text/csv; charset=utf-8",
    handlers.FileFormat.YAML: "application/yaml; charset=utf-8",
}
_CSV_EXAMPLE = """\
code,name,kind,parent_code,reports_to_code,focal_email,tags
T89,Ủy ban nhân dân tỉnh An Bình,province,,,,
SNV,Sở Nội vụ,department,T89,,vanphong@snv.anbinh.demo.gov.vn,
X30337,Ủy ban nhân dân xã Mỹ Hòa Hưng,commune,T89,SNV,vanphong@myhoahung.demo.gov.vn,bien_gioi
"""
_YAML_EXAMPLE = """\
- {code: T89, name: Ủy ban nhân dân tỉnh An Bình, kind: province}
- {code: SNV, name: Sở Nội vụ, kind: department, parent_code: T89}
- code: X30337
  name: Ủy ban nhân dân xã Mỹ Hòa Hưng
  kind: commune
  parent_code: T89
  reports_to_code: SNV
  contacts: {focal_email: vanphong@myhoahung.demo.gov.vn}
  tags: [bien_gioi]
"""
_TEXT = {"type": "string"}
_ERROR_EXAMPLE = {
    "error": {
        "message": "1 error in the file; nothing was imported",
        "errors": [{"line": 3, "field": "kind", "message": "unknown kind 'xa'; known: …"}],
    }
}


class ImportCountsOut(BaseModel):
    created: int
    updated: int
    unchanged: int


class TooLarge(Exception):
    pass


def _error(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status_code)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it grows past ``limit`` (a Content-Length may lie or be
    absent with chunked encoding)."""
    allow_body(request, limit)  # a registry file is larger than a command body
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


router = APIRouter(tags=["units"])


@router.post(
    "/units/import",
    response_model=ImportCountsOut,
    summary="Import units from a CSV or YAML file, all or nothing",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": _TEXT, "example": _CSV_EXAMPLE},
                "application/yaml": {"schema": _TEXT, "example": _YAML_EXAMPLE},
            },
        }
    },
    responses={
        413: {"description": f"The file is larger than {MAX_IMPORT_BYTES} bytes."},
        415: {"description": "Neither text/csv nor application/yaml."},
        422: {
            "description": "Every bad row, by line; nothing was imported.",
            "content": {"application/json": {"example": _ERROR_EXAMPLE}},
        },
    },
)
async def import_units(request: Request, caller: Caller, uows: UowFactory) -> Any:
    caller.require(Role.ADMINISTRATOR)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    file_format = MEDIA_TYPES.get(media_type)
    if file_format is None:
        return _error("send the file as text/csv or application/yaml", 415)
    try:
        data = await _read_body(request, MAX_IMPORT_BYTES)
    except TooLarge:
        megabytes = MAX_IMPORT_BYTES // (1024 * 1024)
        message = f"the file is larger than {megabytes} MB; split it, or use qcdc units import"
        return _error(message, 413)
    try:
        parsed = handlers.parse_file(handlers.decode(data), file_format)
        async with uows() as uow:  # once the file is read and parsed
            counts = await handlers.import_units(parsed, uow)
    except handlers.ImportRefused as exc:
        return JSONResponse(exc.as_json(), status_code=exc.status_code)
    return ImportCountsOut(
        created=counts.created, updated=counts.updated, unchanged=counts.unchanged
    )


@router.get(
    "/units/export",
    summary="Export the registry, or a subtree, in the import format",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {"schema": _TEXT}, "application/yaml": {"schema": _TEXT}}},
    },
)
async def export_units(
    file_format: handlers.FileFormat = Query(handlers.FileFormat.CSV, alias="format"),
    under: UnitCode | None = Query(None, description="Only this unit and its subtree."),
    *,
    uow: Uow,
) -> Response:
    text = await handlers.export_units(uow, file_format, under)
    name = f"units-{under}.{file_format.value}" if under else f"units.{file_format.value}"
    return Response(
        text,
        media_type=EXPORT_MEDIA_TYPES[file_format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
