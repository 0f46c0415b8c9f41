"""docs/integrators.md runs: its shell block against the real ``qcdc`` command, its Python
files (each block names its file in its first line) against a secured nats-server with the
users ``qcdc nats config`` generates and real events, as a subtree integrator and a
province-wide one would run them, and the webhook check against a delivery signed by
notify's own signing code."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from services.nats_auth import read_env_file
from services.notify.adapters.webhook import new_standard_secret, signature_headers
from services.notify.domain.model import SignatureScheme
from services.notify.handlers.subscriptions import cloudevent_json
from shared.bus.envelope import decode, encode
from tests.integrator_bus import (
    REGISTRY,
    ROOT,
    SecuredBus,
    deadline_events,
    provision_streams,
    publish_events,
    publish_forged,
    start_secured_bus,
    unit_events,
)
from tests.support import eventually, patience

DOC = ROOT / "docs" / "integrators.md"
SUBTREE_USER = "integrator-egov-h801"
PROVINCE_USER = "integrator-egov"
INTEGRATORS = ("egov", "egov-h801:H801")
PAST = datetime(2026, 1, 1, tzinfo=UTC)
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
FILE_NAME = re.compile(r"^# (\w+\.py):")


@dataclass
class Snippets:
    shell: list[str]
    files: dict[str, str]


def snippets() -> Snippets:
    """Every fenced block of the page: shell commands, or Python files named in their
    first line. Any other block would be a snippet nobody runs: refused."""
    shell: list[str] = []
    files: dict[str, str] = {}
    for language, code in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        if language == "sh":
            shell.append(code)
            continue
        assert language == "python", f"a {language or 'plain'} block the suite cannot run"
        named = FILE_NAME.match(code)
        assert named, f"a Python block must start with '# <file>.py:': {code[:60]!r}"
        files[named.group(1)] = code
    return Snippets(shell, files)


def test_the_page_has_the_snippets_it_promises() -> None:
    found = snippets()
    assert len(found.shell) == 1
    assert set(found.files) == {
        "qcdc_bus.py",
        "follow.py",
        "replay.py",
        "cloudevent.py",
        "webhook.py",
    }
    for name, code in found.files.items():  # the public contract only, as an outsider has it
        assert not re.search(r"^\s*(from|import) (shared|services)\b", code, re.M), name


def test_the_credentials_block_makes_what_the_page_says(tmp_path: Path) -> None:
    rows = ["code,name,kind,parent_code"]
    rows += [f"{u.code},Đơn vị {u.code},{u.kind},{','.join(u.path[-2:-1])}" for u in REGISTRY]
    (tmp_path / "units.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    scripts = str(Path(sys.executable).parent)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippets().shell[0]],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{scripts}:{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=patience(120),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "PASSWORD" not in done.stdout
    shown = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert shown["QCDC_NATS_USER"] == SUBTREE_USER
    assert shown["QCDC_SUBTREE"] == "T89.H801"
    assert shown["QCDC_NATS_INBOX_PREFIX"] == f"_INBOX.{SUBTREE_USER}"
    credentials = tmp_path / "generated" / "credentials"
    assert read_env_file(credentials / f"{PROVINCE_USER}.env")["QCDC_NATS_PASSWORD"]
    assert "QCDC_SUBTREE" not in read_env_file(credentials / f"{PROVINCE_USER}.env")


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[SecuredBus]:
    bus = start_secured_bus(tmp_path / "nats", integrators=INTEGRATORS)
    asyncio.run(provision_streams(bus))
    yield bus
    bus.server.stop()


def _folder(tmp_path: Path, user: str) -> Path:
    """The page's Python files, written where the user's programs run."""
    folder = tmp_path / user
    folder.mkdir()
    for name, code in snippets().files.items():
        (folder / name).write_text(code, encoding="utf-8")
    return folder


def _run(folder: Path, bus: SecuredBus, user: str, *args: str) -> list[list[str]]:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env={**os.environ, **bus.env(user)},
        capture_output=True,
        text=True,
        timeout=patience(120),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line.split(" ", 2) for line in done.stdout.splitlines()]


def _ids(sent: list[tuple[str, dict[str, str]]], subtree: list[str] | None) -> list[str]:
    return [
        headers["ce-id"]
        for subject, headers in sent
        if subject.startswith(("qcdc.v1.deadline.", "qcdc.v1.report."))
        and (subtree is None or subject.split(".")[4:6] == subtree)
    ]


def test_a_subtree_integrator_follows_replays_and_reads_cloudevents(
    bus: SecuredBus, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, SUBTREE_USER)
    sent = asyncio.run(publish_events(bus, unit_events(), at=PAST))
    sent += asyncio.run(publish_events(bus, deadline_events(step=0)))
    first = _ids(sent, ["T89", "H801"])
    assert len(first) == 1  # X80101's missed deadline; H802's commune is not in the subtree

    followed = _run(folder, bus, SUBTREE_USER, "follow.py", "--once")
    assert followed == [["handled", first[0], "qcdc.v1.deadline.missed.T89.H801.X80101"]]
    assert _run(folder, bus, SUBTREE_USER, "follow.py", "--once") == []  # resumed: nothing new

    later = _ids(asyncio.run(publish_events(bus, deadline_events(step=1))), ["T89", "H801"])
    forged = asyncio.run(publish_forged(bus, deadline_events(step=2)[0]))
    again = _run(folder, bus, SUBTREE_USER, "follow.py", "--once")
    assert [line[:2] for line in again] == [["handled", later[0]], ["rejected", forged]]
    assert again[1][2] == "Nats-Msg-Id is not the ce-id"
    database = folder / "qcdc.sqlite3"
    assert _missed(database) == [("ob-X80101-0", "X80101"), ("ob-X80101-1", "X80101")]

    replayed = _run(folder, bus, SUBTREE_USER, "replay.py", "2026-01-01")
    assert [line[:2] for line in replayed] == [
        ["duplicate", first[0]],
        ["duplicate", later[0]],
        ["rejected", forged],
    ]
    assert len(_missed(database)) == 2  # a replay has no second effect

    events = _run(folder, bus, SUBTREE_USER, "cloudevent.py", "2026-01-01")
    assert [line[:2] for line in events[:2]] == [
        ["qcdc.deadline.missed.v1", first[0]],
        ["qcdc.deadline.missed.v1", later[0]],
    ]
    assert events[0][2].endswith("T89 H801 X80101")


def test_an_effect_that_fails_comes_back_and_is_done_once(bus: SecuredBus, tmp_path: Path) -> None:
    """``process`` naks a message whose effect fails, writing nothing; the server delivers
    it again after the delay, and it is handled then, once."""
    folder = _folder(tmp_path, SUBTREE_USER)
    with sqlite3.connect(folder / "qcdc.sqlite3") as db:  # the integrator's disk is full
        db.execute("CREATE TABLE missed (obligation_id TEXT, unit_code TEXT)")
        db.execute(
            "CREATE TRIGGER full BEFORE INSERT ON missed BEGIN SELECT RAISE(FAIL, 'disk full'); END"
        )
    ce_id = _ids(asyncio.run(publish_events(bus, deadline_events())), ["T89", "H801"])[0]
    failed = _run(folder, bus, SUBTREE_USER, "follow.py", "--once")
    assert failed == [["failed", ce_id, "disk full"]]
    with sqlite3.connect(folder / "qcdc.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM handled").fetchone() == (0,)  # nothing kept
        db.execute("DROP TRIGGER full")

    async def redelivered() -> list[list[str]]:
        return await asyncio.to_thread(_run, folder, bus, SUBTREE_USER, "follow.py", "--once")

    again = asyncio.run(eventually(redelivered))
    assert [line[:2] for line in again] == [["handled", ce_id]]
    assert _missed(folder / "qcdc.sqlite3") == [("ob-X80101-0", "X80101")]


def _missed(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as db:
        return sorted(db.execute("SELECT obligation_id, unit_code FROM missed").fetchall())


def test_a_province_wide_integrator_follows_every_unit(bus: SecuredBus, tmp_path: Path) -> None:
    folder = _folder(tmp_path, PROVINCE_USER)
    sent = asyncio.run(publish_events(bus, unit_events(), at=PAST))
    sent += asyncio.run(publish_events(bus, deadline_events()))
    followed = _run(folder, bus, PROVINCE_USER, "follow.py", "--once")
    assert [line[:2] for line in followed] == [["handled", i] for i in _ids(sent, None)]
    replayed = _run(folder, bus, PROVINCE_USER, "replay.py", "2026-01-01")
    assert [line[:2] for line in replayed] == [["duplicate", i] for i in _ids(sent, None)]


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_webhook_check_accepts_notifys_signature_and_nothing_else(tmp_path: Path) -> None:
    webhook = _module(_folder(tmp_path, "receiver") / "webhook.py")
    secret = new_standard_secret()
    subject, headers, data = encode(
        deadline_events()[0], source="/qcdc/reports", correlation_id="w"
    )
    envelope, event_sent = decode(subject, headers, data)
    body = cloudevent_json(event_sent, envelope).encode()  # exactly what notify POSTs
    now = int(datetime.now(UTC).timestamp())
    signed = signature_headers(SignatureScheme.STANDARD, secret, "dl-1", body, now)
    delivery = {"content-type": "application/cloudevents+json; charset=utf-8", **signed}

    event = webhook.verified(secret, body, delivery)
    assert event is not None
    assert (event.get_id(), event.get_type()) == (headers["ce-id"], "qcdc.deadline.missed.v1")
    assert event.get_data()["obligation"]["unit_code"] == "X80101"
    assert webhook.verified(secret, body.replace(b"X80101", b"X80102"), delivery) is None
    assert webhook.verified(new_standard_secret(), body, delivery) is None
    stale = signature_headers(SignatureScheme.STANDARD, secret, "dl-1", body, now - 3600)
    assert webhook.verified(secret, body, {**delivery, **stale}) is None
