"""PostgreSQL going away under running services: every service's API answers 503 with
``Retry-After`` and the JSON error shape on every kind of route (reads, commands with a
body, documents), never a 500, and a submission over the bus is answered "retry later";
``/readyz`` (and its older name ``/healthz``) says "not ready" meanwhile, with the reason;
when the database is back, so are the services, and a submission refused during the outage
goes through.

The services reach PostgreSQL through a TCP relay in the test; cutting it closes every
connection and refuses new ones, as a stopped or unreachable server does."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy.engine import make_url

from services.natsd import NatsServer, free_port
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from tests.integration.scenario import register_units_and_issue_plan
from tests.support import InProcessService, eventually, patience, service_settings


class CuttableRelay:
    """A TCP relay to one server that can be cut (every connection closed, new ones
    refused) and joined again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    async def join(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._streams):
            writer.transport.abort()
        self._streams.clear()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._streams.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._streams.discard(writer)


@pytest.fixture
async def relay(database_urls: dict[str, str]) -> AsyncIterator[CuttableRelay]:
    target = make_url(database_urls["plans"])
    found = CuttableRelay(target.host or "127.0.0.1", target.port or 5432)
    await found.join()
    yield found
    with contextlib.suppress(AssertionError):
        await found.cut()


def _through(url: str, relay: CuttableRelay) -> str:
    return make_url(url).set(host="127.0.0.1", port=relay.port).render_as_string(False)


# What each API is asked during the outage: reads, commands with a valid body, documents.
REQUESTS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "plans": [
        ("GET", "/units", {}),
        ("GET", "/plans", {}),
        (
            "POST",
            "/units",
            {
                "json": {
                    "code": "STC",
                    "name": "Sở Tài chính",
                    "kind": "department",
                    "parent_code": "T89",
                }
            },
        ),
        ("GET", "/units/export", {"params": {"format": "csv"}}),
    ],
    "reports": [
        ("GET", "/obligations", {}),
        (
            "GET",
            "/consolidations",
            {
                "params": {
                    "plan_id": "p",
                    "schedule_key": "six_month",
                    "receiving_unit": "SNV",
                    "format": "xlsx",
                }
            },
        ),
    ],
    "notify": [
        ("GET", "/deliveries", {}),
        ("GET", "/subscriptions", {}),
    ],
}


def _assert_unavailable(response: httpx.Response) -> None:
    what = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    assert response.headers["Retry-After"] in ("1", "5"), what
    assert response.headers["X-Correlation-Id"], what
    message = response.json()["error"]["message"]
    assert "retry" in message and "database" in message, what


@pytest.mark.postgres
@pytest.mark.parametrize("database_urls", ["postgresql"], indirect=True)
async def test_a_database_outage_is_a_503_and_not_ready_until_it_returns(
    nats_server: NatsServer, database_urls: dict[str, str], relay: CuttableRelay
) -> None:
    services: dict[str, InProcessService] = {}
    for definition in (PLANS, REPORTS, NOTIFY):
        settings = service_settings(
            definition,
            nats_url=nats_server.url,
            database_url=_through(database_urls[definition.name], relay),
            # Notify asks for tokens: finding the caller's token needs the database too.
            auth="tokens" if definition is NOTIFY else "open",
        )
        services[definition.name] = await InProcessService(definition, settings).start()
    # A connection per request: the three services share this event loop, and a kept-alive
    # connection can meet the server's keep-alive timeout while the loop is busy elsewhere.
    fresh, wait = httpx.Limits(max_keepalive_connections=0), patience(10)
    clients = {
        name: httpx.AsyncClient(base_url=service.url, timeout=wait, limits=fresh)
        for name, service in services.items()
    }
    clients["notify"].headers["Authorization"] = "Bearer qcdc_not-a-token-anyone-issued"
    try:
        await register_units_and_issue_plan(clients["plans"])

        async def opened() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (await clients["reports"].get("/obligations")).json()
            return found

        obligation = (await eventually(opened))[0]
        submission: dict[str, Any] = {
            "json": {"obligation_id": obligation["id"], "unit_code": obligation["unit_code"]},
            "headers": {"Idempotency-Key": "during-the-outage"},
        }

        subject = ".".join(["qcdc.v1.rpc.report.submit", *obligation["unit_path"]])
        over_the_bus = json.dumps(
            {
                "obligation_id": obligation["id"],
                "unit_code": obligation["unit_code"],
                "idempotency_key": "bus-during-the-outage",
            }
        ).encode()

        await relay.cut()
        nc = await nats.connect(nats_server.url)
        try:
            answer = json.loads((await nc.request(subject, over_the_bus, timeout=wait)).data)
            assert answer["error"]["retry_after"] in (1, 5), answer
            assert "retry" in answer["error"]["message"], answer
        finally:
            await nc.close()
        for name, client in clients.items():
            asked = [*REQUESTS[name], *([("POST", "/reports", submission)] * (name == "reports"))]
            for method, path, options in asked:
                _assert_unavailable(await client.request(method, path, **options))
            for probe in ("/readyz", "/healthz"):  # /healthz: the older name
                health = await client.get(probe)
                assert health.status_code == 503, health.text
                assert health.json() == {
                    "service": name,
                    "status": "not ready",
                    "checks": {
                        "database": "down",
                        "nats": "ok",
                        "streams": "ok",
                        "consumers": "ok",
                    },
                    "reasons": ["the database is unreachable"],
                }
                assert health.headers["Retry-After"] in ("1", "5")
            assert (await client.get("/livez")).status_code == 200

        await relay.join()
        for client in clients.values():

            async def ready(client: httpx.AsyncClient = client) -> bool:
                answer = await client.get("/readyz")
                return answer.status_code == 200 and answer.json()["status"] == "ready"

            await eventually(ready)
        submitted = await clients["reports"].post("/reports", **submission)
        assert submitted.status_code == 201, submitted.text
        nc = await nats.connect(nats_server.url)
        try:
            receipt = json.loads((await nc.request(subject, over_the_bus, timeout=wait)).data)
        finally:
            await nc.close()
        assert receipt["receipt_number"] and receipt["version"] == 2, receipt
        for name, client in clients.items():
            method, path, options = REQUESTS[name][0]
            answer = await client.request(method, path, **options)
            # Back to normal answers: notify now finds that nobody issued the token.
            expected = 401 if name == "notify" else 200
            assert answer.status_code == expected, f"{name} {path}: {answer.text}"
    finally:
        for client in clients.values():
            await client.aclose()
        for service in reversed(services.values()):
            await service.stop()
