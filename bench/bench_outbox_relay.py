"""Benchmark: outbox relay throughput against plain JetStream publishing, in the same run.

Both publish the same number of events to a fresh nats-server (``sync_interval: always``):
the baseline with nats-py straight to JetStream, the relay from committed SQLite outbox
rows (publish, then mark each row sent). Prints one JSON object; ``relay_vs_baseline`` is
the relay's throughput as a fraction of the baseline's.

Usage: python bench/bench_outbox_relay.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import nats
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.bus.envelope import encode
from shared.bus.relay import OutboxRelay
from shared.bus.streams import provision
from shared.clock import SystemClock
from shared.db import create_engine, messaging_tables
from shared.events import Contacts, UnitRegistered
from shared.natsd import NatsServer, free_port
from shared.uow import UnitOfWork


def _event(n: int) -> UnitRegistered:
    return UnitRegistered(
        unit_path=["T89", f"X{n:05d}"],
        code=f"X{n:05d}",
        name=f"Ủy ban nhân dân xã Số {n}",
        kind="commune",
        parent_code="T89",
        contacts=Contacts(focal_email=f"xa{n}@demo.gov.vn"),
    )


async def _baseline(url: str, events: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    started = time.perf_counter()
    for n in range(events):
        subject, headers, body = encode(_event(n), source="/bench", correlation_id="bench")
        await js.publish(subject, body, headers=headers)
    elapsed = time.perf_counter() - started
    await nc.close()
    return elapsed


async def _relay(url: str, events: int, workdir: Path) -> float:
    metadata = sa.MetaData()
    messaging = messaging_tables(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{workdir}/bench.db")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    uow = UnitOfWork(async_sessionmaker(engine), messaging, source="/bench", clock=SystemClock())
    async with uow:
        uow.publish(*(_event(n) for n in range(events)))
        await uow.commit()
    nc = await nats.connect(url)
    relay = OutboxRelay(engine, messaging, nc.jetstream, SystemClock(), batch_size=500)
    started = time.perf_counter()
    while await relay.publish_pending():
        pass
    elapsed = time.perf_counter() - started
    await nc.close()
    await engine.dispose()
    return elapsed


async def main(events: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, float] = {}
        for name in ("baseline", "relay"):
            server = NatsServer(Path(tmp) / name / "nats", free_port())
            server.start()
            try:
                nc = await nats.connect(server.url)
                await provision(nc.jetstream())
                await nc.close()
                if name == "baseline":
                    results[name] = await _baseline(server.url, events)
                else:
                    results[name] = await _relay(server.url, events, Path(tmp))
            finally:
                server.stop()
    baseline_rate = events / results["baseline"]
    relay_rate = events / results["relay"]
    return {
        "events": events,
        "baseline_msgs_per_s": round(baseline_rate, 1),
        "relay_msgs_per_s": round(relay_rate, 1),
        "relay_vs_baseline": round(relay_rate / baseline_rate, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    print(json.dumps(asyncio.run(main(parser.parse_args().events))))
