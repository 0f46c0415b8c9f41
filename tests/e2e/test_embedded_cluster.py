"""``qcdc up --cluster 3``: the bus is three nats-servers on loopback with every stream on
each; a node killed (SIGKILL) loses nothing, the system goes on, and the supervisor brings
the node back. Checked from stored data: the reports through the API (its database), the
stream, and the receipt e-mails in the mail sink's folder."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from tests.e2e.test_embedded_runner import (
    STOP_SECONDS,
    _assert_each_mailed_once,
    _demo_obligation,
    _leftovers,
    _poll,
    _qcdc,
    _started,
    _status,
    _submit_until_acknowledged,
)
from tests.support import patience

pytestmark = pytest.mark.slow

NODES = ("nats-1", "nats-2", "nats-3")


async def _reports_stream(url: str) -> tuple[int, str, int]:
    """The reports stream's replicas, its leader (a node's server name) and how many
    ReportSubmitted it holds."""
    nc = await nats.connect(url.split(","), connect_timeout=patience(5))
    try:
        js = nc.jetstream(timeout=patience(10))
        info = await js.stream_info("QCDC_REPORTS", subjects_filter="qcdc.v1.report.submitted.>")
    finally:
        await nc.close()
    assert info.cluster is not None and info.cluster.leader
    submitted = sum((info.state.subjects or {}).values())
    return info.config.num_replicas or 1, info.cluster.leader, submitted


def test_up_cluster_3_loses_nothing_when_a_node_is_killed_and_restarts_it(
    tmp_path: Path,
) -> None:
    up = _started(tmp_path / "var", "cluster.out", "--cluster", "3", nats_nodes=3)
    try:
        nats_url = ",".join(f"nats://127.0.0.1:{up.ports['nats'] + n}" for n in range(3))
        assert nats_url in up.output and "a cluster of 3 nodes" in up.output
        before = _status(up.data_dir)["children"]
        assert set(NODES) <= set(before) and "nats" not in before
        assert {before[name]["state"] for name in NODES} == {"ready"}
        for name in NODES:  # each node's own store under the data folder
            assert (up.data_dir / "nats" / "cluster" / f"qcdc-{name[-1]}" / "jetstream").is_dir()

        receipts: list[dict[str, Any]] = []
        with httpx.Client(base_url=up.url("reports"), timeout=patience(10)) as reports:
            obligation = _demo_obligation(reports)
            receipts.append(_submit_until_acknowledged(reports, obligation, "cluster-1"))
            # The node leading the reports' stream: its loss forces an election.
            replicas, leader, _ = asyncio.run(_reports_stream(nats_url))
            assert replicas == 3
            victim = f"nats-{leader.rsplit('-', 1)[1]}"
            killed = before[victim]["pid"]
            os.kill(killed, signal.SIGKILL)
            receipts.append(_submit_until_acknowledged(reports, obligation, "cluster-2"))
            for receipt in receipts:
                kept = reports.get(f"/reports/{receipt['report_id']}")
                assert kept.status_code == 200, kept.text
        assert len({r["report_id"] for r in receipts}) == 2

        _assert_each_mailed_once(up.data_dir / "mail", receipts)

        def restarted() -> dict[str, Any] | None:
            node: dict[str, Any] = _status(up.data_dir)["children"][victim]
            return node if node["state"] == "ready" else None

        node = _poll(restarted, patience(60), f"{victim} ready again in qcdc status")
        assert node["restarts"] == 1 and node["last_exit"] == -signal.SIGKILL
        assert node["pid"] != killed
        assert f"{victim} is serving again (restart 1)" in up.output
        # The stream holds each submission once, on a cluster whole again.
        replicas, _, submitted = asyncio.run(_reports_stream(nats_url))
        assert (replicas, submitted) == (3, 2)
        status = _qcdc(up.data_dir, "status")
        assert all(name in status.stdout for name in NODES), status.stdout

        down = _qcdc(up.data_dir, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert up.process.wait(patience(STOP_SECONDS)) == 0, up.output
    finally:
        if up.process.poll() is None:
            up.interrupt()
    assert _leftovers(up.data_dir) == []
