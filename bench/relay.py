"""Benchmark: the outbox relay draining N rows, against a pipelined raw publisher.

Both publish the same N events (same subjects, headers and bodies) to the same nats-server
(``sync_interval: always``, as shipped): the baseline straight from nats-py with up to
``--window`` acks in flight (``publish_async``), the relay from committed outbox rows (read,
publish with the same window, mark sent). Each round purges the stream first and checks that
it then holds exactly N events; figures are medians over ``--rounds``. Prints one JSON object.

Usage: python -m bench.relay [--events N] [--window W] [--rounds R] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
import sqlalchemy as sa
from nats.aio.client import Client
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.support import machine, scratch_database
from services.natsd import NatsServer, free_port
from shared.bus.envelope import encode
from shared.bus.relay import OutboxRelay
from shared.bus.streams import PLANS, provision
from shared.clock import SystemClock
from shared.db import create_engine, messaging_tables
from shared.events import Contacts, UnitRegistered
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


async def _baseline(nc: Client, events: int, window: int) -> float:
    js = nc.jetstream(publish_async_max_pending=window)
    messages = [encode(_event(n), source="/bench", correlation_id="bench") for n in range(events)]
    started = time.perf_counter()
    for subject, headers, body in messages:
        await js.publish_async(subject, body, headers=headers, wait_stall=30.0)
    await asyncio.wait_for(js.publish_async_completed(), 60.0)
    return time.perf_counter() - started


async def _relay(nc: Client, database_url: str, events: int, window: int) -> float:
    metadata = sa.MetaData()
    messaging = messaging_tables(metadata)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    uow = UnitOfWork(async_sessionmaker(engine), messaging, source="/bench", clock=SystemClock())
    async with uow:
        uow.publish(*(_event(n) for n in range(events)))
        await uow.commit()
    relay = OutboxRelay(engine, messaging, lambda: nc, SystemClock(), window=window)
    started = time.perf_counter()
    while await relay.publish_pending():
        pass
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed


async def _stored(nc: Client) -> int:
    return int((await nc.jetstream().stream_info(PLANS.name)).state.messages)


async def _round(nc: Client, database_url: str, args: argparse.Namespace) -> tuple[float, float]:
    times = []
    for name in ("baseline", "relay"):
        await nc.jetstream().purge_stream(PLANS.name)
        if name == "baseline":
            times.append(await _baseline(nc, args.events, args.window))
        else:
            times.append(await _relay(nc, database_url, args.events, args.window))
        if await _stored(nc) != args.events:
            raise SystemExit(f"{name}: the stream does not hold {args.events} events")
    return times[0], times[1]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats", free_port())
        server.start()
        try:
            async with scratch_database(args.db, Path(tmp)) as database_url:
                nc = await nats.connect(server.url)
                await provision(nc.jetstream())
                rounds = [await _round(nc, database_url, args) for _ in range(args.rounds)]
                await nc.close()
        finally:
            server.stop()
    baseline_rate = args.events / statistics.median(b for b, _ in rounds)
    relay_rate = args.events / statistics.median(r for _, r in rounds)
    return {
        "bench": "relay",
        "machine": machine(),
        "db": args.db,
        "events": args.events,
        "window": args.window,
        "rounds": args.rounds,
        "baseline_msgs_per_s": round(baseline_rate, 1),
        "relay_msgs_per_s": round(relay_rate, 1),
        "ratio": round(relay_rate / baseline_rate, 3),
        "baseline_runs_s": [round(b, 3) for b, _ in rounds],
        "relay_runs_s": [round(r, 3) for _, r in rounds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="The outbox relay against a raw publisher.")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--window", type=int, default=256, help="acks in flight")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    json.dump(asyncio.run(run(parser.parse_args())), sys.stdout)
    print()


if __name__ == "__main__":
    main()
