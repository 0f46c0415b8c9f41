"""``qcdc up``'s supervision without the system: restarts with a doubling delay, a child that
keeps failing ends the run with its last lines, the state file, and the CLI's refusal to
work on a data folder that does not exist."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services import embedded
from services.cli import app
from services.embedded import already_running
from services.supervisor import (
    Child,
    GaveUp,
    RestartPolicy,
    Supervisor,
    orphans,
    read_state,
    separator,
    supervisor_alive,
    write_state,
)
from tests.support import patience


def test_the_delay_doubles_with_each_recent_failure_up_to_its_cap() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=4.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def _crashing_child(tmp_path: Path, said: str = "boom") -> Child:
    """A child that writes one line and exits with code 3, every time it is started."""
    log_path = tmp_path / "crashing.log"
    script = f"import sys; print({said!r}, flush=True); sys.exit(3)"

    def launch(start: int) -> tuple[subprocess.Popen[bytes], int]:
        with log_path.open("ab") as log:
            offset = log.tell()
            log.write(separator("crashing", start))
            log.flush()
            process = subprocess.Popen([sys.executable, "-c", script], stdout=log)
        process.wait()  # exited before the supervisor looks: no timing in the test
        return process, offset

    return Child("crashing", log_path, launch, lambda: False)


def test_a_child_that_exits_is_restarted_after_its_delay_and_counted(tmp_path: Path) -> None:
    child = _crashing_child(tmp_path)
    child.start()
    said: list[str] = []
    supervisor = Supervisor([child], RestartPolicy(max_failures=3, window=60), said.append)

    assert supervisor.tend(100.0)
    assert child.state == "restarting" and child.last_exit == 3 and child.restarts == 0
    assert not supervisor.tend(100.4)  # the first delay (0.5 s) has not passed
    assert supervisor.tend(100.5)
    assert child.restarts == 1 and child.process is not None
    assert said == [
        "crashing exited with code 3; restarting it in 0.5 s",
        f"crashing restarted (restart 1, pid {child.process.pid})",
    ]
    assert child.describe()["restarts"] == 1
    log = child.log_path.read_text()
    assert "crashing start =====" in log and "crashing restart 1 =====" in log
    assert f"qcdc up (pid {os.getpid()})" in log


def test_a_child_that_keeps_failing_stops_the_system_naming_it(tmp_path: Path) -> None:
    child = _crashing_child(tmp_path, said="lỗi cấu hình")
    child.start()
    supervisor = Supervisor([child], RestartPolicy(max_failures=3, window=10), lambda _: None)
    supervisor.tend(0.0)  # failure 1: restart in 0.5 s
    supervisor.tend(0.5)  # restarted (it exits again at once)
    supervisor.tend(0.6)  # failure 2: restart in 1 s
    supervisor.tend(1.6)
    with pytest.raises(GaveUp) as gave_up:
        supervisor.tend(1.7)  # failure 3 within 10 s
    message = str(gave_up.value)
    assert message.startswith("crashing exited with code 3: 3 failures within 10 s")
    assert "lỗi cấu hình" in message and "crashing restart 2 =====" in message
    assert "restart 1 =====" not in message  # the last run's lines only


def test_failures_outside_the_window_are_forgotten(tmp_path: Path) -> None:
    child = _crashing_child(tmp_path)
    child.start()
    supervisor = Supervisor([child], RestartPolicy(max_failures=2, window=10), lambda _: None)
    supervisor.tend(0.0)
    supervisor.tend(0.5)
    supervisor.tend(20.0)  # the second failure, but the first is 20 s old: restart again
    assert child.state == "restarting"
    assert child.restart_at == 20.5  # and the delay starts over


def test_the_state_file_names_a_live_supervisor_only(tmp_path: Path) -> None:
    write_state(tmp_path, {"pid": os.getpid(), "children": {}})
    state = read_state(tmp_path)
    assert state is not None
    assert (tmp_path / "run" / "qcdc.json").stat().st_mode & 0o077 == 0
    # This test's process is not a `qcdc up`: its pid alone does not make it one.
    assert supervisor_alive(state) is ("up" in sys.argv)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not supervisor_alive({"pid": gone.pid})


def test_commands_refuse_a_data_folder_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("QCDC_DATA_DIR", str(tmp_path))  # --data-dir sets it: restored after
    env = {"QCDC_DATABASE_URL": ""}
    for args in (["status"], ["down"], ["units", "list"], ["migrate", "plans"], ["doctor"]):
        result = CliRunner().invoke(app, ["--data-dir", str(missing), *args], env=env)
        assert result.exit_code == 2, (args, result.output)
        assert f"the data folder {missing} does not exist" in result.output
    assert not missing.exists()  # and nothing was created there
    helped = CliRunner().invoke(app, ["--data-dir", str(missing), "units", "--help"], env=env)
    assert helped.exit_code == 0, helped.output


def test_status_and_down_say_when_nothing_runs(tmp_path: Path) -> None:
    env = {"QCDC_DATA_DIR": str(tmp_path)}
    status = CliRunner().invoke(app, ["status"], env=env)
    assert status.exit_code == 1
    assert f"qcdc up is not running on {tmp_path}" in status.output
    down = CliRunner().invoke(app, ["down"], env=env)
    assert down.exit_code == 0
    assert "not running" in down.output


def test_down_stops_the_parts_a_killed_qcdc_up_left_running(tmp_path: Path) -> None:
    """``qcdc up`` killed outright leaves its parts running (each in its own process group):
    ``status`` names them, ``qcdc up`` refuses to start beside them, ``down`` stops them."""
    waits = "import sys; sys.stdin.read()"  # runs until stopped
    part = subprocess.Popen(
        [sys.executable, "-c", waits, str(tmp_path)], stdin=subprocess.PIPE, process_group=0
    )
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    children = {"reports": {"pid": part.pid}, "notify": {"pid": gone.pid}}
    write_state(tmp_path, {"pid": gone.pid, "data_dir": str(tmp_path), "children": children})
    try:
        state = read_state(tmp_path)
        assert state is not None and orphans(state) == {"reports": part.pid}
        assert orphans({**state, "data_dir": str(tmp_path / "other")}) == {}
        env = {"QCDC_DATA_DIR": str(tmp_path)}
        status = CliRunner().invoke(app, ["status"], env=env)
        assert status.exit_code == 1
        assert f"Parts it left running: reports (pid {part.pid})" in status.output
        assert already_running(tmp_path) == (
            f"parts of an earlier qcdc up on {tmp_path} still run (reports pid {part.pid}); "
            f"`qcdc --data-dir {tmp_path} down` stops them."
        )
        down = CliRunner().invoke(app, ["down"], env=env)
        assert down.exit_code == 0, down.output
        assert part.wait(patience(10)) == -signal.SIGTERM
        assert read_state(tmp_path) is None
    finally:
        part.kill()
        part.wait()


def _child_stopping_after(seconds: float | None) -> subprocess.Popen[bytes]:
    """A child that, on SIGTERM, exits after ``seconds`` (never, with None)."""
    on_term = (
        "signal.SIG_IGN" if seconds is None else f"lambda *_: (time.sleep({seconds}), sys.exit(0))"
    )
    script = (
        f"import signal, sys, time; signal.signal(signal.SIGTERM, {on_term}); "
        "print('up', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"up\n"
    return child


def test_a_stop_names_the_part_that_was_slow_and_the_one_it_had_to_kill(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slow_after = patience(1.0)  # a quick child's exit stays well under it
    monkeypatch.setattr(embedded, "SLOW_STOP_SECONDS", slow_after)
    quick, slow, stuck = (_child_stopping_after(s) for s in (0.0, slow_after + 0.5, None))
    grace = slow_after + patience(3)
    embedded._stop_processes([("quick", quick), ("slow", slow), ("stuck", stuck)], grace)
    said = capsys.readouterr().out
    assert "quick" not in said
    assert "slow took " in said and " s to stop" in said
    assert f"stuck did not stop within {grace:.0f} s; killing it" in said
    assert [p.returncode for p in (quick, slow, stuck)] == [0, 0, -signal.SIGKILL]
