"""A small OpenID Connect provider over real HTTP for the portal's sign-in: discovery, JWKS,
an authorization endpoint that signs in one preset user at once (no login form), and a
token endpoint that checks the PKCE verifier against the challenge, as a real one does."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.json_http import JsonHandler, LocalServer, jwks

AUDIENCE = "qcdc"
CLIENT_ID = "qcdc-portal"


class TestProvider:
    def __init__(self, unit: str, role: str) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.user = {"qcdc_unit": unit, "qcdc_role": role, "sub": "le.thi.hoa"}
        self.codes: dict[str, dict[str, str]] = {}
        self.refused: list[str] = []
        provider = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self.send_json(200, provider.discovery())
                elif url.path == "/jwks.json":
                    self.send_json(200, provider.jwks())
                elif url.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = query
                    back = {"code": code, "state": query.get("state", "")}
                    self.send_response(302)
                    self.send_header("Location", f"{query['redirect_uri']}?{urlencode(back)}")
                    self.end_headers()
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = provider.exchange(form)
                self.send_json(status, body)

        self.http = LocalServer(Handler)
        self.issuer = self.http.url

    def start(self) -> None:
        self.http.start()

    def stop(self) -> None:
        self.http.stop()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks.json",
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        return jwks(self.key)

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        asked = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (
            asked is None
            or asked.get("code_challenge_method") != "S256"
            or asked.get("code_challenge") != challenge
            or asked.get("redirect_uri") != form.get("redirect_uri")
            or form.get("client_id") != CLIENT_ID
        ):
            self.refused.append(form.get("code", ""))
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        common = {"iss": self.issuer, "iat": now, "exp": now + 300, "sub": self.user["sub"]}
        access = {**common, **self.user, "aud": AUDIENCE}
        identity = {**common, "aud": CLIENT_ID, "nonce": asked.get("nonce", "")}
        return 200, {
            "access_token": self._sign(access),
            "id_token": self._sign(identity),
            "token_type": "Bearer",
            "expires_in": 300,
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})
