"""HTTP API of the plans service: parse the request, call a handler, shape the answer.

Each module defines its routes at module level on its own ``router``; what a route depends
on (unit of work, caller) it declares as arguments (:mod:`shared.dependencies`)."""

from __future__ import annotations

from fastapi import APIRouter

from services.plans.entrypoints.http import plans, requests, tokens, unit_import, units
from shared.runtime import Runtime


def build_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    # unit_import before units: /units/import and /units/export before /units/{code}
    for module in (unit_import, units, plans, requests, tokens):
        router.include_router(module.router)
    return router
