"""The OpenID Connect provider, over HTTP: its discovery document and its token endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from services.portal.domain.oidc import Attempt
from services.portal.settings import PortalSettings


class OidcFailed(Exception):
    """Said to the user, in Vietnamese."""


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str


class OidcClient:
    def __init__(self, settings: PortalSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self._endpoints: Endpoints | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.oidc_client_id and self.settings.oidc_issuer)

    @property
    def redirect_uri(self) -> str:
        return self.settings.resolved_public_url().rstrip("/") + "/dang-nhap/oidc/ve"

    async def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            url = self.settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                found = (await self.client.get(url)).raise_for_status().json()
                self._endpoints = Endpoints(
                    found["authorization_endpoint"], found["token_endpoint"]
                )
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                raise OidcFailed(
                    f"Không kết nối được máy chủ định danh ({self.settings.oidc_issuer})."
                ) from exc
        return self._endpoints

    async def exchange(self, code: str, attempt: Attempt) -> str:
        """The access token for an authorization code; the ID token's nonce must be ours."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.settings.oidc_client_id,
            "code_verifier": attempt.verifier,
        }
        if self.settings.oidc_client_secret:
            form["client_secret"] = self.settings.oidc_client_secret
        try:
            answer = await self.client.post((await self.endpoints()).token, data=form)
            body: dict[str, Any] = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcFailed("Máy chủ định danh không trả lời đúng.") from exc
        if answer.status_code != 200 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or answer.status_code
            raise OidcFailed(f"Máy chủ định danh từ chối đăng nhập ({reason}).")
        self._check_nonce(body.get("id_token"), attempt.nonce)
        return str(body["access_token"])

    @staticmethod
    def _check_nonce(id_token: str | None, nonce: str) -> None:
        # Received straight from the token endpoint, whose address we chose (OIDC Core
        # 3.1.3.7: the TLS connection vouches for it); the services verify the access token's
        # signature themselves. The nonce ties this ID token to this sign-in.
        if not id_token:
            return
        try:
            claims = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise OidcFailed("Mã định danh (ID token) không đọc được.") from exc
        if claims.get("nonce") != nonce:
            raise OidcFailed("Mã định danh không thuộc lần đăng nhập này (nonce khác).")
