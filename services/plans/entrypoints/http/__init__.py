"""HTTP API of the plans service: parse the request, call a handler, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from services.plans.entrypoints.http.plans import plan_routes
from services.plans.entrypoints.http.requests import request_routes
from services.plans.entrypoints.http.tokens import token_routes
from services.plans.entrypoints.http.unit_import import unit_import_routes
from services.plans.entrypoints.http.units import unit_routes
from shared.runtime import Runtime


def build_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    router.include_router(unit_import_routes(runtime))  # before /units/{code}
    router.include_router(unit_routes(runtime))
    router.include_router(plan_routes(runtime))
    router.include_router(request_routes(runtime))
    router.include_router(token_routes(runtime))
    return router
