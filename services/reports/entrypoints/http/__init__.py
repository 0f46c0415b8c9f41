"""HTTP API of the reports service: parse the request, call a handler, shape the answer.

Each module defines its routes at module level on its own ``router``; what a route depends
on (unit of work, settings, caller) it declares as arguments (:mod:`shared.dependencies`,
:mod:`services.reports.entrypoints.dependencies`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.reports.entrypoints.dependencies import attachment_body
from services.reports.entrypoints.http import (
    conferences,
    consolidations,
    inspections,
    recommendations,
    reports,
)
from services.reports.settings import ReportsSettings
from shared.runtime import Runtime


def build_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    for module in (reports, consolidations, recommendations, inspections, conferences):
        router.include_router(module.router)
    return router


def refine_openapi(document: dict[str, Any], settings: Any) -> None:
    """The attachment types are this instance's settings: say them in its document (the
    module-level routes, a report's attachments and a conference's minutes, say the
    defaults)."""
    assert isinstance(settings, ReportsSettings)
    for path in (reports.ATTACHMENT_PATH, conferences.MINUTES_PATH):
        operation = document["paths"][path]["put"]
        operation["requestBody"] = attachment_body(settings)["requestBody"]
