"""Sign-in with an API token, sign-out."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from services.portal.adapters.cookies import CSRF_COOKIE, OIDC_COOKIE, SESSION_COOKIE
from services.portal.adapters.oidc import OidcFailed
from services.portal.domain import oidc
from services.portal.domain.session import Session
from services.portal.entrypoints.http.common import (
    checked_form,
    portal,
    redirect,
    render,
    set_cookie,
)
from services.portal.handlers.auth import ROLES, SignIn, SignInRefused, sign_in

router = APIRouter()


def safe_next(value: str | None) -> str:
    """Only a path of this site: never an open redirect to another."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


@router.get("/dang-nhap")
async def sign_in_page(request: Request, next: str = "/") -> Response:
    return render(
        request,
        "sign_in.html.j2",
        {
            "next": safe_next(next),
            "roles": ROLES,
            "oidc": portal(request).oidc.enabled,
        },
    )


@router.post("/dang-nhap")
async def sign_in_post(
    request: Request, form: Annotated[dict[str, str], Depends(checked_form)]
) -> Response:
    parts = portal(request)
    next_path = safe_next(form.get("next"))
    command = SignIn(
        token=form.get("token", "").strip(),
        unit_code=form.get("unit_code", "").strip(),
        role=form.get("role", ""),
    )
    try:
        session = await sign_in(command, parts.api)
    except SignInRefused as exc:
        context = {
            "next": next_path,
            "roles": ROLES,
            "error": str(exc),
            "form": form,
            "oidc": parts.oidc.enabled,
        }
        return render(request, "sign_in.html.j2", context, status=401)
    return _signed_in(request, session, next_path)


def _signed_in(request: Request, session: Session, next_path: str) -> Response:
    parts = portal(request)
    response = redirect(next_path)
    max_age = int(parts.settings.session_hours * 3600)
    set_cookie(request, response, SESSION_COOKIE, parts.codec.dump(session), max_age=max_age)
    response.delete_cookie(CSRF_COOKIE, path="/")
    response.delete_cookie(OIDC_COOKIE, path="/")
    return response


@router.get("/dang-nhap/oidc")
async def oidc_start(request: Request, next: str = "/") -> Response:
    """Off to the identity provider, with state, nonce and a PKCE challenge."""
    parts = portal(request)
    if not parts.oidc.enabled:
        return _refused(
            request, safe_next(next), "Đăng nhập bằng tài khoản định danh chưa được bật."
        )
    attempt = oidc.Attempt.new(safe_next(next))
    try:
        endpoints = await parts.oidc.endpoints()
    except OidcFailed as exc:
        return _refused(request, attempt.next_path, str(exc))
    url = oidc.authorization_url(
        endpoints.authorization,
        client_id=parts.settings.oidc_client_id,
        redirect_uri=parts.oidc.redirect_uri,
        scope=parts.settings.oidc_scope,
        attempt=attempt,
    )
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: the provider's redirect back is a navigation from another site.
    set_cookie(request, response, OIDC_COOKIE, parts.codec.seal(attempt.dump()), max_age=600)
    return response


@router.get("/dang-nhap/oidc/ve")
async def oidc_callback(
    request: Request, code: str = "", state: str = "", error: str = ""
) -> Response:
    """The provider sends the browser back with a code: exchange it, then sign in."""
    parts = portal(request)
    sealed = parts.codec.unseal(request.cookies.get(OIDC_COOKIE))
    attempt = oidc.Attempt.load(sealed) if sealed else None
    next_path = attempt.next_path if attempt else "/"
    if error:
        return _refused(request, next_path, f"Máy chủ định danh báo lỗi: {error}.")
    if attempt is None or not state or not hmac.compare_digest(state, attempt.state):
        return _refused(
            request, next_path, "Lần đăng nhập này đã hết hạn hoặc không hợp lệ; hãy thử lại."
        )
    try:
        access_token = await parts.oidc.exchange(code, attempt)
        session = await sign_in(SignIn(token=access_token, via="oidc"), parts.api)
    except (OidcFailed, SignInRefused) as exc:
        return _refused(request, next_path, str(exc))
    return _signed_in(request, session, next_path)


def _refused(request: Request, next_path: str, message: str) -> Response:
    context = {
        "next": next_path,
        "roles": ROLES,
        "error": message,
        "oidc": portal(request).oidc.enabled,
    }
    return render(request, "sign_in.html.j2", context, status=401)


@router.post("/dang-xuat")
async def sign_out(
    request: Request, _form: Annotated[dict[str, str], Depends(checked_form)]
) -> Response:
    response = redirect("/dang-nhap?da_dang_xuat=1")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
