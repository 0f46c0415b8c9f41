"""What every page shares: the portal's parts, the session, CSRF, rendering, errors."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.portal.adapters.api import ApiError, ServiceApi
from services.portal.adapters.cookies import CSRF_COOKIE, SESSION_COOKIE, SessionCodec
from services.portal.adapters.live import BusFeed, LiveHub
from services.portal.adapters.oidc import OidcClient
from services.portal.domain import inspections, labels
from services.portal.domain.session import Session
from services.portal.settings import PortalSettings

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))
# Starlette escapes only templates named *.html; ours are *.html.j2. Escape everything: the
# pages show what users typed (reasons, narratives, difficulties).
templates.env.autoescape = True
templates.env.globals.update(
    day=labels.day,
    moment=labels.moment,
    label=labels.label,
    ROLE_LABELS=labels.ROLE_LABELS,
    KIND_LABELS=labels.KIND_LABELS,
    REPORT_KIND_LABELS=labels.REPORT_KIND_LABELS,
    OBLIGATION_LABELS=labels.OBLIGATION_LABELS,
    REPORT_LABELS=labels.REPORT_LABELS,
    PLAN_LABELS=labels.PLAN_LABELS,
    DELIVERY_LABELS=labels.DELIVERY_LABELS,
    obligation_title=labels.obligation_title,
    work_link=inspections.work_link,
)


@dataclass
class Portal:
    """The portal's parts, built once per process (``app.state.portal``)."""

    settings: PortalSettings
    api: ServiceApi
    codec: SessionCodec
    hub: LiveHub
    feed: BusFeed
    oidc: OidcClient
    names: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Unit code → (name, until when it is kept)."""


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Exception):
    pass


def portal(request: Request) -> Portal:
    found: Portal = request.app.state.portal
    return found


PortalParts = Annotated[Portal, Depends(portal)]
"""A route's portal parts (API client, codec, live hub, settings) as a dependency."""


def session_or_none(request: Request) -> Session | None:
    return portal(request).codec.load(request.cookies.get(SESSION_COOKIE))


def signed_in(request: Request) -> Session:
    """FastAPI dependency: the session, or off to the sign-in page and back."""
    session = session_or_none(request)
    if session is None:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(wanted)
    return session


def expected_csrf(request: Request) -> str:
    """Signed in: the token inside the encrypted session. Before: the CSRF cookie's
    (double submit), which a page sets when it shows a form."""
    session = session_or_none(request)
    if session is not None:
        return session.csrf
    return request.cookies.get(CSRF_COOKIE, "") or getattr(request.state, "new_csrf", "")


async def checked_form(request: Request) -> dict[str, str]:
    """FastAPI dependency: the posted form, after its CSRF token matched."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    expected = expected_csrf(request)
    if not expected or not hmac.compare_digest(values.get("csrf", ""), expected):
        raise CsrfRefused()
    return values


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    session = session_or_none(request)
    new_csrf = ""
    if session is None and not request.cookies.get(CSRF_COOKIE):
        new_csrf = secrets.token_urlsafe(24)
        request.state.new_csrf = new_csrf
    values = {
        "session": session,
        "csrf": expected_csrf(request),
        "path": request.url.path,
        "names": getattr(request.state, "names", {}),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, values, status_code=status)
    if new_csrf:
        set_cookie(request, response, CSRF_COOKIE, new_csrf, strict=True)
    return response


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    strict: bool = False,
    max_age: int | None = None,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=portal(request).settings.secure_cookies(),
        httponly=True,
        samesite="strict" if strict else "lax",
    )


NAMES_KEPT_SECONDS = 300.0


async def learn_names(request: Request, token: str, codes: Iterable[str]) -> None:
    """Names of these units for the page (``names`` in templates), from the plans service,
    kept a few minutes per process: pages show names, not codes."""
    parts = portal(request)
    now = time.monotonic()
    wanted = {c for c in codes if c}
    missing = [c for c in wanted if parts.names.get(c, ("", 0.0))[1] < now]

    async def fetch(code: str) -> None:
        try:
            unit = await parts.api.get("plans", f"/units/{code}", token)
        except ApiError:
            return  # the code will do
        parts.names[code] = (str(unit["name"]), now + NAMES_KEPT_SECONDS)

    await asyncio.gather(*(fetch(c) for c in missing))
    request.state.names = {c: parts.names[c][0] for c in wanted if c in parts.names}


def redirect(path: str) -> RedirectResponse:
    """After a POST: 303, so that the browser GETs the result (no form re-sent on reload)."""
    return RedirectResponse(path, status_code=303)


def sign_in_url(next_path: str) -> str:
    return f"/dang-nhap?next={quote(next_path, safe='')}"


SignedIn = Annotated[Session, Depends(signed_in)]
"""A page's signed-in session (or off to the sign-in page and back)."""
Form = Annotated[dict[str, str], Depends(checked_form)]
"""A posted form whose CSRF token was checked."""
