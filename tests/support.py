"""Test helpers: a bus spy, an SMTP inbox, in-process services on real HTTP, service processes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import nats
import uvicorn
from aiosmtpd.controller import Controller
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.natsd import free_port, wait_for_port
from shared.clock import Clock
from shared.runtime import Runtime
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings
from shared.tracing import Tracing

PATIENCE = float(os.environ.get("QCDC_TEST_PATIENCE", "1"))
"""The one factor every wait in the tests scales with: raise it on a slow or shared machine
(``QCDC_TEST_PATIENCE=3 make test``). Waits are for events; this only bounds them."""

DEFAULT_TIMEOUT = 30.0
TEST_CONTACTS_KEY = "RGM-sYUMqZTVLm0zll8V2OZFxaYD3F7IyuossXgX_8A="
"""Seals unit e-mail addresses on the bus between the services under test."""


def patience(seconds: float) -> float:
    """A bound of ``seconds`` on an idle machine, scaled by :data:`PATIENCE`."""
    return seconds * PATIENCE


class Waitable:
    """Collects items from any thread; lets a test await a condition on them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, item: Any) -> None:
        def _append() -> None:
            self.items.append(item)
            self._changed.set()

        self.loop.call_soon_threadsafe(_append)

    async def wait_for(
        self, predicate: Callable[[list[Any]], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> list[Any]:
        timeout = patience(timeout)
        deadline = self.loop.time() + timeout
        while not predicate(self.items):
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met in {timeout} s; have {len(self.items)}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        return self.items


@dataclass(frozen=True)
class Received:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage
    subject: str = field(init=False)
    """Decoded once, on arrival: a test counting receipts among 20,000 mails polls it often."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", str(self.message["Subject"]))

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())  # type: ignore[attr-defined]


class SmtpInbox(Waitable):
    """A real SMTP server (aiosmtpd) that keeps every message it accepts."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int) -> None:
        super().__init__(loop)
        self.port = port
        self._controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.add(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def with_subject(self, fragment: str) -> list[Received]:
        """The messages whose subject contains ``fragment`` (e.g. "[Xác nhận]" for receipts)."""
        return [m for m in self.items if fragment in m.subject]

    async def wait_for_subject(
        self, fragment: str, count: int = 1, timeout: float = DEFAULT_TIMEOUT
    ) -> list[Received]:
        await self.wait_for(lambda _items: len(self.with_subject(fragment)) >= count, timeout)
        return self.with_subject(fragment)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class Seen:
    subject: str
    headers: dict[str, str]
    data: bytes


class BusSpy(Waitable):
    """Watches every message on ``qcdc.>`` with a plain NATS subscription."""

    def __init__(self, url: str) -> None:
        super().__init__(asyncio.get_running_loop())
        self.url = url
        self.nc: Client | None = None

    async def start(self) -> None:
        self.nc = await nats.connect(self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)

        async def on_message(msg: Msg) -> None:
            self.add(Seen(msg.subject, dict(msg.headers or {}), msg.data))

        await self.nc.subscribe("qcdc.>", cb=on_message)
        await self.nc.flush()

    async def stop(self) -> None:
        if self.nc is not None:
            await self.nc.close()

    def of_type(self, ce_type: str) -> list[Seen]:
        return [s for s in self.items if s.headers.get("ce-type") == ce_type]

    async def wait_for_type(
        self, ce_type: str, count: int = 1, timeout: float = DEFAULT_TIMEOUT
    ) -> list[Seen]:
        await self.wait_for(lambda _items: len(self.of_type(ce_type)) >= count, timeout)
        return self.of_type(ce_type)


@dataclass
class InProcessService:
    """A service running in the test's event loop, serving real HTTP on a free port."""

    definition: ServiceDefinition
    settings: ServiceSettings
    clock: Clock | None = None
    tracing: Tracing | None = None
    runtime: Runtime = field(init=False)
    _server: uvicorn.Server | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    async def start(self) -> InProcessService:
        self.runtime = self.definition.runtime(self.settings, self.clock, self.tracing)
        app = self.definition.app(self.runtime)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.settings.http_port, log_config=None, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + patience(DEFAULT_TIMEOUT)
        while not self._server.started:
            if self._task.done():
                self._task.result()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.definition.name} did not start")
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=patience(10))


SCRATCH: list[Path] = []
"""The test session's own temporary folder (tests/conftest.py sets it)."""


def scratch_dir(prefix: str) -> str:
    """A new folder of this test session's own: never the working directory's ``var``,
    which a second test run on the same clone would share."""
    return tempfile.mkdtemp(prefix=prefix, dir=SCRATCH[0] if SCRATCH else None)


def service_settings(definition: ServiceDefinition, **overrides: Any) -> ServiceSettings:
    values = {
        "http_port": free_port(),
        # Open on the loopback interface: these tests are about other things; tokens are
        # tested where they matter (test_auth.py, test_authority.py).
        "auth": "open",
        "contacts_key": TEST_CONTACTS_KEY,
        "outbox_poll_seconds": 0.2,
        "consumer_ack_wait_seconds": 5.0,
        **overrides,
    }
    # Nothing shared with another test run on this machine: attachments and other files in
    # the test's own folder, and mail (where a test names no SMTP server) to a port of its
    # own where nothing listens, never the 8025 of a `qcdc up` running here.
    if "data_dir" not in values:
        values["data_dir"] = scratch_dir(f"{definition.name}-")
    if "smtp_port" in definition.settings_type.model_fields and "smtp_port" not in values:
        values["smtp_port"] = free_port()
    return definition.settings_type(**values)


@dataclass
class ServiceProcess:
    """A service as its own OS process (``python -m services serve <name>``)."""

    name: str
    env: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "QCDC_AUTH": "open",
            "QCDC_CONTACTS_KEY": TEST_CONTACTS_KEY,
            **self.env,
            "QCDC_HTTP_PORT": str(self.port),
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services", "serve", self.name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout=patience(60))
        except TimeoutError as exc:
            tail = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"{self.name} did not start:\n{tail}") from exc
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + patience(60)
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=patience(2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} is not healthy:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(patience(20))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


async def eventually(
    probe: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.05
) -> Any:
    """Poll an async probe until it returns something truthy (for state with no event to
    await, such as a read model behind an HTTP API)."""
    timeout = patience(timeout)
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"probe still false after {timeout} s: {result!r}")
        await asyncio.sleep(interval)


async def created_once_known(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST ``body`` to ``path`` until it is created (201): the service accepts it once the
    units it names have reached it from the bus (their UnitRegistered)."""

    async def created() -> dict[str, Any]:
        response = await client.post(path, json=body)
        return dict(response.json()) if response.status_code == 201 else {}

    found: dict[str, Any] = await eventually(created)
    return found
