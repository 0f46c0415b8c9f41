"""OpenID Connect bearer tokens: an identity provider over real HTTP (discovery document and
JWKS), tokens signed with its RSA key; the plans service accepts them beside its own API
tokens, with the same role boundaries, and refuses every kind of bad token with a 401."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from tests.integration.test_plan_lifecycle import PROVINCE_PLAN, UNITS
from tests.json_http import JsonHandler, LocalServer, jwks
from tests.stack import register_units_at_console
from tests.support import InProcessService, patience, service_settings

AUDIENCE = "qcdc-anbinh"


class IdentityProvider:
    """Serves /.well-known/openid-configuration and /jwks.json; signs tokens."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_requests = 0
        provider = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {
                        "issuer": provider.issuer,
                        "jwks_uri": f"{provider.issuer}/jwks.json",
                    }
                elif self.path == "/jwks.json":
                    provider.jwks_requests += 1
                    body = jwks(provider.key)
                else:
                    self.send_error(404)
                    return
                self.send_json(200, body)

        self.http = LocalServer(Handler)
        self.issuer = self.http.url

    def token(self, key: Any = None, kid: str = "k1", **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "nguyen.van.a",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.http.start()
    yield provider
    provider.http.stop()


@pytest.fixture
async def plans(
    nats_server: NatsServer, database_urls: dict[str, str], idp: IdentityProvider
) -> AsyncIterator[InProcessService]:
    settings = service_settings(
        PLANS,
        nats_url=nats_server.url,
        database_url=database_urls["plans"],
        auth="tokens",
        oidc_issuer=idp.issuer,
        oidc_audience=AUDIENCE,
    )
    service = await InProcessService(PLANS, settings).start()
    await register_units_at_console(service, UNITS)
    yield service
    await service.stop()


async def _post_plan(service: InProcessService, token: str) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=patience(10)
    ) as client:
        return await client.post("/plans", json=PROVINCE_PLAN)


async def test_identity_provider_tokens_carry_unit_and_role(
    plans: InProcessService, idp: IdentityProvider
) -> None:
    planner = idp.token(qcdc_unit="T89", qcdc_role="planner")
    district = idp.token(qcdc_unit="H801", qcdc_role="planner", sub="tran.thi.b")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "expired": idp.token(qcdc_unit="T89", qcdc_role="planner", exp=int(time.time()) - 120),
        "audience": idp.token(qcdc_unit="T89", qcdc_role="planner", aud="another-app"),
        "issuer": idp.token(qcdc_unit="T89", qcdc_role="planner", iss="http://evil.example"),
        "forged": idp.token(key=other_key, qcdc_unit="T89", qcdc_role="planner"),
        "unknown key": idp.token(kid="k9", qcdc_unit="T89", qcdc_role="planner"),
        "no role": idp.token(qcdc_unit="T89"),
        "bad role": idp.token(qcdc_unit="T89", qcdc_role="governor"),
        "no unit": idp.token(qcdc_role="planner"),
        "garbage": "not-a-jwt",
    }

    own = await _post_plan(plans, planner)
    foreign = await _post_plan(plans, district)
    answers = {name: await _post_plan(plans, token) for name, token in refused.items()}

    assert own.status_code == 201, own.text
    assert foreign.status_code == 403
    assert "cannot issue plans for unit T89" in foreign.json()["error"]["message"]
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(refused, 401)
    messages = {name: r.json()["error"]["message"] for name, r in answers.items()}
    assert messages["expired"] == "this token has expired"
    assert "audience" in messages["audience"].lower()
    assert "issuer" in messages["issuer"].lower()
    assert "signature" in messages["forged"].lower()
    assert "no signing key 'k9'" in messages["unknown key"]
    assert "'qcdc_role'" in messages["no role"] and "'qcdc_role'" in messages["bad role"]
    assert "'qcdc_unit'" in messages["no unit"]
    # Keys are cached: one fetch for the first token, one more for the unknown key id at most.
    assert 1 <= idp.jwks_requests <= 2

    async with plans.runtime.uow() as uow:
        rows = (
            await uow.session.execute(
                plans.runtime.security.audit.select()  # type: ignore[union-attr]
            )
        ).all()
    entries = {(r.token_id, r.action, r.outcome) for r in rows}
    assert ("oidc:nguyen.van.a", "plan.drafted", "done") in entries
    assert ("oidc:tran.thi.b", "POST /plans", "forbidden") in entries
    assert sum(1 for r in rows if r.outcome == "unauthenticated") == len(refused)
