"""Closed doors over HTTP (QCDC_AUTH=tokens): who calls is settled before the body is read,
and a token reads only what its unit may see."""

from __future__ import annotations

from typing import Any

from tests.integration.test_auth import _as, _known, secured  # noqa: F401


async def test_without_a_token_a_malformed_body_is_a_401_and_audited_as_anonymous(
    secured: dict[str, Any],  # noqa: F811
) -> None:
    plans, reports, notify = secured["plans"], secured["reports"], secured["notify"]
    admin = secured["tokens"]["admin"]
    await _known(plans, admin)
    await _known(reports, admin)
    malformed = b'{"doc_number": "1/KH", "title": '  # cut short: not JSON
    answers = []
    for service, path in ((plans, "/plans"), (reports, "/reports"), (notify, "/subscriptions")):
        async with _as(service, None) as anonymous:
            answers.append(
                await anonymous.post(
                    path, content=malformed, headers={"Content-Type": "application/json"}
                )
            )
    async with _as(plans, None) as anonymous:
        # A wrong scheme is no token either, and an unknown path is not a way to learn routes.
        basic = await anonymous.post(
            "/plans", content=b"[", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}
        )
        unknown_path = await anonymous.get("/no-such-route")
        health = await anonymous.get("/healthz")
    async with _as(plans, admin) as client:
        with_token = await client.post(
            "/plans", content=malformed, headers={"Content-Type": "application/json"}
        )
        audit = (await client.get("/audit", params={"outcome": "unauthenticated"})).json()

    for answer in [*answers, basic, unknown_path]:
        assert answer.status_code == 401, answer.text
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert "Authorization: Bearer" in answer.json()["error"]["message"]
    assert health.status_code == 200
    assert with_token.status_code == 422  # the same body, now someone may send it
    anonymous_entries = [a for a in audit if a["token_id"] == "anonymous"]
    assert {a["action"] for a in anonymous_entries} >= {
        "POST /plans",
        "GET /no-such-route",
    }
    assert all(a["unit_code"] == "-" for a in anonymous_entries)
