"""The services' HTTP APIs, called with the signed-in user's own credential: whatever the
portal does, the owning service authorizes it as it would any other caller."""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
import structlog

from services.portal.settings import PortalSettings

Service = Literal["plans", "reports", "notify"]
KEEPALIVE_EXPIRY_S = 2.0
"""An idle connection is dropped well before the services' uvicorn closes it (its
``timeout_keep_alive``, 5 s): at httpx's default, also 5 s, a request could go out on a
connection the service was closing and fail with a ReadError ("not answering")."""
log = structlog.get_logger(__name__)


class ApiError(Exception):
    """A service refused or failed: its status and its JSON error (``{"message", …}``)."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status}: {error.get('message', '')}")
        self.status = status
        self.error = error

    @property
    def message(self) -> str:
        return str(self.error.get("message", ""))


class ServiceApi:
    """One pooled HTTP client for the three APIs (keep-alive connections, one timeout)."""

    def __init__(
        self, settings: PortalSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base = {
            "plans": settings.plans_url.rstrip("/"),
            "reports": settings.reports_url.rstrip("/"),
            "notify": settings.notify_url.rstrip("/"),
        }
        self.client = httpx.AsyncClient(
            timeout=settings.api_timeout_seconds,
            transport=transport,
            limits=httpx.Limits(
                max_connections=100,
                max_keepalive_connections=20,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def response(
        self,
        service: Service,
        method: str,
        path: str,
        token: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        if not _safe_path(path):
            # A page's path parameter ("..", "a?b" once decoded) must never steer the call.
            raise ApiError(404, {"message": "không tìm thấy"})
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = await self.client.request(
                method,
                self.base[service] + path,
                params={k: v for k, v in (params or {}).items() if v not in (None, "")},
                json=json,
                content=content,
                headers=sent,
            )
        except httpx.HTTPError as exc:
            log.warning("portal: a service did not answer", service=service, error=repr(exc))
            message = f"Hệ thống {service} tạm thời không trả lời; vui lòng thử lại sau."
            raise ApiError(503, {"message": message}) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _error_of(response))
        return response

    async def get(
        self, service: Service, path: str, token: str, params: dict[str, Any] | None = None
    ) -> Any:
        return (await self.response(service, "GET", path, token, params=params)).json()

    async def post(
        self,
        service: Service,
        path: str,
        token: str,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> Any:
        response = await self.response(service, "POST", path, token, json=body, headers=headers)
        return response.json()


_SEGMENT = re.compile(r"^[A-Za-z0-9_.%:-]{1,300}$")


def _safe_path(path: str) -> bool:
    """Plain segments only: no dot segments, no query or fragment smuggled into a segment."""
    segments = path.split("/")
    return path.startswith("/") and all(
        _SEGMENT.match(s) and s not in (".", "..") for s in segments[1:]
    )


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text[:500]}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {"message": str(body)[:500]}
