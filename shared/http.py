"""What every service's HTTP app shares: lifespan, correlation ids, JSON errors, health."""

from __future__ import annotations

import gc
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from types import FrameType
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn import config as uvicorn_config
from uvicorn import server as uvicorn_server

from shared import asyncapi, openapi
from shared.asgi import HttpMiddleware
from shared.auth import Forbidden, Role, Unauthenticated
from shared.context import bind_correlation_id, current_correlation_id, new_correlation_id
from shared.dependencies import RuntimeDep, Uow
from shared.errors import Missing, Refused
from shared.health import readiness
from shared.limits import BodySizeLimit
from shared.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from shared.metrics import HttpMetrics
from shared.outage import database_outage, outage_message
from shared.runtime import Runtime
from shared.security import (
    PUBLIC_PATHS,
    Authentication,
    Caller,
    audit_forbidden,
    find_audit,
)
from shared.settings import ServiceSettings
from shared.tracing import HttpTracing
from shared.units import UnitCode
from shared.vntime import ICT

CORRELATION_HTTP_HEADER = "X-Correlation-Id"
ASYNCAPI_MEDIA_TYPE = "application/yaml"
log = structlog.get_logger(__name__)


class CorrelationIds(HttpMiddleware):
    """ASGI middleware: every request carries a correlation id (the caller's
    ``X-Correlation-Id``, or a new one) into its logs and events, and back in the answer."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        super().__init__(app)
        self.service = service

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
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


class DatabaseOutage(HttpMiddleware):
    """ASGI middleware: a request that fails because the database is not there (stopped,
    restarting, unreachable, out of connections: :func:`shared.outage.database_outage`)
    is answered 503 with ``Retry-After`` and the JSON error shape, on every route, whatever
    raised it (a handler, an authentication lookup, an error handler writing the audit
    log). Anything else is left to the server's 500. Plain ASGI for the reason given at
    :class:`CorrelationIds`; added inside it, so a 503 carries the correlation id."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch_start)
        except Exception as exc:
            retry_after = database_outage(exc)
            if retry_after is None or started:
                raise
            log.warning("database unavailable", path=scope.get("path"), error=repr(exc))
            await unavailable(retry_after)(scope, receive, send)


class Draining:
    """ASGI middleware: once the service is stopping (:meth:`Runtime.begin_draining`), every
    request is answered 503 with ``Retry-After`` and ``Connection: close`` before anything
    runs, so nothing new is accepted that the stop could cut short; requests already
    running finish. The client retries (a submission with the same ``Idempotency-Key``)
    and reaches another replica, or this one once restarted."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.runtime.draining:
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": {"message": "the service is stopping; please retry shortly"}},
            status_code=503,
            headers={"Retry-After": "1", "Connection": "close"},
        )
        await response(scope, receive, send)


def unavailable(retry_after: int) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": outage_message(retry_after)}},
        status_code=503,
        headers={"Retry-After": str(retry_after)},
    )


YOUNG_OBJECTS_BEFORE_COLLECTION = 10_000
"""The collector's first threshold, once started (Python's default: 700): a submission
leaves thousands of short-lived objects, nearly all freed by their references going."""


def freeze_start_up_objects() -> None:
    """Keep what start-up made (modules, the app, tables, models: hundreds of thousands of
    objects that live as long as the process) out of every later collection, which walked
    them all again, and collect the young generation less often. During bench.pipeline's
    burst the collector took 0.27 s of reports' 4.2 s of CPU and 0.13 s of notify's 7.0 s;
    after this 0.008 and 0.014 s (gc.callbacks, 2026-11-29)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS_BEFORE_COLLECTION, middle, old)


def create_app(
    runtime: Runtime, *, title: str, description: str, version: str = "1.0.0"
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if runtime.settings.auth == "open":
            log.warning(
                "QCDC_AUTH=open: OPEN API, no token needed, every caller is an administrator "
                "of everything (qcdc up, development only)"
            )
        async with runtime.running():
            yield

    # /docs is served by shared.openapi from vendored files (no CDN); no ReDoc.
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    openapi.install(app, PUBLIC_PATHS)
    app.state.runtime = runtime
    # Middlewares run outermost last-added: correlation ids, database outages (503), then
    # authentication (before anything reads the body, so no token means 401 whatever the
    # body), then the size cap.
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)
    app.add_middleware(Authentication, runtime=runtime)
    # Outside authentication: a token lookup that meets a database outage is a 503 too.
    app.add_middleware(DatabaseOutage)
    # Outside the rest: a stopping service refuses a request before anything reads it.
    app.add_middleware(Draining, runtime=runtime)
    app.add_middleware(CorrelationIds, service=runtime.service)
    # Outermost: every answer is counted and timed, 401s and 503s included; the route
    # template is known once the router has run.
    app.add_middleware(HttpMetrics, metrics=runtime.metrics)
    assert runtime.tracing is not None
    if runtime.tracing.enabled:
        app.add_middleware(HttpTracing, tracer=runtime.tracing.tracer)

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

    @app.exception_handler(Missing)
    async def missing(_request: Request, exc: Missing) -> JSONResponse:
        return JSONResponse({"error": {"message": exc.message}}, status_code=404)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, _exc: Exception) -> JSONResponse:
        # Starlette's outermost middleware calls this for any fault nothing else handled,
        # then re-raises it for the server's log: the caller gets the error shape and the
        # id the log has, instead of plain text.
        correlation_id = current_correlation_id()
        message = f"internal error; the service logged it under correlation id {correlation_id}"
        return JSONResponse(
            {"error": {"message": message}},
            status_code=500,
            headers={CORRELATION_HTTP_HEADER: correlation_id},
        )

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

    app.include_router(operations)
    return app


operations = APIRouter(tags=["operations"])
"""Every service's own routes: its contracts, liveness, readiness and metrics."""


@operations.get(
    "/asyncapi.yaml",
    summary="The bus contract as an AsyncAPI 3.0 document (public, like /openapi.json)",
    response_class=Response,
    responses={200: {"content": {ASYNCAPI_MEDIA_TYPE: {}}}},
)
async def asyncapi_document() -> Response:
    return Response(asyncapi.served(), media_type=ASYNCAPI_MEDIA_TYPE)


@operations.get("/livez")
async def livez(runtime: RuntimeDep) -> dict[str, str]:
    """The process answers (restart it if this fails); says nothing of its parts."""
    return {"service": runtime.service, "status": "alive"}


@operations.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready for work: the database answers and is migrated to head, NATS is
    connected, the streams and this service's durable consumers exist. 503 with the
    reasons otherwise (the service keeps accepting what it can meanwhile: submissions
    wait in the outbox while NATS is away)."""
    found = await readiness(runtime)
    headers = {"Retry-After": str(found.retry_after)} if found.retry_after else None
    status = 200 if found.ready else 503
    return JSONResponse(found.body(runtime.service), status_code=status, headers=headers)


# The older name of /readyz, kept for probes configured with it.
operations.add_api_route("/healthz", readyz, methods=["GET"])


@operations.get(
    "/metrics",
    summary="Prometheus metrics of this service process",
    response_class=Response,
    responses={200: {"content": {METRICS_CONTENT_TYPE: {}}}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    connected = runtime.broker.connection.is_connected
    jetstream = runtime.jetstream() if connected else None
    await runtime.metrics.refresh(
        engine=runtime.engine,
        outbox=runtime.messaging.outbox,
        now=runtime.now_clock.now(),
        jetstream=jetstream,
        durables=runtime.durables,
    )
    return Response(runtime.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)


audit_api = APIRouter(tags=["audit"])
"""Who the caller is, and the audit log: for services whose API requires authentication."""


@audit_api.get(
    "/whoami",
    tags=["security"],
    summary="The caller, as this service sees it: unit and role of the token (the "
    "portal reads it at sign-in); unit * in the open development mode",
)
async def whoami(principal: Caller) -> dict[str, Any]:
    return {
        "unit_code": principal.unit_code,
        "unit_path": list(principal.unit_path),
        "role": principal.role.value,
        "token_id": principal.token_id,
    }


@audit_api.get("/audit", summary="Who did what, and every refusal (administrators)")
async def audit_log(
    unit: UnitCode | None = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
    outcome: Annotated[str | None, Query(pattern="^(done|forbidden|unauthenticated)$")] = None,
    since: Annotated[
        datetime | None,
        Query(description="From this instant; without a UTC offset, in Vietnam time."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    *,
    caller: Caller,
    uow: Uow,
) -> list[dict[str, Any]]:
    caller.require(Role.ADMINISTRATOR)
    if since is not None and since.tzinfo is None:
        # An official types a date or a local time; the log's instants are aware.
        since = since.replace(tzinfo=ICT)
    assert uow.security is not None  # the router is included only where it is
    return await find_audit(
        uow.session,
        uow.security,
        unit=unit,
        action=action,
        outcome=outcome,
        since=since,
        limit=limit,
    )


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run the app (and with it, through its lifespan, the service's bus runtime) until
    SIGTERM or SIGINT, then drain: see :mod:`shared.runtime`. An app without a runtime
    (``app.state.runtime``) stops as uvicorn does, with the same bound for its requests."""
    import uvicorn

    runtime: Runtime | None = getattr(app.state, "runtime", None)
    settings = runtime.settings if runtime is not None else ServiceSettings()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # Requests in flight get a quarter of the stop's bound; the rest is the runtime's.
        timeout_graceful_shutdown=max(1, round(settings.stop_timeout_seconds / 4)),
    )
    DrainingServer(config, runtime).run()


class DrainingServer(uvicorn_server.Server):
    """uvicorn's server, but the stop signal first marks the runtime as draining (every new
    request: 503) and the process then exits with 0 once drained, rather than re-raising
    the signal when done (uvicorn's way, which ends it as killed by SIGTERM). A second
    SIGINT forces the exit, as in uvicorn."""

    def __init__(self, config: uvicorn_config.Config, runtime: Runtime | None) -> None:
        super().__init__(config)
        self.runtime = runtime

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        freeze_start_up_objects()  # the process's own objects: not in an app of a test

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
            return
        if self.runtime is not None:
            self.runtime.begin_draining()
        self.should_exit = True
