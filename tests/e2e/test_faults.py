"""Faults under a burst of submissions, each checked from stored data (tests/e2e/burst.py):

- a node of a 3-node NATS cluster (streams replicated 3 times) killed and brought back;
- two replicas of every service on one bus and one PostgreSQL database, one killed;
- a burst larger than the consumers can take, with intake responsive and memory bounded;
- PostgreSQL connections cut during a burst (a TCP relay the services go through).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import nats
import pytest
from sqlalchemy.engine import make_url

from services.natsd import NatsCluster, NatsServer
from shared.bus.streams import provision
from tests.e2e.burst import (
    DELIVERY_CONCURRENCY,
    SERVICES,
    Burst,
    catch_up_seconds,
    check_invariant,
    open_obligations,
    p99,
    process,
    service_env,
    start_together,
    stop_together,
)
from tests.integration.test_database_outage import CuttableRelay
from tests.support import ServiceProcess, SmtpInbox, eventually, patience

pytestmark = pytest.mark.slow

BACKPRESSURE_SUBMISSIONS = int(os.environ.get("QCDC_BURST_SUBMISSIONS", "2000"))
"""The backpressure burst: 2,000 by default (70 s on a 2-core machine busy with other work);
``QCDC_BURST_SUBMISSIONS=20000`` for the full size the issue names (docs/operations.md)."""
SECONDS_PER_SUBMISSION = 0.1
"""Intake takes at least 10 submissions a second even on a busy machine (17 measured at
load 7, 65-150 on an idle one): the backpressure test's time limit grows with the burst by
this much a submission, plus the time to catch up (tests/e2e/burst.py), so that the full
20,000 is not cut short by the suite's per-test limit of a few minutes."""
BACKPRESSURE_TIME_LIMIT = 300.0 + BACKPRESSURE_SUBMISSIONS * SECONDS_PER_SUBMISSION
BACKPRESSURE_TIME_LIMIT += catch_up_seconds(BACKPRESSURE_SUBMISSIONS)

Factory = Callable[[], Awaitable[str]]


def sqlite_urls(tmp_path: Path) -> dict[str, str]:
    return {s: f"sqlite+aiosqlite:///{tmp_path}/{s}.db" for s in SERVICES}


async def postgres_urls(make: Factory) -> dict[str, str]:
    return {s: await make() for s in SERVICES}


@pytest.fixture
async def replicated_bus(nats_cluster: NatsCluster) -> NatsCluster:
    """Every stream on all three nodes, provisioned once before any service starts (as in
    production: ``qcdc bus provision`` with ``QCDC_STREAM_REPLICAS=3``)."""
    nc = await nats.connect(nats_cluster.url.split(","))
    try:
        await provision(nc.jetstream(timeout=patience(20)), replicas=3)
    finally:
        await nc.close()
    return nats_cluster


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path,
    *,
    nats_url: str,
    databases: dict[str, str],
    smtp: SmtpInbox,
    replicas: int = 1,
    **extra: str,
) -> AsyncIterator[dict[str, list[ServiceProcess]]]:
    """Every service as ``replicas`` processes; the first of each starts (and migrates its
    database) before the others join it."""
    found: dict[str, list[ServiceProcess]] = {s: [] for s in SERVICES}
    for replica in range(replicas):
        for name in SERVICES:
            env = service_env(
                name,
                nats_url=nats_url,
                database_url=databases[name],
                data_dir=tmp_path / "var",
                smtp_port=smtp.port,
                **extra,
            )
            found[name].append(process(name, env, tmp_path, replica))
    try:
        for replica in range(replicas):
            await start_together(found[name][replica] for name in SERVICES)
        yield found
    finally:
        await stop_together(p for group in found.values() for p in group)


async def test_a_cluster_node_killed_and_brought_back_mid_burst(
    tmp_path: Path, replicated_bus: NatsCluster, smtp_inbox: SmtpInbox
) -> None:
    nats_cluster = replicated_bus
    databases = sqlite_urls(tmp_path)
    async with running(
        tmp_path,
        nats_url=nats_cluster.url,
        databases=databases,
        smtp=smtp_inbox,
        QCDC_STREAM_REPLICAS="3",
        QCDC_BUS_PROVISION="false",
    ) as services:
        obligations = await open_obligations(
            services["plans"][0].url, services["reports"][0].url, 8
        )
        burst = Burst([services["reports"][0].url], obligations, per_obligation=40)
        task = asyncio.create_task(burst.run())
        await burst.reached(burst.size // 4)
        # The node leading the reports' stream: its loss forces an election mid-write.
        leader = await _stream_leader(nats_cluster, "QCDC_REPORTS")
        leader.kill()
        await burst.reached(burst.size * 2 // 3)
        leader.start()
        await task
        await check_invariant(
            burst,
            reports_db=databases["reports"],
            notify_db=databases["notify"],
            nats_url=nats_cluster.url,
            inbox=smtp_inbox,
        )
        # The node came back and holds every stream again, current with the others.
        await _back_and_current(nats_cluster, leader)
    assert not burst.unacknowledged, "intake never depended on the bus"


STUCK_REPLICA = "is not current: stream write error: last msgid mismatch"
"""nats-server (2.15.1) may log this for a node killed mid-write: replaying the entries it
missed, it checks their ``Nats-Expected-Last-Msg-Id`` against state it did not keep, and its
replica of the stream stays behind. Restarting that node once more brings it back from its
store and the others (the remedy docs/operations.md gives operators)."""


async def _back_and_current(cluster: NatsCluster, restarted: NatsServer) -> None:
    try:
        await eventually(lambda: _replicas_current(cluster), timeout=60, interval=0.2)
        return
    except TimeoutError:
        log = restarted.log_path.read_text(errors="replace")
        if STUCK_REPLICA not in log:
            raise
    restarted.stop()
    restarted.start()
    await eventually(lambda: _replicas_current(cluster), timeout=60, interval=0.2)


async def _stream_leader(cluster: NatsCluster, stream: str) -> NatsServer:
    nc = await nats.connect(cluster.url.split(","))
    try:
        info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    assert info.config.num_replicas == 3
    assert info.cluster is not None and info.cluster.leader
    return next(node for node in cluster.nodes if node.server_name == info.cluster.leader)


async def _replicas_current(cluster: NatsCluster) -> bool:
    nc = await nats.connect(cluster.url.split(","))
    try:
        js = nc.jetstream()
        for stream in ("QCDC_PLANS", "QCDC_REPORTS", "QCDC_NOTIFY"):
            cluster_info = (await js.stream_info(stream)).cluster
            peers = (cluster_info.replicas or []) if cluster_info else []
            if len(peers) != 2 or not all(p.current and not p.offline for p in peers):
                return False
    finally:
        await nc.close()
    return True


@pytest.mark.postgres
async def test_two_replicas_of_every_service_one_killed_mid_burst(
    tmp_path: Path,
    nats_server: NatsServer,
    smtp_inbox: SmtpInbox,
    postgres_url_factory: Factory,
) -> None:
    """A reports replica dies under its senders (a third into the burst), then a notify
    replica with deliveries leased (two thirds in): the survivors take over intake, the
    shared durable consumers and the dead one's leases."""
    databases = await postgres_urls(postgres_url_factory)
    async with running(
        tmp_path,
        nats_url=nats_server.url,
        databases=databases,
        smtp=smtp_inbox,
        replicas=2,
    ) as services:
        reports = [p.url for p in services["reports"]]
        obligations = await open_obligations(services["plans"][1].url, reports[1], 8)
        burst = Burst(reports, obligations, per_obligation=40)
        task = asyncio.create_task(burst.run())
        await burst.reached(burst.size // 3)
        await asyncio.to_thread(services["reports"][0].kill)
        await burst.reached(burst.size * 2 // 3)
        await asyncio.to_thread(services["notify"][0].kill)
        await task
        assert burst.refusals, "the reports replica died between the burst's requests"
        # Senders told "not received" (their replica died under them) try again elsewhere.
        await burst.retry_unacknowledged(reports[1])
        await check_invariant(
            burst,
            reports_db=databases["reports"],
            notify_db=databases["notify"],
            nats_url=nats_server.url,
            inbox=smtp_inbox,
            smtp_repeats=DELIVERY_CONCURRENCY,
        )


@pytest.mark.timeout(patience(BACKPRESSURE_TIME_LIMIT))
async def test_a_burst_larger_than_the_consumers_can_take(
    tmp_path: Path, nats_server: NatsServer, smtp_inbox: SmtpInbox
) -> None:
    databases = sqlite_urls(tmp_path)
    async with running(
        tmp_path, nats_url=nats_server.url, databases=databases, smtp=smtp_inbox
    ) as services:
        reports_url = services["reports"][0].url
        obligations = await open_obligations(services["plans"][0].url, reports_url, 20)
        burst = Burst([reports_url], obligations, per_obligation=BACKPRESSURE_SUBMISSIONS // 20)
        probes: list[float] = []
        task = asyncio.create_task(burst.run())
        await _probe_until(task, reports_url, next(iter(obligations)), probes)
        backlog = len(burst.acknowledged) - len(smtp_inbox.with_subject("[Xác nhận]"))
        await check_invariant(
            burst,
            reports_db=databases["reports"],
            notify_db=databases["notify"],
            nats_url=nats_server.url,
            inbox=smtp_inbox,
        )
        peaks = {name: _peak_rss_mib(group[0]) for name, group in services.items()}
    print(
        f"\nburst of {burst.size}: intake p99 {p99(burst.latencies) * 1000:.0f} ms, "
        f"probe p99 {p99(probes) * 1000:.0f} ms over {len(probes)} probes; "
        f"receipts behind intake at its end: {backlog}; peak RSS (MiB): {peaks}"
    )
    assert backlog > 0, "the consumers kept up: not a burst larger than they can take"
    # Measured p99: about 0.9 s for both on a 2-core machine busy with other work (load 7),
    # 2.6 s at load 11; the burst's 20 senders at once are what a reader waits behind.
    assert p99(probes) < patience(5.0), "intake stopped answering under the burst"
    assert p99(burst.latencies) < patience(5.0)
    assert max(peaks.values()) < 600, f"memory grew with the backlog: {peaks}"


async def _probe_until(
    burst: asyncio.Task[None], url: str, obligation: str, probes: list[float]
) -> None:
    """A reader's request while the burst runs: how long one waits behind the intake."""
    async with httpx.AsyncClient(base_url=url, timeout=patience(30)) as client:
        while not burst.done():
            started = asyncio.get_running_loop().time()
            response = await client.get(f"/obligations/{obligation}")
            assert response.status_code == 200, response.text
            probes.append(asyncio.get_running_loop().time() - started)
            await asyncio.wait({burst}, timeout=0.1)
    burst.result()


def _peak_rss_mib(service: ServiceProcess) -> int:
    """The process's high-water mark of resident memory (VmHWM), in MiB."""
    assert service.process is not None
    status = Path(f"/proc/{service.process.pid}/status").read_text(encoding="ascii")
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


@pytest.mark.postgres
async def test_postgresql_connections_cut_mid_burst(
    tmp_path: Path,
    nats_server: NatsServer,
    smtp_inbox: SmtpInbox,
    postgres_url_factory: Factory,
) -> None:
    direct = await postgres_urls(postgres_url_factory)
    target = make_url(direct["reports"])
    relay = CuttableRelay(target.host or "127.0.0.1", target.port or 5432)
    await relay.join()
    through = {
        name: make_url(url).set(host="127.0.0.1", port=relay.port).render_as_string(False)
        for name, url in direct.items()
    }
    async with running(
        tmp_path, nats_url=nats_server.url, databases=through, smtp=smtp_inbox
    ) as services:
        reports_url = services["reports"][0].url
        obligations = await open_obligations(services["plans"][0].url, reports_url, 8)
        burst = Burst([reports_url], obligations, per_obligation=40)
        task = asyncio.create_task(burst.run())
        await burst.reached(burst.size // 3)
        await relay.cut()
        await burst.refused(len(obligations))
        await relay.join()
        await task
        await burst.retry_unacknowledged(reports_url)
        await check_invariant(
            burst,
            reports_db=direct["reports"],
            notify_db=direct["notify"],
            nats_url=nats_server.url,
            inbox=smtp_inbox,
            # A mail accepted by the relay just before notify's database went away is
            # recorded as sent only after its lease: the SMTP window.
            smtp_repeats=DELIVERY_CONCURRENCY,
        )
    with contextlib.suppress(AssertionError):
        await relay.cut()
