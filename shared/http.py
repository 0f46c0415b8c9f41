"""What every service's HTTP app shares: lifespan, correlation ids, JSON errors, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Forbidden, Role, Unauthenticated
from shared.context import bind_correlation_id, new_correlation_id
from shared.db import SecurityTables
from shared.errors import Missing, Refused
from shared.limits import BodySizeLimit
from shared.runtime import Runtime
from shared.security import audit_forbidden, current_principal, find_audit
from shared.units import UnitCode

CORRELATION_HTTP_HEADER = "X-Correlation-Id"
log = structlog.get_logger(__name__)


class CorrelationIds:
    """ASGI middleware: every request carries a correlation id (the caller's
    ``X-Correlation-Id``, or a new one) into its logs and events, and back in the answer.

    Plain ASGI rather than ``@app.middleware("http")``, whose wrapper runs the app in a task
    of its own and re-streams every response: a cost on each request of a busy intake."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(service=self.service)
        given = Headers(scope=scope).get(CORRELATION_HTTP_HEADER)
        correlation_id = (given or new_correlation_id())[:128]
        bind_correlation_id(correlation_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HTTP_HEADER] = correlation_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(
    runtime: Runtime, *, title: str, description: str, version: str = "1.0.0"
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if runtime.settings.auth == "open":
            log.warning("QCDC_AUTH=open: the API requires no token (development only)")
        async with runtime.running():
            yield

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.runtime = runtime
    # Added before the correlation middleware, so it runs inside it: a 413 carries the id.
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)

    app.add_middleware(CorrelationIds, service=runtime.service)

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(_request: Request, exc: Unauthenticated) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": exc.reason}},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        await audit_forbidden(runtime, request, exc.message)
        return JSONResponse({"error": {"message": exc.message}}, status_code=403)

    @app.exception_handler(Refused)
    async def refused(_request: Request, exc: Refused) -> JSONResponse:
        detail: dict[str, Any] = {"message": exc.message}
        if exc.field:
            detail["field"] = exc.field
        if exc.errors:
            detail["errors"] = exc.errors
        return JSONResponse({"error": detail}, status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": str(exc.detail)}},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DBAPIError)
    async def database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        if not exc.connection_invalidated:
            raise exc
        # The database restarted under a pooled connection; the pool is renewed already.
        return JSONResponse(
            {"error": {"message": "the database connection was reset; please retry"}},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Missing)
    async def missing(_request: Request, exc: Missing) -> JSONResponse:
        return JSONResponse({"error": {"message": exc.message}}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}
            for err in exc.errors()
        ]
        return JSONResponse(
            {"error": {"message": "the request is not valid", "errors": errors}},
            status_code=422,
        )

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        nats_ok = runtime.broker.connection.is_connected
        body = {"service": runtime.service, "database": "ok", "nats": "ok" if nats_ok else "down"}
        return JSONResponse(body, status_code=200)

    return app


def audit_routes(runtime: Runtime, security: SecurityTables) -> APIRouter:
    router = APIRouter(tags=["audit"])

    @router.get(
        "/whoami",
        tags=["security"],
        summary="The caller, as this service sees it: unit and role of the token (the "
        "portal reads it at sign-in); unit * in the open development mode",
    )
    async def whoami() -> dict[str, Any]:
        principal = current_principal()
        return {
            "unit_code": principal.unit_code,
            "unit_path": list(principal.unit_path),
            "role": principal.role.value,
            "token_id": principal.token_id,
        }

    @router.get("/audit", summary="Who did what, and every refusal (administrators)")
    async def audit_log(
        unit: UnitCode | None = None,
        action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
        outcome: Annotated[str | None, Query(pattern="^(done|forbidden|unauthenticated)$")] = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        current_principal().require(Role.ADMINISTRATOR)
        async with runtime.uow() as uow:
            return await find_audit(
                uow.session,
                security,
                unit=unit,
                action=action,
                outcome=outcome,
                since=since,
                limit=limit,
            )

    return router


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run the app (and with it, through its lifespan, the service's bus runtime)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
