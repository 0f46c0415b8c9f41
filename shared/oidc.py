"""OpenID Connect bearer tokens, for provinces that run an identity provider.

The identity provider signs a JWT (an access token) naming the user's unit and role in two
claims (``qcdc_unit`` and ``qcdc_role`` by default). A service checks it on its own: the
signature against the provider's published keys (JWKS, fetched over HTTPS and cached), the
issuer, the audience and the expiry. The caller then has exactly the rights of an API
token of that unit and role (:mod:`shared.auth`); a token without both claims is refused.

The JWKS is fetched when a token names a key we do not hold yet (so the provider can rotate
its keys), at most once per ``REFETCH_INTERVAL``: a stream of tokens with made-up key ids
cannot make us hammer the provider.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from shared.auth import Principal, Role, Unauthenticated
from shared.units import is_unit_code

REFETCH_INTERVAL = 30.0
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str = ""
    """Empty: read from the issuer's ``/.well-known/openid-configuration``."""
    unit_claim: str = "qcdc_unit"
    role_claim: str = "qcdc_role"
    algorithms: tuple[str, ...] = ("RS256", "ES256")


@dataclass
class OidcVerifier:
    config: OidcConfig
    timeout: float = 10.0
    _keys: dict[str, Any] = field(default_factory=dict)
    _fetched_at: float = -REFETCH_INTERVAL
    _jwks_url: str = ""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def principal(self, token: str) -> Principal:
        """The caller this token names, or :class:`Unauthenticated` with the reason."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"not a valid token: {exc}") from None
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.config.algorithms),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("this token has expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the identity provider's token is not valid: {exc}") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        unit, role = claims.get(self.config.unit_claim), claims.get(self.config.role_claim)
        if not isinstance(unit, str) or not is_unit_code(unit):
            raise Unauthenticated(f"the token has no unit code in its {self.config.unit_claim!r}")
        try:
            granted = Role(str(role))
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise Unauthenticated(
                f"the token's {self.config.role_claim!r} is {role!r}; expected one of {roles}"
            ) from None
        token_id = f"oidc:{claims['sub']}"[:64]
        return Principal(token_id=token_id, unit_code=unit, unit_path=(unit,), role=granted)

    async def _key(self, kid: str) -> Any:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= REFETCH_INTERVAL:
                await self._fetch()
        if kid not in self._keys:
            raise Unauthenticated(f"the identity provider has no signing key {kid!r}")
        return self._keys[kid]

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                url = self.config.jwks_url or self._jwks_url or await self._discover(client)
                self._jwks_url = url
                response = await client.get(url)
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            # The cached keys stay: a provider that is down must not lock everyone out.
            raise Unauthenticated(f"the identity provider's keys are unavailable: {exc}") from None
        self._keys.update({k.key_id: k.key for k in keys.keys if k.key_id})

    async def _discover(self, client: httpx.AsyncClient) -> str:
        response = await client.get(
            self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        response.raise_for_status()
        return str(response.json()["jwks_uri"])
