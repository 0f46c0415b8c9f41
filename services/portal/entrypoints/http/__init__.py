"""The portal's web app: server-rendered pages, the static assets it serves itself, and the
error pages. Built from settings by :func:`create_portal_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.portal.adapters.api import ApiError, ServiceApi
from services.portal.adapters.cookies import SESSION_COOKIE, SessionCodec, portal_key
from services.portal.adapters.live import BusFeed, LiveHub
from services.portal.adapters.oidc import OidcClient
from services.portal.domain.entry import refusal_message
from services.portal.entrypoints.http import (
    auth,
    board,
    conferences,
    oversight,
    public,
    reports,
    work,
)
from services.portal.entrypoints.http.common import (
    CsrfRefused,
    Portal,
    PortalParts,
    SignInRequired,
    redirect,
    render,
    sign_in_url,
)
from services.portal.settings import PortalSettings
from shared.http import CorrelationIds

log = structlog.get_logger(__name__)
STATIC = Path(__file__).resolve().parents[2] / "static"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_portal_app(
    settings: PortalSettings, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    hub = LiveHub()
    api = ServiceApi(settings, transport)
    parts = Portal(
        settings=settings,
        api=api,
        codec=SessionCodec(portal_key(settings), int(settings.session_hours * 3600)),
        hub=hub,
        feed=BusFeed(settings, hub),
        oidc=OidcClient(settings, api.client),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await parts.feed.start()
        log.info("portal started", plans=settings.plans_url, reports=settings.reports_url)
        try:
            yield
        finally:
            await parts.feed.stop()
            await parts.api.close()

    app = FastAPI(
        title="QCDC portal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.portal = parts
    app.add_middleware(CorrelationIds, service="portal")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: object) -> Response:
        response: Response = await call_next(request)  # type: ignore[operator]
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.mount("/tinh", StaticFiles(directory=STATIC), name="static")
    for module in (auth, reports, board, public, work, conferences, oversight):
        app.include_router(module.router)
    _error_pages(app)

    app.include_router(health)
    return app


health = APIRouter(include_in_schema=False)


# The portal owns no state: it is ready when it answers. Its live feed connects in the
# background, so a bus that is away only pauses the board's live updates (said here).
@health.get("/livez")
@health.get("/readyz")
@health.get("/healthz")
async def healthz(parts: PortalParts) -> JSONResponse:
    return JSONResponse({"service": "portal", "nats": "ok" if parts.feed.connected else "down"})


def _error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in_required(_request: Request, exc: SignInRequired) -> Response:
        return redirect(sign_in_url(exc.next_path))

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _exc: CsrfRefused) -> Response:
        message = (
            "Biểu mẫu đã hết hạn hoặc không đến từ trang này (mã chống giả mạo không khớp). "
            "Vui lòng tải lại trang và gửi lại."
        )
        return render(request, "error.html.j2", {"message": message}, status=403)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        if exc.status == 401:
            # The credential expired or was revoked: sign in again.
            response = redirect(sign_in_url(request.url.path))
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        message = refusal_message(exc.status, exc.message)
        status = exc.status if exc.status in (403, 404, 409, 422, 503) else 502
        if exc.status == 503 and exc.message:
            message = exc.message
        return render(request, "error.html.j2", {"message": message}, status=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "Không tìm thấy trang này." if exc.status_code == 404 else str(exc.detail)
        return render(request, "error.html.j2", {"message": message}, status=exc.status_code)
