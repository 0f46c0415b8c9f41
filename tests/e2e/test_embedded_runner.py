"""``qcdc up`` as a person runs it: the demo seeds itself, a report submitted over HTTP comes
back as a Vietnamese receipt e-mail in the mail folder, Ctrl-C stops everything, a second
run resumes the same data, and a taken port is refused before anything starts."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from services.embedded import stop_bound
from services.natsd import free_port, port_is_free
from services.plans.handlers.unit_import import demo_contacts
from tests.bodies import report_body
from tests.support import patience

pytestmark = pytest.mark.slow

PORT_NAMES = ("nats", "plans", "reports", "notify", "smtp", "portal")
DEMO_UNIT = "03637"  # Xã Mường Kim, Lai Châu: the demo province is real (GSO codes)
DEMO_FOCAL_EMAIL = demo_contacts(DEMO_UNIT)["focal_email"]
START_SECONDS = 180.0
"""qcdc up starts (within its --start-timeout) and seeds the demo."""
PORT_ATTEMPTS = 5
STOP_SECONDS = stop_bound() + 15.0
"""qcdc up's own bound (each part using its whole grace, then killed) and a margin: past
it the supervisor itself is stuck. A part slow to stop is named in the output instead."""
T = TypeVar("T")


def _free_ports(nats_nodes: int = 1) -> dict[str, int]:
    """A free port for each part; with ``nats_nodes`` above 1, the ports after the NATS
    one are free too (``qcdc up --cluster`` gives them to the other nodes)."""
    while True:
        ports = {name: free_port() for name in PORT_NAMES}
        more = [ports["nats"] + n for n in range(1, nats_nodes)]
        taken = [*ports.values(), *more]
        if len(set(taken)) == len(taken) and all(port_is_free("127.0.0.1", p) for p in more):
            return ports


def _poll(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(0.2)


class PortTaken(Exception):
    """Another process bound one of the ports chosen after the choice: before qcdc up's
    check, or after it but before the part bound it."""


@dataclass
class Up:
    """A running ``qcdc up`` with its output in a file."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    ports: dict[str, int]
    output_path: Path

    @property
    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def wait_ready(self) -> None:
        def ready() -> bool | None:
            code = self.process.poll()
            if code == 2 and "is already in use" in self.output:
                raise PortTaken(self.output)  # at qcdc up's check: it started nothing
            if code == 1 and "address already in use" in self.output:
                # After the check, before a part bound it (another test's process took
                # it): qcdc up stopped every part; starting again is a restart.
                raise PortTaken(self.output)
            assert code is None, f"qcdc up exited with {code}:\n{self.output}"
            return True if "Ctrl-C to stop." in self.output else None

        _poll(ready, patience(START_SECONDS), f"'Ctrl-C to stop.' from qcdc up:\n{self.output}")

    def interrupt(self) -> int:
        """Ctrl-C; the exit code. A failure if qcdc up had to kill one of its parts, or
        does not stop in time itself (then it is killed)."""
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(patience(STOP_SECONDS))
            assert "did not stop" not in self.output, self.output + self.log_tails()
            return code
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            message = f"qcdc up did not stop in {STOP_SECONDS} s:\n{self.output}"
            raise AssertionError(message + self.log_tails()) from None

    def log_tails(self, lines: int = 15) -> str:
        """The end of every part's log, to show which one was stuck."""
        tails = []
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()
            tails.append(f"\n--- {log.name} ---\n" + "\n".join(text[-lines:]))
        return "".join(tails)


def _start(data_dir: Path, log_name: str, *options: str, nats_nodes: int = 1) -> Up:
    ports = _free_ports(nats_nodes)
    command = [sys.executable, "-m", "services", "up", "--data-dir", str(data_dir), *options]
    command += ["--start-timeout", str(patience(120))]
    for name, port in ports.items():
        command += [f"--{name}-port", str(port)]
    output_path = data_dir.parent / log_name
    with output_path.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    return Up(process, data_dir, ports, output_path)


def _started(data_dir: Path, log_name: str, *options: str, nats_nodes: int = 1) -> Up:
    """``qcdc up`` started and ready; again on other ports if one was taken meanwhile."""
    for _ in range(PORT_ATTEMPTS):
        up = _start(data_dir, log_name, *options, nats_nodes=nats_nodes)
        try:
            up.wait_ready()
        except PortTaken:
            continue
        except BaseException:
            if up.process.poll() is None:
                up.interrupt()
            raise
        return up
    raise AssertionError(f"a chosen port was taken {PORT_ATTEMPTS} times:\n{up.output}")


@pytest.fixture
def run_up(tmp_path: Path) -> Iterator[Callable[[str], Up]]:
    """Starts ``qcdc up`` on tmp_path/var; whatever a test leaves running is stopped."""
    started: list[Up] = []

    def start(log_name: str) -> Up:
        up = _started(tmp_path / "var", log_name)
        started.append(up)
        return up

    yield start
    for up in started:
        if up.process.poll() is None:
            up.interrupt()


def _leftovers(data_dir: Path) -> list[str]:
    """Processes whose command line or environment still mentions the data folder."""
    marker = str(data_dir).encode()
    found: list[str] = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (
                marker in (proc / "cmdline").read_bytes()
                or marker in (proc / "environ").read_bytes()
            ):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def _open_to_others(data_dir: Path) -> list[str]:
    """Folders and files under the data folder (itself included) that anyone but their
    owner may read, write or enter: none (0700 folders, 0600 files)."""
    found = [data_dir, *data_dir.rglob("*")]
    kinds = {"sqlite": 0, "eml": 0, "attachment": 0}
    for path in found:
        kinds["sqlite"] += path.suffix == ".db"
        kinds["eml"] += path.suffix == ".eml"
        kinds["attachment"] += path.parent.parent.name == "attachments"
    assert all(kinds.values()), kinds  # the check below sees every kind of file
    return [
        f"{oct(path.lstat().st_mode & 0o777)} {path}"
        for path in found
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    ]


def _receipt_mail(mail_dir: Path, receipt_number: str) -> EmailMessage | None:
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        subject = str(message["Subject"])
        # The receiving unit gets a notice naming the same receipt; the receipt is "[Xác nhận]".
        if subject.startswith("[Xác nhận]") and receipt_number in subject:
            return message
    return None


def _submit_demo_report(reports: httpx.Client) -> dict[str, Any]:
    def open_obligations() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = reports.get(
            "/obligations", params={"unit": DEMO_UNIT, "status": "open"}
        ).json()
        return found or None  # obligations follow PlanIssued over the bus

    obligation = _poll(open_obligations, patience(30), f"open obligation of {DEMO_UNIT}")[0]
    response = reports.post(
        "/reports",
        json=report_body(
            obligation["id"],
            DEMO_UNIT,
            submitted_by="Nguyễn Thị Lan",
            narrative={"3": "Đã niêm yết công khai lịch tiếp công dân tại trụ sở."},
            indicators={"reception_sessions": 4, "citizens_received": 12},
        ),
        headers={"Idempotency-Key": "e2e-embedded-1"},
    )
    assert response.status_code == 201, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


def test_up_seeds_mails_a_receipt_stops_cleanly_and_resumes(
    run_up: Callable[[str], Up],
) -> None:
    up = run_up("first.out")
    with httpx.Client(base_url=up.url("plans"), timeout=patience(10)) as plans:
        units = plans.get("/units").json()
    assert units, "the demo units were not registered"
    assert "123/KH-UBND  issued" in up.output

    with httpx.Client(base_url=up.url("reports"), timeout=patience(10)) as reports:
        receipt = _submit_demo_report(reports)
        attached = reports.put(
            f"/reports/{receipt['report_id']}/attachments/bien-ban.pdf",
            content=b"%PDF-1.7 bien ban hoi nghi",
            headers={"Content-Type": "application/pdf"},
        )
        assert attached.status_code == 201, attached.text

    mail = _poll(
        lambda: _receipt_mail(up.data_dir / "mail", receipt["receipt_number"]),
        patience(30),
        f"e-mail for receipt {receipt['receipt_number']} in {up.data_dir / 'mail'}",
    )
    assert [a.addr_spec for a in mail["To"].addresses] == [DEMO_FOCAL_EMAIL]
    body = mail.get_body(("plain",))
    assert body is not None
    assert "Số tiếp nhận" in body.get_content()
    # `make run` prints the portal's address; the mail's link leads to its page.
    assert f"portal   {up.url('portal')}" in up.output
    assert f"{up.url('portal')}/bao-cao/{receipt['report_id']}" in body.get_content()
    with httpx.Client(base_url=up.url("portal"), timeout=patience(10)) as portal:
        public = portal.get("/cong-khai")
    assert public.status_code == 200 and "123/KH-UBND" in public.text

    assert _open_to_others(up.data_dir) == []

    running = _leftovers(up.data_dir)
    assert len(running) >= 5, running  # the check below sees nats, sink and services
    assert up.interrupt() == 0, up.output
    assert up.output.rstrip().endswith("stopped")
    assert all(port_is_free("127.0.0.1", port) for port in up.ports.values())
    assert _leftovers(up.data_dir) == []

    again = run_up("second.out")
    assert "resumed" in again.output
    with httpx.Client(base_url=again.url("plans"), timeout=patience(10)) as plans:
        assert len(plans.get("/units").json()) == len(units)
    with httpx.Client(base_url=again.url("reports"), timeout=patience(10)) as reports:
        kept = reports.get(f"/reports/{receipt['report_id']}")
    assert kept.status_code == 200, kept.text
    assert kept.json()["receipt_number"] == receipt["receipt_number"]
    assert again.interrupt() == 0, again.output


def test_up_refuses_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
    ports = _free_ports()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", ports["nats"]))
        taken.listen()
        command = [sys.executable, "-m", "services", "up", "--data-dir", str(tmp_path / "var")]
        for name, port in ports.items():
            command += [f"--{name}-port", str(port)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=patience(30))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"Port {ports['nats']}" in result.stderr
    assert "--nats-port" in result.stderr
    assert not (tmp_path / "var").exists()


def _qcdc(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A ``qcdc`` command from another terminal, on the same data folder."""
    command = [sys.executable, "-m", "services", "--data-dir", str(data_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=patience(60))


def _status(data_dir: Path) -> dict[str, Any]:
    done = _qcdc(data_dir, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    state: dict[str, Any] = json.loads(done.stdout)
    return state


def _submit_until_acknowledged(
    reports: httpx.Client, obligation: dict[str, Any], key: str
) -> dict[str, Any]:
    """As a client does: the same request, with the same Idempotency-Key, until it is
    acknowledged (201, or 200 when the first attempt was stored but its answer lost)."""

    def attempt() -> dict[str, Any] | None:
        try:
            response = reports.post(
                "/reports",
                json={"obligation_id": obligation["id"], "unit_code": DEMO_UNIT},
                headers={"Idempotency-Key": key},
            )
        except httpx.TransportError:
            return None  # the service is down or restarting
        if response.status_code >= 500:
            return None
        assert response.status_code in (200, 201), response.text
        receipt: dict[str, Any] = response.json()
        return receipt

    return _poll(attempt, patience(60), f"an acknowledgement of {key}")


def _receipt_counts(mail_dir: Path) -> Counter[str]:
    """How many receipt e-mails ("[Xác nhận] … <receipt number>") each receipt got."""
    counts: Counter[str] = Counter()
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        subject = str(message["Subject"])
        if subject.startswith("[Xác nhận]"):
            counts[subject.rsplit(" ", 1)[-1]] += 1
    return counts


def _demo_obligation(reports: httpx.Client) -> dict[str, Any]:
    """The demo commune's first obligation, once PlanIssued has reached reports."""
    found: list[dict[str, Any]] = _poll(
        lambda: reports.get("/obligations", params={"unit": DEMO_UNIT}).json() or None,
        patience(30),
        f"an obligation of {DEMO_UNIT}",
    )
    return found[0]


def _assert_each_mailed_once(mail_dir: Path, receipts: list[dict[str, Any]]) -> None:
    """Until every receipt's e-mail is in the mail folder; then each is there once."""
    numbers = {r["receipt_number"] for r in receipts}
    _poll(
        lambda: True if set(_receipt_counts(mail_dir)) >= numbers else None,
        patience(90),
        f"receipt e-mails for {sorted(numbers)}",
    )
    counts = _receipt_counts(mail_dir)
    assert {n: counts[n] for n in numbers} == dict.fromkeys(numbers, 1)


def test_up_restarts_a_killed_service_which_serves_again_and_loses_no_report(
    run_up: Callable[[str], Up],
) -> None:
    up = run_up("supervised.out")
    before = _status(up.data_dir)
    assert {c["state"] for c in before["children"].values()} == {"ready"}
    assert before["pid"] == up.process.pid
    killed = before["children"]["reports"]["pid"]

    receipts: list[dict[str, Any]] = []
    with httpx.Client(base_url=up.url("reports"), timeout=patience(10)) as reports:
        obligation = _demo_obligation(reports)
        for n in range(6):
            if n == 3:
                os.kill(killed, signal.SIGKILL)  # as the OOM killer would
            receipts.append(_submit_until_acknowledged(reports, obligation, f"supervised-{n}"))

        def restarted() -> dict[str, Any] | None:
            child: dict[str, Any] = _status(up.data_dir)["children"]["reports"]
            return child if child["state"] == "ready" else None

        child = _poll(restarted, patience(30), "reports ready again in qcdc status")
        assert child["restarts"] == 1 and child["last_exit"] == -signal.SIGKILL
        assert child["pid"] != killed
        for receipt in receipts:  # every acknowledged report is there, once
            kept = reports.get(f"/reports/{receipt['report_id']}")
            assert kept.status_code == 200, kept.text
        assert len({r["report_id"] for r in receipts}) == len(receipts)

    _assert_each_mailed_once(up.data_dir / "mail", receipts)
    assert "reports exited with code -9; restarting it in 0.5 s" in up.output
    assert "reports is serving again (restart 1)" in up.output
    log = (up.data_dir / "logs" / "reports.log").read_text(encoding="utf-8")
    assert f"qcdc up (pid {up.process.pid}): reports restart 1 =====" in log

    status = _qcdc(up.data_dir, "status")
    assert "reports" in status.stdout and "restarts 1" in status.stdout
    down = _qcdc(up.data_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert up.process.wait(patience(STOP_SECONDS)) == 0, up.output
    assert _leftovers(up.data_dir) == []
    assert _qcdc(up.data_dir, "status").returncode == 1


def test_up_stops_everything_when_a_service_keeps_failing_and_shows_its_last_lines(
    tmp_path: Path,
) -> None:
    up = _started(tmp_path / "var", "failing.out", "--no-seed", "--max-restarts", "2")
    try:
        reports = _status(up.data_dir)["children"]["reports"]["pid"]
        # A folder where its database was: every start of reports fails from now on.
        (up.data_dir / "reports.db").rename(up.data_dir / "reports.db.moved")
        (up.data_dir / "reports.db").mkdir()
        os.kill(reports, signal.SIGKILL)
        code = up.process.wait(patience(90))
    finally:
        if up.process.poll() is None:
            up.interrupt()
    output = up.output
    assert code == 1, output
    assert "reports exited with code -9; restarting it in 0.5 s" in output
    assert "reports restarted (restart 1" in output
    assert "2 failures within 60 s (--max-restarts, --restart-window)" in output
    # Its last words; the traceback is wrapped at 80 columns, even inside a long path.
    last_run = "".join(output.split("in its last run:", 1)[1].split())
    assert "Isadirectory" in last_run and "reports.db" in last_run
    log = (up.data_dir / "logs" / "reports.log").read_text(encoding="utf-8")
    assert log.count(f"qcdc up (pid {up.process.pid}): reports") == 2  # start, restart 1
    assert output.rstrip().endswith("stopped")
    assert _leftovers(up.data_dir) == []
    assert _qcdc(up.data_dir, "status").returncode == 1
