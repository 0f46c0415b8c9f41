"""Keeping ``qcdc up``'s children running: restarts with backoff, a limit, a state file.

A child (nats-server or each node of a cluster, a service, the mail sink) that exits while
the system runs is started again after a delay that doubles with each failure in the
recent window (0.5 s, 1 s, 2 s … up to 30 s); each restart is printed, written as a
separator into the child's log, and counted in the state file. A child that fails
``max_failures`` times within ``window`` seconds is not restarted again: the supervisor
stops everything and shows its last lines.

The state file (``<data>/run/qcdc.json``) tells other terminals what runs on that data
folder: the supervisor's pid, each child's pid, port, state and restarts. ``qcdc status``
reads it; ``qcdc down`` sends SIGTERM to the supervisor's pid and waits for it to go.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.files import private_dir

STATE_FILE = Path("run") / "qcdc.json"


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a child that exited, and when to give up on it."""

    max_failures: int = 5
    """Failures within ``window`` seconds after which the system stops."""
    window: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, recent_failures: int) -> float:
        """Before the next start, after ``recent_failures`` (≥ 1) failures in the window."""
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, recent_failures - 1)))


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


def separator(name: str, start: int) -> bytes:
    """The line that opens one run of a child in its log: when, by which ``qcdc up``."""
    when = datetime.now(UTC).isoformat(timespec="seconds")
    what = "start" if start == 0 else f"restart {start}"
    return f"===== {when} qcdc up (pid {os.getpid()}): {name} {what} =====\n".encode()


@dataclass
class Child:
    """A supervised process. ``launch`` starts it (appending to ``log_path``) and returns
    it with the offset where this run's lines begin; ``probe`` says whether it serves."""

    name: str
    log_path: Path
    launch: Callable[[int], tuple[subprocess.Popen[bytes], int]]
    probe: Callable[[], bool]
    address: str = ""
    process: subprocess.Popen[bytes] | None = None
    log_offset: int = 0
    restarts: int = 0
    ready: bool = False
    last_exit: int | None = None
    last_restart_at: str | None = None
    restart_at: float | None = field(default=None, repr=False)
    failures: deque[float] = field(default_factory=deque, repr=False)

    def start(self) -> None:
        self.process, self.log_offset = self.launch(self.restarts)
        self.ready = False

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, self.log_offset, lines)

    @property
    def state(self) -> str:
        if self.process is None:
            return "restarting" if self.restart_at is not None else "stopped"
        return "ready" if self.ready else "starting"

    def describe(self) -> dict[str, Any]:
        return {
            "pid": self.process.pid if self.process is not None else None,
            "state": self.state,
            "address": self.address,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_restart_at": self.last_restart_at,
            "log": str(self.log_path),
        }


class GaveUp(Exception):
    """A child kept failing: the message names it and shows the end of its log."""


@dataclass
class Supervisor:
    """Tends the children: called every tick by ``qcdc up``'s main loop."""

    children: list[Child]
    policy: RestartPolicy
    say: Callable[[str], None]

    def tend(self, now: float) -> bool:
        """Restart what exited, when its delay has passed; True if anything changed.
        Raises :class:`GaveUp` for a child that failed too often."""
        changed = False
        for child in self.children:
            changed = self._tend(child, now) or changed
        return changed

    def _tend(self, child: Child, now: float) -> bool:
        code = child.exited()
        if code is not None:
            self._exited(child, code, now)
            return True
        if child.process is None and child.restart_at is not None and now >= child.restart_at:
            self._restart(child, now)
            return True
        if child.process is not None and not child.ready and child.probe():
            child.ready = True
            if child.restarts:
                self.say(f"{child.name} is serving again (restart {child.restarts})")
            return True
        return False

    def _exited(self, child: Child, code: int, now: float) -> None:
        child.process = None
        child.ready = False
        child.last_exit = code
        self._failed(child, now, f"exited with code {code}")

    def _failed(self, child: Child, now: float, what: str) -> None:
        child.failures.append(now)
        while child.failures and child.failures[0] < now - self.policy.window:
            child.failures.popleft()
        recent = len(child.failures)
        if recent >= self.policy.max_failures:
            child.restart_at = None
            raise GaveUp(
                f"{child.name} {what}: {recent} failures within {self.policy.window:g} s "
                f"(--max-restarts, --restart-window), so it is not started again; stopping "
                f"everything. The end of {child.log_path} in its last run:\n{child.log_tail()}"
            )
        delay = self.policy.delay(recent)
        child.restart_at = now + delay
        self.say(f"{child.name} {what}; restarting it in {delay:g} s")

    def _restart(self, child: Child, now: float) -> None:
        child.restart_at = None
        child.restarts += 1
        child.last_restart_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            child.start()
        except (OSError, TimeoutError) as exc:
            child.process = None
            self._failed(child, now, f"could not be started ({exc})")
            return
        assert child.process is not None
        self.say(f"{child.name} restarted (restart {child.restarts}, pid {child.process.pid})")


# --- the state file ------------------------------------------------------------------------


def state_path(root: Path) -> Path:
    return root / STATE_FILE


def write_state(root: Path, state: dict[str, Any]) -> None:
    """Replace the state file at once (write, then rename): a reader never sees half."""
    path = state_path(root)
    private_dir(path.parent)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    os.replace(temporary, path)


def read_state(root: Path) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(state_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found


def remove_state(root: Path) -> None:
    state_path(root).unlink(missing_ok=True)


def supervisor_alive(state: dict[str, Any]) -> bool:
    """Whether the state file's ``qcdc up`` still runs (its pid alive, and still a qcdc up:
    a pid is reused once its process is gone)."""
    pid = int(state.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc here: the pid alone has to do
    return b"up" in command.split(b"\0")


def orphans(state: dict[str, Any]) -> dict[str, int]:
    """Parts of a ``qcdc up`` that is gone (killed with SIGKILL: its children run in their
    own process groups and outlive it) which still run: name → pid, in the state file's
    order. A pid counts only while its process still mentions the data folder (a pid is
    reused once its process is gone)."""
    marker = str(state.get("data_dir", "")).encode()
    found: dict[str, int] = {}
    for name, child in state.get("children", {}).items():
        pid = child.get("pid")
        if marker and pid and _mentions(int(pid), marker):
            found[name] = int(pid)
    return found


def _mentions(pid: int, marker: bytes) -> bool:
    try:
        proc = Path(f"/proc/{pid}")
        return (
            marker in (proc / "cmdline").read_bytes() or marker in (proc / "environ").read_bytes()
        )
    except OSError:
        return False


def stop_orphans(found: dict[str, int], timeout: float) -> list[str]:
    """SIGTERM the services and the mail sink, then nats-server (the services drain while
    it is up); SIGKILL what still runs after ``timeout``. The names that had to be killed."""
    killed: list[str] = []
    nats = {name: pid for name, pid in found.items() if is_nats(name)}
    for group in ({n: p for n, p in found.items() if n not in nats}, nats):
        for pid in group.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(pid) for pid in group.values()):
            time.sleep(0.1)
        for name, pid in group.items():
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.append(name)
    return killed


def is_nats(name: str) -> bool:
    """``nats``, or a cluster node's ``nats-<n>``."""
    return name == "nats" or name.startswith("nats-")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; its parent has not collected it yet


def stop_supervisor(state: dict[str, Any], timeout: float) -> bool:
    """SIGTERM ``qcdc up`` and wait until it is gone; False if it still runs at the end."""
    pid = int(state["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not supervisor_alive(state):
            return True
        time.sleep(0.1)
    return not supervisor_alive(state)
