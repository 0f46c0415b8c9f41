"""The HTTP side of a graceful stop, without a server: from the stop signal on, every request
is refused with 503 before the application sees it; a second Ctrl-C forces the exit."""

from __future__ import annotations

import signal
from types import SimpleNamespace
from typing import cast

import httpx
import uvicorn
from fastapi import FastAPI

from shared.http import Draining, DrainingServer
from shared.runtime import Runtime


class _Runtime(SimpleNamespace):
    draining = False

    def begin_draining(self) -> None:
        self.draining = True


def _app(runtime: _Runtime, reached: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/reports")
    async def submit() -> dict[str, str]:
        reached.append("submit")
        return {"status": "stored"}

    app.add_middleware(Draining, runtime=cast(Runtime, runtime))
    return app


async def test_a_stopping_service_refuses_new_requests_with_503_before_they_run() -> None:
    runtime = _Runtime()
    reached: list[str] = []
    transport = httpx.ASGITransport(app=_app(runtime, reached))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/reports")).status_code == 200
        runtime.draining = True
        refused = await client.post("/reports")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["Connection"] == "close"
    assert refused.json() == {"error": {"message": "the service is stopping; please retry shortly"}}
    assert reached == ["submit"]  # the refused request never reached the route


def test_the_stop_signal_drains_first_and_a_second_ctrl_c_forces() -> None:
    runtime = _Runtime()
    server = DrainingServer(uvicorn.Config(FastAPI()), cast(Runtime, runtime))
    server.handle_exit(signal.SIGTERM, None)
    assert runtime.draining and server.should_exit and not server.force_exit
    server.handle_exit(signal.SIGINT, None)
    assert server.force_exit


def test_an_app_without_a_runtime_stops_on_the_signal_too() -> None:
    """The portal serves through the same function and has no bus runtime."""
    server = DrainingServer(uvicorn.Config(FastAPI()), None)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit and not server.force_exit
