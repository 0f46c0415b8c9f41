"""The example subscribers in examples/ (Python and Node.js), run as an integrator of the
H801 subtree would run them, against a real secured bus with real events: they receive
exactly the subtree's events, resume where they left off, replay from a point in time,
reject a message that is not a valid QCDC CloudEvent, and drop duplicates by ce-id."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integrator_bus import (
    ROOT,
    SecuredBus,
    deadline_events,
    npm_ready,
    provision_streams,
    publish_events,
    publish_forged,
    start_secured_bus,
    unit_events,
)
from tests.support import patience

USER = "integrator-egov-h801"
SUBTREE = ["T89", "H801"]
PAST = datetime(2026, 1, 1, tzinfo=UTC)
EXAMPLES = ROOT / "examples"


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[SecuredBus]:
    bus = start_secured_bus(tmp_path / "nats")
    asyncio.run(provision_streams(bus))
    yield bus
    bus.server.stop()


def _in_subtree(sent: list[tuple[str, dict[str, str]]]) -> list[str]:
    return [headers["ce-id"] for subject, headers in sent if subject.split(".")[4:6] == SUBTREE]


def _run(command: list[str], bus: SecuredBus, cwd: Path) -> dict[str, list[str]]:
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **bus.env(USER)},
        capture_output=True,
        text=True,
        timeout=patience(120),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcomes: dict[str, list[str]] = {"handled": [], "duplicate": [], "rejected": []}
    for line in done.stdout.splitlines():
        entry = json.loads(line)
        assert entry["subject"].split(".")[4:6] == SUBTREE, entry  # its subtree only
        outcomes[entry["outcome"]].append(entry["ce_id"])
        if entry["outcome"] == "rejected":
            assert "Nats-Msg-Id" in entry["reason"], entry
    return outcomes


def _python(tmp: Path) -> list[str]:
    return [sys.executable, str(EXAMPLES / "python" / "subscriber.py"), "--seen", str(tmp / "s")]


def _node(tmp: Path) -> list[str]:
    skip = npm_ready(EXAMPLES / "node")
    if skip:
        pytest.skip(skip)
    return ["node", str(EXAMPLES / "node" / "subscriber.mjs"), "--seen", str(tmp / "seen.txt")]


@pytest.mark.parametrize("language", ["python", "node"])
def test_an_example_subscriber_follows_a_subtree(
    language: str, bus: SecuredBus, tmp_path: Path
) -> None:
    example = _python(tmp_path) if language == "python" else _node(tmp_path)
    durable = ["--subtree", "T89.H801", "--durable", f"{USER}-{language}", "--once"]
    first = asyncio.run(publish_events(bus, unit_events(), at=PAST))
    first += asyncio.run(publish_events(bus, deadline_events()))
    expected = _in_subtree(first)
    assert len(expected) == 3  # H801, X80101 registered; X80101's missed deadline
    run = _run([*example, *durable], bus, tmp_path)
    assert run == {"handled": expected, "duplicate": [], "rejected": []}

    # It resumes: only what is new, and a forged message is rejected, not retried.
    later = asyncio.run(publish_events(bus, deadline_events(step=1)))
    forged = asyncio.run(publish_forged(bus, deadline_events(step=2)[0]))
    again = _run([*example, *durable], bus, tmp_path)
    assert again == {"handled": _in_subtree(later), "duplicate": [], "rejected": [forged]}

    # A replay from a time re-reads history: everything it handled is a duplicate now.
    replay = _run([*example, "--subtree", "T89.H801", "--since", PAST.isoformat()], bus, tmp_path)
    history = expected + _in_subtree(later)
    assert replay == {"handled": [], "duplicate": history, "rejected": [forged]}
