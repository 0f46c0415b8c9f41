"""Fixtures with real parts: nats-server on a free port, SQLite and PostgreSQL, an SMTP server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.natsd import NatsCluster, NatsServer, free_port
from tests.postgres import as_admin, async_url
from tests.support import SCRATCH, BusSpy, SmtpInbox, patience

TEST_TIME_LIMIT = 300.0
"""Seconds a test may take on an idle machine (pytest-timeout), scaled by the patience factor."""

POSTGRES_DSN = os.environ.get("QCDC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session", autouse=True)
def _scratch(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Files a service writes where a test names no folder go under this session's
    temporary folder (tests/support.py ``scratch_dir``), not into the clone's ``var``."""
    SCRATCH.append(tmp_path_factory.mktemp("scratch"))


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A plain NATS connection to :func:`nats_server` (to publish or read as no service does)."""
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
async def nats_cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    """Three nats-servers on loopback in one JetStream cluster, healthy (a metadata leader
    elected); streams are the test's to provision, e.g. with ``replicas=3``."""
    cluster = NatsCluster(tmp_path / "cluster")
    await asyncio.to_thread(cluster.start, patience(30))
    yield cluster
    await asyncio.to_thread(cluster.stop)


async def _create_database() -> str:
    name = f"qcdc_test_{uuid.uuid4().hex[:12]}"
    await as_admin(POSTGRES_DSN, f'CREATE DATABASE "{name}"')
    return name


async def _drop_database(name: str) -> None:
    await as_admin(POSTGRES_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _async_url(database: str) -> str:
    return async_url(POSTGRES_DSN, database)


@pytest.fixture
async def postgres_url_factory() -> AsyncIterator[object]:
    """Creates empty PostgreSQL databases on demand; drops them afterwards."""
    created: list[str] = []

    async def make() -> str:
        name = await _create_database()
        created.append(name)
        return _async_url(name)

    yield make
    for name in created:
        await _drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_urls(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url_factory: object
) -> dict[str, str]:
    """One database URL per service, on SQLite or on PostgreSQL."""
    services = ("plans", "reports", "notify")
    if request.param == "sqlite":
        return {s: f"sqlite+aiosqlite:///{tmp_path}/{s}.db" for s in services}
    make = postgres_url_factory
    return {s: await make() for s in services}  # type: ignore[operator]


@pytest.fixture
async def smtp_inbox() -> AsyncIterator[SmtpInbox]:
    inbox = SmtpInbox(asyncio.get_running_loop(), free_port())
    inbox.start()
    yield inbox
    inbox.stop()


@pytest.fixture
async def bus_spy(nats_server: NatsServer) -> AsyncIterator[BusSpy]:
    spy = BusSpy(nats_server.url)
    await spy.start()
    yield spy
    await spy.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The per-test limit scales with the same factor as every wait (tests/support.py)."""
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(patience(TEST_TIME_LIMIT)))
