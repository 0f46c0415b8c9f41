"""HTTP API of the reports service: parse the request, call a handler, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from services.reports.entrypoints.http import inspections
from services.reports.entrypoints.http.conferences import router as conference_router
from services.reports.entrypoints.http.consolidations import consolidation_routes
from services.reports.entrypoints.http.recommendations import recommendation_routes
from services.reports.entrypoints.http.reports import report_routes
from shared.runtime import Runtime


def build_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    router.include_router(report_routes(runtime))
    router.include_router(consolidation_routes(runtime))
    router.include_router(recommendation_routes(runtime))
    router.include_router(inspections.router)
    router.include_router(conference_router)
    return router
