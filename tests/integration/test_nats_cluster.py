"""Moving a deployment from one nats-server to a 3-node cluster, as docs/operations.md tells
an operator to (*A clustered bus*): ``qcdc bus copy`` provisions the cluster's streams with
``QCDC_STREAM_REPLICAS=3`` and copies every message onto them, in order; the events written
before the move then survive the loss of any one node.

(A single server's store cannot simply become a cluster node's: the cluster's metadata
leader does not adopt the streams it finds there. Tried here with nats-server 2.15.1: the
streams came back empty.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.js.api import RawStreamMsg

from services.doctor import Status, bus_findings
from services.natsd import NatsCluster, NatsServer, free_port
from shared.bus.envelope import encode
from shared.bus.streams import ALL_STREAMS, PLANS, provision
from shared.events import UnitRegistered
from shared.settings import ServiceSettings
from tests.support import eventually, patience

EVENTS = 50


def test_the_replica_count_is_a_setting() -> None:
    assert ServiceSettings().stream_replicas == 1
    assert {spec.config().num_replicas for spec in ALL_STREAMS} == {1}
    settings = ServiceSettings(stream_replicas=3)
    assert {spec.config(settings.stream_replicas).num_replicas for spec in ALL_STREAMS} == {3}


def _unit(n: int) -> UnitRegistered:
    return UnitRegistered(
        unit_path=["T89", f"X{n:05d}"], code=f"X{n:05d}", name=f"Xã {n}", kind="commune"
    )


async def _connect(url: str) -> Client:
    return await nats.connect(url.split(","), connect_timeout=patience(5))


async def _plans_messages(url: str) -> int:
    nc = await _connect(url)
    try:
        return (await nc.jetstream(timeout=patience(10)).stream_info(PLANS.name)).state.messages
    finally:
        await nc.close()


async def test_a_single_server_moves_to_a_cluster_with_its_streams(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    single = NatsServer(tmp_path / "single", free_port())
    await asyncio.to_thread(single.start)
    cluster = nats_cluster
    try:
        nc = await _connect(single.url)
        js = nc.jetstream()
        await provision(js)
        for n in range(EVENTS):
            subject, headers, body = encode(_unit(n), source="/qcdc/tests", correlation_id="c")
            await js.publish(subject, body, headers=headers)
        await nc.close()
        moved = await asyncio.to_thread(
            _qcdc, "bus", "copy", "--from", single.url, "--nats-url", cluster.url
        )
        assert f"{PLANS.name} {EVENTS}" in moved
        # Again (an operator unsure the first run finished): nothing is added twice.
        await asyncio.to_thread(
            _qcdc, "bus", "copy", "--from", single.url, "--nats-url", cluster.url
        )
        await asyncio.to_thread(single.stop)

        async def replicated() -> bool:
            nc = await _connect(cluster.url)
            try:
                info = await nc.jetstream().stream_info(PLANS.name)
            finally:
                await nc.close()
            peers = info.cluster.replicas if info.cluster else None
            return bool(
                info.config.num_replicas == 3
                and peers
                and len(peers) == 2
                and all(p.current for p in peers)
            )

        await eventually(replicated, timeout=30, interval=0.2)
        assert await _plans_messages(cluster.url) == EVENTS
        first = await _first_message(cluster.url)
        assert first.headers and first.headers["Nats-Msg-Id"] == first.headers["ce-id"]
        # Whichever node goes away, the others hold every event.
        await asyncio.to_thread(cluster.nodes[0].kill)
        others = ",".join(node.url for node in cluster.nodes[1:])

        async def served_by_the_others() -> bool:
            try:
                return await _plans_messages(others) == EVENTS
            except (nats.errors.Error, TimeoutError):
                return False  # a new leader is being elected

        await eventually(served_by_the_others, timeout=30, interval=0.2)
    finally:
        await asyncio.to_thread(single.stop)


async def _first_message(url: str) -> RawStreamMsg:
    nc = await _connect(url)
    try:
        return await nc.jetstream().get_msg(PLANS.name, 1)
    finally:
        await nc.close()


def _qcdc(*args: str) -> str:
    env = {**os.environ, "QCDC_STREAM_REPLICAS": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "services", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=patience(60),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_the_doctor_names_streams_on_fewer_servers_than_configured(
    nats_server: NatsServer,
) -> None:
    """Provisioned before QCDC_STREAM_REPLICAS was raised: `qcdc bus provision` is due."""
    nc = await _connect(nats_server.url)
    try:
        await provision(nc.jetstream())
    finally:
        await nc.close()
    as_declared = await bus_findings(ServiceSettings(nats_url=nats_server.url))
    assert all(f.status is Status.OK for f in as_declared if f.what.startswith("stream ")), [
        f.line() for f in as_declared
    ]
    raised = await bus_findings(ServiceSettings(nats_url=nats_server.url, stream_replicas=3))
    streams = [f for f in raised if f.what.startswith("stream ")]
    assert len(streams) == len(ALL_STREAMS)
    for finding in streams:
        assert finding.status is Status.WARNING and "num_replicas" in finding.detail, finding
