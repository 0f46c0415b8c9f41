"""Fail closed: tokens unless ``qcdc up`` says otherwise, open mode only on loopback, and a
route that no middleware identified the caller for has no caller at all."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.embedded import EmbeddedPorts, EmbeddedSystem
from shared.auth import Unauthenticated
from shared.security import Caller, check_open_mode
from shared.settings import ServiceSettings


def test_authentication_defaults_to_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QCDC_AUTH", raising=False)
    assert ServiceSettings().auth == "tokens"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "qcdc.example.vn"])
def test_open_mode_refuses_to_listen_beyond_loopback(host: str) -> None:
    with pytest.raises(SystemExit, match="loopback"):
        check_open_mode(ServiceSettings(auth="open"), host)
    check_open_mode(ServiceSettings(auth="tokens"), host)  # tokens: anywhere


def test_open_mode_on_loopback_is_allowed() -> None:
    check_open_mode(ServiceSettings(auth="open"), "127.0.0.1")


def test_qcdc_up_runs_open_on_loopback_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    system = EmbeddedSystem(tmp_path, EmbeddedPorts(nats=1, plans=2, reports=3, notify=4, smtp=5))
    env = system.env("reports")
    system.print_summary("demo")
    assert env["QCDC_AUTH"] == "open" and env["QCDC_HTTP_HOST"] == "127.0.0.1"
    assert "OPEN DEV MODE: no token needed" in capsys.readouterr().out


async def test_a_route_without_the_authentication_middleware_has_no_caller() -> None:
    """No ambient caller and no default administrator: a route added outside the guard is
    refused, not served as someone."""
    app = FastAPI()

    @app.get("/new-route")
    async def new_route(caller: Caller) -> dict[str, str]:
        return {"unit": caller.unit_code}

    @app.exception_handler(Unauthenticated)
    async def refused(_request: Request, exc: Unauthenticated) -> JSONResponse:
        return JSONResponse({"error": {"message": exc.reason}}, status_code=401)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/new-route")
    assert answer.status_code == 401
    assert "no caller" in answer.json()["error"]["message"]
