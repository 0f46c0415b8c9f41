"""Sign-in with an API token, sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.portal.adapters.cookies import CSRF_COOKIE, SESSION_COOKIE
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
            "oidc": bool(portal(request).settings.oidc_client_id),
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
            "oidc": bool(parts.settings.oidc_client_id),
        }
        return render(request, "sign_in.html.j2", context, status=401)
    response = redirect(next_path)
    max_age = int(parts.settings.session_hours * 3600)
    set_cookie(request, response, SESSION_COOKIE, parts.codec.dump(session), max_age=max_age)
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/dang-xuat")
async def sign_out(
    request: Request, _form: Annotated[dict[str, str], Depends(checked_form)]
) -> Response:
    response = redirect("/dang-nhap?da_dang_xuat=1")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
