"""The whole system for a benchmark: nats-server, the mail sink and the three services as
separate processes, on SQLite files or fresh PostgreSQL databases, as ``qcdc up`` and
Compose run them (with ``QCDC_AUTH=open``: the bench measures the work, not the tokens)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx
import nats
from cryptography.fernet import Fernet
from nats.aio.client import Client

from bench.support import scratch_database
from services.natsd import NatsServer, free_port, wait_for_port
from shared.bus.streams import provision

SERVICES = ("plans", "reports", "notify")


def _contacts_key() -> str:
    return os.environ.get("QCDC_CONTACTS_KEY") or Fernet.generate_key().decode()


@dataclass
class Stack:
    folder: Path
    db: str
    extra_env: dict[str, str] = field(default_factory=dict)
    nats: NatsServer = field(init=False)
    smtp_port: int = field(init=False)
    ports: dict[str, int] = field(default_factory=dict, init=False)
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    _logs: list[IO[bytes]] = field(default_factory=list, init=False)
    _exit: AsyncExitStack = field(default_factory=AsyncExitStack, init=False)
    contacts_key: str = field(default_factory=lambda: _contacts_key())

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def mail_dir(self) -> Path:
        return self.folder / "mail"

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        self.nats = NatsServer(self.folder / "nats", free_port())
        self.nats.start()
        nc = await nats.connect(self.nats.url)
        await provision(nc.jetstream())
        await nc.close()
        self.smtp_port = free_port()
        self._spawn(
            "mailsink",
            ["-m", "services.mailsink", "--port", str(self.smtp_port), "--dir", str(self.mail_dir)],
        )
        wait_for_port("127.0.0.1", self.smtp_port)
        for service in SERVICES:
            database = await self._exit.enter_async_context(
                scratch_database(self.db, self.folder, service)
            )
            self.ports[service] = free_port()
            self._spawn(
                service, ["-m", "services", "serve", service], env=self._env(service, database)
            )
        await asyncio.gather(*(self._ready(service) for service in SERVICES))

    def _env(self, service: str, database: str) -> dict[str, str]:
        return {
            **os.environ,
            "QCDC_NATS_URL": self.nats.url,
            "QCDC_DATABASE_URL": database,
            "QCDC_HTTP_PORT": str(self.ports[service]),
            "QCDC_DATA_DIR": str(self.folder / service),
            "QCDC_SMTP_PORT": str(self.smtp_port),
            "QCDC_AUTH": "open",
            "QCDC_LOG_LEVEL": "WARNING",
            "QCDC_BUS_PROVISION": "false",
            # Plans seals the units' e-mail addresses on the bus and notify opens them: the
            # same key on both, or notify knows no address and sends no receipt.
            "QCDC_CONTACTS_KEY": self.contacts_key,
            **self.extra_env,
        }

    def _spawn(
        self,
        name: str,
        args: list[str],
        more: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self._logs.append(log)
        self._processes[name] = subprocess.Popen(
            [sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=env
        )

    async def _ready(self, service: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url(service), timeout=2.0) as client:
            while True:
                if self._processes[service].poll() is not None:
                    raise RuntimeError(f"{service} exited while starting:\n{self.log(service)}")
                try:
                    # Ready: database migrated, NATS connected, streams and consumers there.
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{service} not ready in {timeout} s:\n{self.log(service)}")
                await asyncio.sleep(0.1)

    def log(self, name: str, lines: int = 30) -> str:
        path = self.folder / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self._processes.items()}

    async def connect(self) -> Client:
        return await nats.connect(self.nats.url)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self._processes.values():
            process.terminate()
        for process in self._processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()
        if exc is not None:  # keep what the processes said: the folder is about to go
            kept = Path(tempfile.gettempdir()) / "qcdc-bench-failed"
            shutil.rmtree(kept, ignore_errors=True)
            kept.mkdir()
            for log_file in self.folder.glob("*.log"):
                shutil.copy(log_file, kept / log_file.name)
            print(f"[stack] the processes' logs are kept in {kept}", file=sys.stderr)
        await self._exit.aclose()  # drops the databases once nothing uses them
        if hasattr(self, "nats"):
            self.nats.stop()
