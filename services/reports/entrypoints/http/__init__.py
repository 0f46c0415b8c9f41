"""HTTP API of the reports service: parse the request, call a handler, shape the answer.

Each module defines its routes at module level on its own ``router``; what a route depends
on (unit of work, settings, caller) it declares as arguments (:mod:`shared.dependencies`,
:mod:`services.reports.entrypoints.dependencies`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from services.reports.entrypoints.http import consolidations, recommendations, reports
from services.reports.settings import ReportsSettings
from shared.runtime import Runtime


def build_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    for module in (reports, consolidations, recommendations):
        router.include_router(module.router)
    # The attachment types are this instance's settings: say them in its OpenAPI document
    # (on this app's copy of the route; the module's router is shared by every app).
    settings = runtime.settings
    assert isinstance(settings, ReportsSettings)
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == reports.ATTACHMENT_PATH:
            route.openapi_extra = reports.attachment_body(settings)
    return router
