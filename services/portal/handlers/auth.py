"""Signing in: the services say who a credential is (GET /whoami); the portal believes them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from services.portal.adapters.api import ApiError, ServiceApi
from services.portal.domain.session import Session

ROLES = ("submitter", "reviewer", "planner", "administrator", "integrator")


class SignInRefused(Exception):
    """Said to the user, in Vietnamese."""


@dataclass(frozen=True)
class SignIn:
    token: str
    unit_code: str = ""
    """Only in the open development mode, where a token says nothing: who to act as."""
    role: str = ""
    via: str = "token"


async def sign_in(command: SignIn, api: ServiceApi) -> Session:
    try:
        who = await api.get("plans", "/whoami", command.token)
    except ApiError as exc:
        if exc.status == 401:
            raise SignInRefused(
                "Mã truy cập không hợp lệ, đã hết hạn hoặc đã bị thu hồi "
                f"(máy chủ trả lời: {exc.message})."
            ) from exc
        raise SignInRefused(f"Chưa đăng nhập được: {exc.message}") from exc
    unit_code, role, via = who["unit_code"], who["role"], command.via
    if unit_code == "*":  # QCDC_AUTH=open: every caller is everyone; the user says who
        if not command.unit_code or command.role not in ROLES:
            raise SignInRefused(
                "Hệ thống đang ở chế độ phát triển (QCDC_AUTH=open): hãy nhập mã đơn vị và "
                "chọn vai trò để làm việc thay mặt đơn vị đó."
            )
        unit_code, role, via = command.unit_code.strip(), command.role, "open"
    try:
        unit = await api.get("plans", f"/units/{unit_code}", command.token)
        name = str(unit["name"])
    except ApiError as exc:
        if exc.status == 404:
            raise SignInRefused(f"Không có đơn vị mã {unit_code}.") from exc
        name = unit_code  # the role may not read units; the code will do
    return Session(
        token=command.token,
        unit_code=unit_code,
        unit_name=name,
        role=role,
        csrf=secrets.token_urlsafe(24),
        via=via,
    )
