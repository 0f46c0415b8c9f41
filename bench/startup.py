"""Benchmark: how long a person waits for qcdc to start, against the bare interpreter's start.

Figures, each the median of ``--repeat`` runs (the raw runs are printed too):

- ``help_s``: ``qcdc --help`` (the console script next to this Python), and its CPU time.
- ``service_ready_s``: ``qcdc serve <service>`` from launch until ``/readyz`` answers 200 (ready)
  with ``"nats": "ok"``, on a fresh data folder and a fresh nats-server
  (``sync_interval: always``, started beforehand and not timed). A service opens its HTTP
  port only once its start-up is complete (database migrated, NATS connected, streams
  there, every durable consumer bound, the outbox relay running), so that first answer is
  "ready". ``service_restart_s``: the same service started again on the same data and
  NATS (nothing left to migrate, consumers already there). ``service_cpu_s``: the CPU the
  service process used until ready.
- ``up_no_seed_s``: ``qcdc up --no-seed`` on a fresh data folder and free ports until it
  prints ``Ctrl-C to stop.`` (NATS, streams, mail sink and the three services ready).
- ``up_seeded_s``: ``qcdc up`` as ``make run`` starts it the first time (seeding the demo)
  until the same line; this is the headline "qcdc up" figure. ``up_seeded_demo_s``: until
  the reports service lists the demo plan's obligations, which reach it over the bus.

Baseline: ``python -c pass`` with the same interpreter, in the same run; every figure is
also given as a ratio to it. Run from the repository root (the seed's plan file is there):

    python -m bench.startup [--repeat 3] [--service reports] [--skip-up]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.natsd import NatsServer, free_port

HOST = "127.0.0.1"
POLL_SECONDS = 0.02
TARGETS = {"help_s": 0.5, "service_ready_s": 3.0, "up_seeded_s": 10.0}
"""Issue 9's done-when figures."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def qcdc_command() -> list[str]:
    """The console script installed beside this interpreter, as a person runs it."""
    script = Path(sys.executable).parent / "qcdc"
    if script.exists():
        return [str(script)]
    found = shutil.which("qcdc")
    if found is None:
        raise SystemExit("qcdc is not installed next to this Python (pip install -e .)")
    return [found]


def _quiet_env(**extra: str) -> dict[str, str]:
    """The caller's environment without QCDC_ settings that would change what is measured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QCDC_")}
    env.update(extra)
    return env


# --- one-shot commands ---------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float


def run_to_exit(command: list[str], *, expect: bytes = b"") -> Run:
    """Wall and CPU time of a command that exits; its output must contain ``expect``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=_quiet_env(), check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or expect not in done.stdout:
        raise RuntimeError(f"{command} failed ({done.returncode}):\n{done.stdout!r}{done.stderr!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu)


# --- one service ---------------------------------------------------------------------------


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc); 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _healthy(client: httpx.Client, url: str) -> bool:
    try:
        response = client.get(f"{url}/readyz")
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _until(ready: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout} s")
        time.sleep(POLL_SECONDS)


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve_until_ready(
    service: str, nats_url: str, data_dir: Path, timeout: float
) -> tuple[float, float]:
    """(seconds from launch to ready, CPU seconds the service used until then)."""
    port = free_port()
    env = _quiet_env(
        QCDC_NATS_URL=nats_url,
        QCDC_DATA_DIR=str(data_dir),
        QCDC_HTTP_HOST=HOST,
        QCDC_HTTP_PORT=str(port),
        QCDC_LOG_LEVEL="WARNING",
    )
    log_path = data_dir / f"{service}.log"
    with log_path.open("ab") as output, httpx.Client(timeout=2.0) as client:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*qcdc_command(), "serve", service], env=env, stdout=output, stderr=output
        )
        try:
            _until(lambda: _healthy(client, f"http://{HOST}:{port}"), process, timeout)
            elapsed = time.perf_counter() - started
            cpu = _process_cpu(process.pid)
        except RuntimeError as exc:
            raise RuntimeError(f"qcdc serve {service}: {exc}; see {log_path}") from exc
        finally:
            _stop(process)
    return elapsed, cpu


def service_runs(service: str, timeout: float) -> dict[str, float]:
    """A first start on fresh data and NATS, then a restart on the same."""
    with tempfile.TemporaryDirectory(prefix="qcdc-bench-startup-") as tmp:
        root = Path(tmp)
        nats = NatsServer(root / "nats", free_port())
        nats.start()
        try:
            first, cpu = serve_until_ready(service, nats.url, root, timeout)
            again, _ = serve_until_ready(service, nats.url, root, timeout)
        finally:
            nats.stop()
    return {"service_ready_s": first, "service_cpu_s": cpu, "service_restart_s": again}


# --- qcdc up -------------------------------------------------------------------------------


def _read_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    """The process's stdout up to and including ``marker``."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"no {marker!r} after {timeout} s:\n{seen.decode(errors='replace')}")
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"exited before {marker!r}:\n{seen.decode(errors='replace')}")
            seen += chunk
    return seen


def _demo_obligations(client: httpx.Client, url: str) -> bool:
    try:
        response = client.get(f"{url}/obligations", params={"status": "open"})
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and bool(response.json())


def up_until_ready(*, seed: bool, timeout: float) -> dict[str, float]:
    names = ("nats", "plans", "reports", "notify", "smtp")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {name: free_port() for name in names}
    with tempfile.TemporaryDirectory(prefix="qcdc-bench-up-") as tmp:
        command = [*qcdc_command(), "up", "--data-dir", f"{tmp}/var"]
        command += [arg for name in names for arg in (f"--{name}-port", str(ports[name]))]
        command.append("--seed" if seed else "--no-seed")
        errors = Path(tmp) / "up.err"
        with errors.open("wb") as stderr:
            started = time.perf_counter()
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, env=_quiet_env()
            )
            try:
                try:
                    _read_until(process, b"Ctrl-C to stop.", timeout)
                except RuntimeError as exc:
                    message = errors.read_text(errors="replace")
                    raise RuntimeError(f"qcdc up: {exc}\n{message}") from exc
                figures = {"up_s": time.perf_counter() - started}
                if seed:
                    reports = f"http://{HOST}:{ports['reports']}"
                    with httpx.Client(timeout=2.0) as client:
                        _until(lambda: _demo_obligations(client, reports), process, timeout)
                    figures["demo_s"] = time.perf_counter() - started
            finally:
                _stop(process, signal.SIGINT)
    return figures


# --- the run -------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[float]] = {}
    load_at_start = round(os.getloadavg()[0], 2)

    def add(name: str, value: float) -> None:
        runs.setdefault(name, []).append(value)

    python = [sys.executable, "-c", "pass"]
    help_command = [*qcdc_command(), "--help"]
    # Interleaved, so that a busy moment of the machine spreads over every figure alike.
    for round_ in range(args.repeat):
        log(f"round {round_ + 1}/{args.repeat}")
        for _ in range(args.quick_repeat):
            add("python_pass_s", run_to_exit(python).wall_s)
            help_run = run_to_exit(help_command, expect=b"serve")
            add("help_s", help_run.wall_s)
            add("help_cpu_s", help_run.cpu_s)
        for name, value in service_runs(args.service, args.timeout).items():
            add(name, value)
        if not args.skip_up:
            add("up_no_seed_s", up_until_ready(seed=False, timeout=args.timeout)["up_s"])
            seeded = up_until_ready(seed=True, timeout=args.timeout)
            add("up_seeded_s", seeded["up_s"])
            add("up_seeded_demo_s", seeded["demo_s"])
        log("  " + ", ".join(f"{k}={v[-1]:.3f}" for k, v in runs.items()))

    figures = {name: median(values) for name, values in runs.items()}
    baseline = figures.pop("python_pass_s")
    return {
        "bench": "startup",
        "service": args.service,
        "repeat": args.repeat,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}",
            "load_1m_at_start": load_at_start,
            "load_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "baseline": {"python_pass_s": baseline},
        "figures": figures,
        "ratios": {
            name: round(value / baseline, 1)
            for name, value in figures.items()
            if name.endswith("_s") and not name.endswith("cpu_s")
        },
        "targets": TARGETS,
        "met": {name: figures[name] < limit for name, limit in TARGETS.items() if name in figures},
        "runs": {name: [round(v, 4) for v in values] for name, values in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument(
        "--quick-repeat", type=int, default=5, help="python -c pass and qcdc --help per round"
    )
    parser.add_argument("--service", choices=("plans", "reports", "notify"), default="reports")
    parser.add_argument("--skip-up", action="store_true", help="do not measure qcdc up")
    parser.add_argument("--timeout", type=float, default=180.0, help="per start, in seconds")
    print(json.dumps(measure(parser.parse_args())), flush=True)  # one line: python -m bench


if __name__ == "__main__":
    main()
