"""``qcdc up``'s start: it waits as long as it is told to, a part that does not start is
reported with what its log got in this run (not with what an earlier run left there), and
the demo's seed stops at its first refused command.

NATS, the streams and the mail sink are real; the services are stand-ins (a process that
never answers, one that fails at once), so that the outcome does not depend on timing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services import embedded
from services.embedded import EmbeddedPorts, EmbeddedSystem, StartupFailed
from services.natsd import free_port
from tests.support import patience

pytestmark = pytest.mark.slow

EARLIER_RUN = "an earlier run's last words"
NEVER_ANSWERS = "import time; print('this run: starting', flush=True); time.sleep(600)"
FAILS_AT_ONCE = "print('this run: the database is not there', flush=True); raise SystemExit(3)"


def _ports() -> EmbeddedPorts:
    names = ("nats", "plans", "reports", "notify", "smtp", "portal")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {name: free_port() for name in names}
    return EmbeddedPorts(**ports)


def _one_fails(name: str) -> dict[str, str]:
    """What the services run: ``name`` fails at once, the others never answer."""
    return {**dict.fromkeys(embedded.SERVICES, NEVER_ANSWERS), name: FAILS_AT_ONCE}


def _failed_start(up: EmbeddedSystem) -> str:
    """Why ``up`` did not start (it must not)."""
    with pytest.raises(StartupFailed) as failed:
        up.start()
    return str(failed.value)


@pytest.fixture
def services_run(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Replaces each service's command by a Python one-liner (per service name)."""

    def use(code: dict[str, str]) -> None:
        monkeypatch.setattr(
            embedded, "_serve_command", lambda name: [sys.executable, "-c", code[name]]
        )

    return use


@pytest.fixture
def system(tmp_path: Path) -> Iterator[Callable[[float], EmbeddedSystem]]:
    """An embedded system on tmp_path whose logs already hold an earlier run's lines."""
    made: list[EmbeddedSystem] = []

    def make(start_timeout: float) -> EmbeddedSystem:
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        for name in (*embedded.SERVICES, "mailsink"):
            (logs / f"{name}.log").write_text(f"{EARLIER_RUN} ({name})\n", encoding="utf-8")
        made.append(EmbeddedSystem(tmp_path, _ports(), start_timeout=start_timeout))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def test_a_service_that_never_answers_fails_the_start_after_the_start_timeout(
    system: Callable[[float], EmbeddedSystem],
    services_run: Callable[[dict[str, str]], None],
) -> None:
    services_run(dict.fromkeys(embedded.SERVICES, NEVER_ANSWERS))
    up = system(2.0)
    message = _failed_start(up)
    assert message.startswith("plans did not answer"), message
    assert "within 2 s of the start (--start-timeout, QCDC_START_TIMEOUT)" in message
    assert EARLIER_RUN not in message
    assert all(child.exited() is None for child in up.services)  # given up on, not dead


@pytest.mark.parametrize("failing", ["plans", "notify"])
def test_a_service_failing_at_once_is_reported_with_this_runs_log_lines_only(
    system: Callable[[float], EmbeddedSystem],
    services_run: Callable[[dict[str, str]], None],
    failing: str,
) -> None:
    # All parts are watched at once: notify's failure does not wait for plans' time limit,
    # though plans, started before it, never answers.
    services_run(_one_fails(failing))
    up = system(120.0)
    message = _failed_start(up)
    assert message.startswith(f"{failing} exited with code 3 while starting"), message
    assert message.rstrip().endswith("this run: the database is not there")
    assert EARLIER_RUN not in message
    log = (up.logs / f"{failing}.log").read_text(encoding="utf-8")
    assert log.startswith(EARLIER_RUN)  # kept in the file, only not shown


def test_the_demo_seed_stops_at_a_refused_command_and_says_why(tmp_path: Path) -> None:
    # Both demo commands run in one process; the first refusal ends it with its reason.
    from services.demo_seed import plan_file

    env = {**os.environ, "QCDC_DATA_DIR": str(tmp_path)}
    env.pop("QCDC_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "services.demo_seed", "99", str(plan_file())],
        env=env,
        capture_output=True,
        text=True,
        timeout=patience(120),
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == "demo: "  # the plan's command never ran
    assert "no province '99'" in done.stderr
    assert "qcdc units import-admin --province 99 --demo-contacts failed" in done.stderr
