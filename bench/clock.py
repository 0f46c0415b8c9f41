"""Benchmark: the deadline clock over 1,000,000 obligations in PostgreSQL, 100,000 of them due.

The bench creates a fresh database (``QCDC_BENCH_POSTGRES``, default 127.0.0.1:5432, user
postgres), migrates it with the reports service's own migrations and bulk-loads ``--obligations``
obligations (INSERT … SELECT over generate_series, in the server) with their recorded
deadline steps, in the state the clock leaves them after a pass the day before: every step
planned up to then recorded, each awaiting obligation's ``next_step_at`` its next step.
Deadlines spread over a year (150 days back, 210 ahead), one per day, many obligations
each, as a real plan's are. ``--due`` of the obligations have a step planned since that
pass (a reminder or an urging at 08:00 today, or the miss of yesterday's deadline); the
others are ahead of their next step, or submitted, accepted, off the clock.

Then it times, with the service's own code (``run_clock``: its UnitOfWork and outbox, its
batch size and workers settings, after freezing what start-up built out of the garbage
collector's way as a started service does):

- the firing pass at 08:00 ICT: steps fired, outbox rows written, seconds;
- a second pass a minute later, with nothing due.

Baselines, on the same database in the same run, after the passes:

- raw writes: the rows the firing pass wrote, written again set-based by the server in one
  transaction (INSERT … SELECT of as many ``deadline_steps`` rows and outbox rows of the
  same size, and an UPDATE of as many obligations' ``next_step_at``). It is the floor of
  any clock that records each step and writes each event durably; the ratio is the price
  of deciding per obligation in Python and of moving the rows through the driver.
- raw scan: the due-set query itself (``SELECT … WHERE next_step_at <= now … FOR NO KEY
  UPDATE SKIP LOCKED``) in one transaction from a bare asyncpg connection; the ratio is
  the price of the service's layers around an empty pass.

Both the load and the raw writes end with a CHECKPOINT (not timed), so that the pass and
the raw writes alike pay for logging each page's first change in full.

Prints one JSON object on stdout; logs go to stderr. The database is dropped at the end.

Usage: python -m bench.clock [--obligations 1000000] [--due 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from bench.support import POSTGRES_DSN, machine, scratch_database
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.domain.deadlines import (
    VIETNAM,
    ClockRules,
    at_reminder_time,
    next_step_after,
    schedule_fingerprint,
    steps_until,
)
from services.reports.handlers.clock import follow_schedule, rules_from, run_clock
from services.reports.settings import ReportsSettings
from shared.logging import configure_logging
from shared.vntime import last_instant_before

log = structlog.get_logger("bench.clock")

TODAY = date(2026, 6, 3)  # a Wednesday, a working day
NOW = at_reminder_time(TODAY)
"""The firing pass runs at 08:00 ICT, when the day's reminders and urgings are planned."""
PREVIOUS = NOW - timedelta(days=1)
"""The pass the loaded state is the result of."""
DAYS_BACK, DAYS_AHEAD = 150, 210


@dataclass(frozen=True)
class Deadline:
    """One deadline ("before <day>") and what the clock had done for it by PREVIOUS."""

    index: int
    due_at: datetime
    recorded: tuple[tuple[str, datetime], ...]
    """(step, planned_for) of every step planned up to PREVIOUS."""
    next_step_at: datetime | None
    due_now: bool
    """A step is planned in (PREVIOUS, NOW]."""


def deadlines(rules: ClockRules) -> tuple[list[Deadline], list[Deadline]]:
    """The year's deadlines, those with a step due at NOW first (indexed 0…), then the
    others, computed by the service's domain."""
    due_now: list[tuple[datetime, tuple[tuple[str, datetime], ...], datetime | None]] = []
    quiet: list[tuple[datetime, tuple[tuple[str, datetime], ...], datetime | None]] = []
    for offset in range(-DAYS_BACK, DAYS_AHEAD):
        due_at = last_instant_before(TODAY + timedelta(days=offset))
        recorded = tuple(
            (s.name, s.planned_for) for s in steps_until(due_at, PREVIOUS, rules, VIETNAM)
        )
        upcoming = next_step_after(due_at, PREVIOUS, rules, VIETNAM)
        is_due = upcoming is not None and upcoming <= NOW
        (due_now if is_due else quiet).append((due_at, recorded, upcoming))
    ordered = due_now + quiet
    built = [
        Deadline(i, due_at, recorded, upcoming, i < len(due_now))
        for i, (due_at, recorded, upcoming) in enumerate(ordered)
    ]
    return built[: len(due_now)], built[len(due_now) :]


OBLIGATIONS_SQL = """
INSERT INTO obligations (
    id, plan_id, schedule_key, report_kind, unit_code, unit_path, receiving_unit,
    period_start, period_end, due_at, plan_doc_number, plan_title, status, opened_at,
    owned, next_step_at)
SELECT md5('bench-obligation-' || g)::uuid::text,
       'kh-bench-2026', 'k-' || d.idx, 'thematic', 'X' || g,
       json_build_array('T' || (g % 34), 'H' || (g % 700), 'X' || g),
       'SNV', date '2026-01-01', date '2026-12-31', d.due_at, '123/KH-UBND',
       'Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2026', s.status, $3, true,
       CASE WHEN s.status IN ('open', 'returned') THEN d.next_step_at END
FROM generate_series(0::bigint, $1::bigint - 1) AS g
CROSS JOIN LATERAL (
    SELECT CASE WHEN g < $2 THEN g * $4 / $2 ELSE $4 + (g - $2) * $5 / ($1 - $2) END AS idx
) AS a
JOIN bench_deadlines d ON d.idx = a.idx
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN d.due_now THEN CASE WHEN g % 20 = 0 THEN 'returned' ELSE 'open' END
        WHEN NOT d.past THEN CASE WHEN g % 10 = 9 THEN 'submitted' ELSE 'open' END
        WHEN g % 10 < 2 THEN 'open'
        WHEN g % 10 < 7 THEN 'accepted'
        ELSE 'submitted'
    END AS status
) AS s
ORDER BY g
"""
"""Obligation g: the first ``due`` over the deadlines with a step due now, the others over
the rest, in blocks, as a plan's obligations are opened together (one PlanIssued); every
deadline has the same mix of statuses. Awaiting ones carry their next step. Ids are
random (md5, as the service's uuid5), so the primary keys' pages are touched at random."""

STEPS_SQL = """
INSERT INTO deadline_steps (obligation_id, step, planned_for, fired_at, event_id)
SELECT o.id, s.step, s.planned_for, s.planned_for, md5(o.id || s.step)
FROM obligations o
JOIN bench_deadlines d ON d.due_at = o.due_at
JOIN bench_steps s ON s.idx = d.idx
WHERE o.status IN ('open', 'returned') OR s.step LIKE 'approaching-%'
"""
"""History: an awaiting obligation has every step up to the previous pass recorded; one
submitted or accepted, the reminders it got before."""


async def load(conn: asyncpg.Connection, obligations: int, due: int, rules: ClockRules) -> int:
    """Bulk-load the obligations and their history; returns how many are due a step."""
    due_now, quiet = deadlines(rules)
    await conn.execute(
        "CREATE TEMP TABLE bench_deadlines (idx int PRIMARY KEY, due_at timestamptz,"
        " next_step_at timestamptz, due_now boolean, past boolean)"
    )
    await conn.execute(
        "CREATE TEMP TABLE bench_steps (idx int, step text, planned_for timestamptz)"
    )
    await conn.copy_records_to_table(
        "bench_deadlines",
        records=[
            (d.index, d.due_at, d.next_step_at, d.due_now, d.due_at < NOW)
            for d in (*due_now, *quiet)
        ],
    )
    await conn.copy_records_to_table(
        "bench_steps",
        records=[(d.index, name, at) for d in (*due_now, *quiet) for name, at in d.recorded],
    )
    await conn.execute("ANALYZE bench_deadlines; ANALYZE bench_steps")
    opened_at = NOW - timedelta(days=DAYS_BACK + 60)
    await conn.execute(OBLIGATIONS_SQL, obligations, due, opened_at, len(due_now), len(quiet))
    await conn.execute(STEPS_SQL)
    # A live database has been vacuumed and analysed; and the load's dirty pages are
    # flushed now rather than by a checkpoint in the middle of the timed pass.
    await conn.execute("VACUUM ANALYZE obligations")
    await conn.execute("VACUUM ANALYZE deadline_steps")
    await conn.execute("CHECKPOINT")
    found = await conn.fetchval("SELECT count(*) FROM obligations WHERE next_step_at <= $1", NOW)
    return int(found)


RAW_ROWS = [
    "CREATE TEMP TABLE raw_steps AS SELECT * FROM deadline_steps WHERE fired_at = $1",
    "CREATE TEMP TABLE raw_events AS SELECT * FROM outbox WHERE created_at = $1",
]
"""What the firing pass wrote, copied aside (not timed) for the raw writes to write again."""

RAW_WRITES = [
    """INSERT INTO deadline_steps (obligation_id, step, planned_for, fired_at, event_id)
       SELECT obligation_id, 'raw-' || step, planned_for, fired_at, event_id
       FROM raw_steps""",
    """INSERT INTO outbox (event_id, subject, event_type, headers, body, created_at)
       SELECT 'raw-' || event_id, subject, event_type, headers, body, created_at
       FROM raw_events""",
    """UPDATE obligations o SET next_step_at = o.next_step_at + interval '1 microsecond'
       FROM (SELECT DISTINCT obligation_id FROM raw_steps) AS f
       WHERE o.id = f.obligation_id""",
]
RAW_SCAN = """SELECT * FROM obligations WHERE next_step_at <= $1
              ORDER BY next_step_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED"""


async def raw_writes(conn: asyncpg.Connection) -> tuple[float, float]:
    """Seconds, and the server's CPU seconds, of the raw writes."""
    for statement in RAW_ROWS:
        await conn.execute(statement, NOW)
    await conn.execute("ANALYZE raw_steps; ANALYZE raw_events")
    # As for the pass: the first change to a page after a checkpoint logs the whole page.
    await conn.execute("CHECKPOINT")
    server = [conn.get_server_pid()]
    started, cpu = time.perf_counter(), _cpu_of(server)
    async with conn.transaction():
        for statement in RAW_WRITES:
            await conn.execute(statement)
    return time.perf_counter() - started, _cpu_of(server) - cpu


async def raw_scan(conn: asyncpg.Connection, now: datetime, batch_size: int) -> float:
    started = time.perf_counter()
    async with conn.transaction():
        await conn.fetch(RAW_SCAN, now, batch_size)
    return time.perf_counter() - started


async def _backends(conn: asyncpg.Connection) -> list[int]:
    """The server processes of the service's pooled connections to this database."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    return [int(row["pid"]) for row in rows]


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds (user and system) these local server processes have used; 0 for any
    that cannot be read (a remote server)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def bench(obligations: int, due: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with scratch_database("postgres", Path(folder), "clock") as url:
            return await _run(url, obligations, due)


async def _run(url: str, obligations: int, due: int) -> dict[str, Any]:
    settings = ReportsSettings(database_url=url, clock=f"fixed:{NOW.isoformat()}")
    rules = rules_from(settings)
    async with REPORTS.offline(settings) as runtime:
        # A service that has been running: its schedule recorded before the obligations,
        # its connections open (an empty pass on the empty database).
        await follow_schedule(runtime.uow, schedule_fingerprint(rules))
        await run_clock(PREVIOUS, runtime.uow, settings)
        conn = await asyncpg.connect(POSTGRES_DSN.rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1])
        try:
            started = time.perf_counter()
            due_found = await load(conn, obligations, due, rules)
            loaded = time.perf_counter() - started
            log.info("loaded", obligations=obligations, due=due_found, seconds=round(loaded, 1))
            gc.collect()
            gc.freeze()  # as shared.runtime does once a service has started

            backends = await _backends(conn)
            server_cpu = _cpu_of(backends)
            started, cpu = time.perf_counter(), time.process_time()
            firing = await run_clock(NOW, runtime.uow, settings)
            firing_seconds = time.perf_counter() - started
            firing_cpu = time.process_time() - cpu
            firing_server_cpu = _cpu_of(backends) - server_cpu
            log.info("firing pass", steps=len(firing.fired), seconds=round(firing_seconds, 2))
            later = NOW + timedelta(minutes=1)
            started = time.perf_counter()
            empty = await run_clock(later, runtime.uow, settings)
            empty_seconds = time.perf_counter() - started
            outbox_rows = await conn.fetchval("SELECT count(*) FROM outbox")

            scan_seconds = await raw_scan(conn, later, settings.clock_batch_size)
            writes_seconds, writes_server_cpu = await raw_writes(conn)
        finally:
            await conn.close()
    return {
        "obligations": obligations,
        "due": due_found,
        "batch_size": settings.clock_batch_size,
        "workers": settings.clock_workers,
        "load_seconds": round(loaded, 1),
        "firing_pass": {
            "seconds": round(firing_seconds, 3),
            "steps_fired": len(firing.fired),
            "steps_skipped": len(firing.skipped),
            "outbox_rows": outbox_rows,
            "failed": len(firing.failed),
            "steps_per_second": round(len(firing.fired) / firing_seconds),
            "cpu_seconds": round(firing_cpu, 2),
            "server_cpu_seconds": round(firing_server_cpu, 2),
        },
        "empty_pass": {"seconds": round(empty_seconds, 4), "steps_fired": len(empty.fired)},
        "baseline": {
            "raw_writes_seconds": round(writes_seconds, 3),
            "raw_writes_server_cpu_seconds": round(writes_server_cpu, 2),
            "raw_scan_seconds": round(scan_seconds, 4),
        },
        "ratio": {
            "firing_pass_vs_raw_writes": round(firing_seconds / writes_seconds, 2),
            "empty_pass_vs_raw_scan": round(empty_seconds / scan_seconds, 2),
        },
        "checks": {
            "every_due_obligation_fired": len({f.obligation_id for f in firing.fired}) == due_found,
            "an_outbox_row_per_message": outbox_rows == len({f.event_id for f in firing.fired}),
        },
        "targets": {
            "firing_pass_under_10_s": firing_seconds < 10,
            "empty_pass_under_0_1_s": empty_seconds < 0.1,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--obligations", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000, help="obligations due a step now")
    args = parser.parse_args()
    if not 0 < args.due <= args.obligations:
        parser.error("--due must be between 1 and --obligations")
    configure_logging("bench", "INFO")
    host = machine()
    result = asyncio.run(bench(args.obligations, args.due))
    result["machine"] = {**host, "load_1m_at_end": round(os.getloadavg()[0], 2)}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
