"""Benchmark: report submissions over HTTP, through storage, ``ReportSubmitted``, notify and
the SMTP sink, until every receipt is recorded as sent; against the bus's own limit.

The whole system runs as ``qcdc up`` runs it (three service processes, nats-server with
``sync_interval: always``, the mail sink), on SQLite or PostgreSQL. The bench registers
units, issues a plan that gives each two obligations (six-month and annual), waits until
every consumer has caught up, then:

- ``--mode burst``: N submissions to N distinct obligations with ``--concurrency`` clients;
  prints accepted/s, receipts/s, and p50/p95/p99 of HTTP latency and of submit → receipt
  (the receipt counts when its ``NotificationDelivered`` reaches the bus, i.e. after notify
  recorded it as sent);
- ``--mode sustained``: a fixed ``--rate`` for ``--duration`` seconds (open loop: each
  submission starts on schedule, whatever the earlier ones do), with the same percentiles.

Baseline, on the same nats-server in the same run: raw nats-py publishing N messages of the
size of a ``ReportSubmitted`` with up to 256 acks in flight, then pull-consuming them. Prints
one JSON object.

Usage: python -m bench.pipeline [--db sqlite|postgres] [--mode burst|sustained] [-n N] …
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, StorageType, StreamConfig

from bench.stack import Stack
from bench.support import machine, percentiles
from shared.bus.envelope import encode
from shared.events import ObligationRef, ReportKind, ReportSubmitted

HOME_AFFAIRS = "SNV"
HOME_AFFAIRS_EMAIL = "vanphong@snv.demo.gov.vn"
SUBMITTED = ReportSubmitted.ce_type()
ENTRIES_PER_UNIT = 2
NARRATIVE = {
    "1": "Cấp ủy, chính quyền xã đã ban hành kế hoạch thực hiện Quy chế dân chủ ở cơ sở, "
    "phân công cán bộ phụ trách và tổ chức quán triệt đến cán bộ, công chức. " * 3,
    "3": "Thực hiện công khai ngân sách, thủ tục hành chính; tiếp công dân định kỳ. " * 3,
}
INDICATORS = {"reception_sessions": 12, "citizens_received": 85, "complaints_received": 3}


def log(message: str) -> None:
    print(f"[pipeline] {message}", file=sys.stderr, flush=True)


# --- the data the bench needs ------------------------------------------------------------


def unit_code(n: int) -> str:
    return f"X{n:05d}"


def units_csv(count: int, *, with_email: bool) -> str:
    rows = ["code,name,kind,parent_code,reports_to_code,focal_email"]
    rows.append("T01,Ủy ban nhân dân tỉnh Thử Nghiệm,province,,,")
    rows.append(f"{HOME_AFFAIRS},Sở Nội vụ,department,T01,,{HOME_AFFAIRS_EMAIL}")
    for n in range(count):
        email = f"vanphong.{unit_code(n).lower()}@demo.gov.vn" if with_email else ""
        rows.append(f"{unit_code(n)},Ủy ban nhân dân xã Số {n},commune,T01,{HOME_AFFAIRS},{email}")
    return "\n".join(rows) + "\n"


def plan(year: int) -> dict[str, Any]:
    return {
        "doc_number": f"{uuid.uuid4().hex[:6]}/KH-UBND",
        "title": f"Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm {year}",
        "issuing_unit": "T01",
        "issued_on": date.today().isoformat(),
        "year": year,
        "assignees": {"kinds": ["commune"]},
        "schedule": [
            {
                "key": "six_month",
                "kind": "six_month",
                "title": "Báo cáo 6 tháng",
                "period_start": f"{year - 1}-12-15",
                "period_end": f"{year}-06-08",
                "due_before": f"{year}-06-10",
                "receiving_unit": HOME_AFFAIRS,
            },
            {
                "key": "annual",
                "kind": "annual",
                "title": "Báo cáo năm",
                "period_start": f"{year - 1}-12-15",
                "period_end": f"{year}-11-18",
                "due_before": f"{year}-11-20",
                "receiving_unit": HOME_AFFAIRS,
            },
        ],
    }


async def settled(nc: Client, timeout: float = 900.0) -> None:
    """Until every durable consumer of every stream has nothing pending or unacked, and
    stays so for a moment (an event handled may publish the next)."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        busy = 0
        for stream in await js.streams_info():
            for consumer in await js.consumers_info(str(stream.config.name)):
                busy += (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the consumers did not catch up")


async def seed(stack: Stack, nc: Client, units: int) -> list[tuple[str, str]]:
    """Units and a plan; returns (obligation id, unit code) of every obligation it opened."""
    year = datetime.now(UTC).year + 1  # deadlines ahead: no reminder fires while we measure
    async with httpx.AsyncClient(base_url=stack.url("plans"), timeout=600) as plans:
        # Registered without e-mail first, so the plan's notices have no one to mail: the
        # bench measures receipts, not the setup.
        for with_email in (False, True):
            imported = await plans.post(
                "/units/import",
                content=units_csv(units, with_email=with_email).encode(),
                headers={"content-type": "text/csv"},
            )
            imported.raise_for_status()
            if not with_email:
                # notify must know every unit before the plan's notices: one it does not
                # know yet fails the notice, which comes back later with backoff, by then
                # to units with addresses, and its thousand mails would be sent while the
                # bench measures receipts.
                await settled(nc)
                draft = await plans.post("/plans", json=plan(year))
                draft.raise_for_status()
                plan_id = draft.json()["id"]
                (await plans.post(f"/plans/{plan_id}/issue")).raise_for_status()
    expected = units * ENTRIES_PER_UNIT
    async with httpx.AsyncClient(base_url=stack.url("reports"), timeout=120) as reports:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            found = (await reports.get("/obligations", params={"plan_id": plan_id})).json()
            if len(found) >= expected:
                # Six-month reports first, so that concurrent submissions are distinct units.
                found.sort(key=lambda o: (o["schedule_key"] != "six_month", o["unit_code"]))
                return [(o["id"], o["unit_code"]) for o in found]
            await asyncio.sleep(0.5)
    raise TimeoutError(f"reports did not open {expected} obligations")


# --- observing receipts ------------------------------------------------------------------


@dataclass
class Observer:
    """Watches the bus: which event is which report, and when each receipt was recorded."""

    report_of_event: dict[str, str] = field(default_factory=dict)
    published_at: dict[str, float] = field(default_factory=dict)
    """report id → when its ReportSubmitted arrived on the bus."""
    receipt_at: dict[str, float] = field(default_factory=dict)
    """event id of a ReportSubmitted → when its receipt's NotificationDelivered arrived."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    others: Counter[str] = field(default_factory=Counter)
    """Notifications delivered meanwhile for events other than submissions, by event type:
    work that competed with the receipts (none, when the setup has settled)."""

    async def watch(self, nc: Client) -> None:
        await nc.subscribe("qcdc.v1.report.submitted.>", cb=self._submitted)
        await nc.subscribe("qcdc.v1.notification.delivered.>", cb=self._delivered)

    async def _submitted(self, msg: Msg) -> None:
        report_id = json.loads(msg.data)["report_id"]
        self.report_of_event[(msg.headers or {})["ce-id"]] = report_id
        self.published_at[report_id] = time.perf_counter()

    async def _delivered(self, msg: Msg) -> None:
        now = time.perf_counter()
        body = json.loads(msg.data)
        if body["event_type"] != SUBMITTED:
            self.others[body["event_type"]] += 1
        elif body["recipient"] != HOME_AFFAIRS_EMAIL:  # the receiving unit's notice is not one
            self.receipt_at.setdefault(body["event_id"], now)
            self.changed.set()

    def receipts(self) -> dict[str, float]:
        """report id → when its receipt was recorded as sent."""
        return {
            self.report_of_event[event]: at
            for event, at in self.receipt_at.items()
            if event in self.report_of_event
        }

    async def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while len(self.receipts()) < count:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
            except TimeoutError:
                continue


# --- submitting --------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    report_id: str
    started: float
    answered: float


async def submit(client: aiohttp.ClientSession, obligation_id: str, unit: str) -> Submitted | None:
    """One submission as a unit's system makes it: retried with the same key if the
    connection breaks, so that a retry can never make a second report."""
    body = {
        "obligation_id": obligation_id,
        "unit_code": unit,
        "submitted_by": f"vanphong.{unit.lower()}@demo.gov.vn",
        "narrative": NARRATIVE,
        "indicators": INDICATORS,
    }
    headers = {"Idempotency-Key": f"bench-{obligation_id}"}
    started = time.perf_counter()
    for attempt in range(3):
        try:
            async with client.post("/reports", json=body, headers=headers) as response:
                answer = await response.json()
                status = response.status
            break
        except aiohttp.ClientError as exc:
            log(f"submission attempt {attempt + 1} failed: {exc!r}")
    else:
        return None
    answered = time.perf_counter()
    if status not in (200, 201):
        log(f"submission refused: {status} {str(answer)[:300]}")
        return None
    return Submitted(answer["report_id"], started, answered)


def http_client(url: str, connections: int) -> aiohttp.ClientSession:
    """aiohttp rather than httpx: at hundreds of requests a second httpx's own CPU, on the
    same two cores as the system under test, would be what the bench measured."""
    return aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=120),
    )


async def burst(url: str, work: list[tuple[str, str]], concurrency: int) -> list[Submitted | None]:
    queue = list(reversed(work))
    done: list[Submitted | None] = []
    async with http_client(url, concurrency) as client:

        async def worker() -> None:
            while queue:
                obligation_id, unit = queue.pop()
                done.append(await submit(client, obligation_id, unit))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def sustained(url: str, work: list[tuple[str, str]], rate: float) -> list[Submitted | None]:
    async with http_client(url, 512) as client:
        start = time.perf_counter()
        tasks = []
        for i, (obligation_id, unit) in enumerate(work):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule itself, not a synchronisation
            tasks.append(asyncio.create_task(submit(client, obligation_id, unit)))
        return list(await asyncio.gather(*tasks))


# --- the baseline ------------------------------------------------------------------------


def message_size() -> int:
    """Bytes of a ReportSubmitted as the bench's submissions produce it, headers included."""
    obligation = ObligationRef(
        obligation_id=str(uuid.uuid4()),
        plan_id=str(uuid.uuid4()),
        schedule_key="six_month",
        report_kind=ReportKind.SIX_MONTH,
        unit_code=unit_code(0),
        receiving_unit=HOME_AFFAIRS,
        period_start=date(2026, 12, 15),
        period_end=date(2027, 6, 14),
        due_at=datetime.now(UTC),
        plan_doc_number="123/KH-UBND",
        plan_title=plan(2027)["title"],
    )
    event = ReportSubmitted(
        unit_path=["T01", unit_code(0)],
        report_id=str(uuid.uuid4()),
        receipt_number="BC-2027-000001",
        version=1,
        obligation=obligation,
        submitted_at=datetime.now(UTC),
        on_time=True,
        submitted_by="vanphong.x00000@demo.gov.vn",
        narrative=NARRATIVE,
        indicators=INDICATORS,
    )
    _, headers, body = encode(event, source="/qcdc/reports", correlation_id=str(uuid.uuid4()))
    return len(body) + sum(len(k) + len(v) + 4 for k, v in headers.items())


async def raw_bus(nc: Client, count: int, size: int, window: int = 256) -> dict[str, float]:
    """nats-py straight to a file stream on the same server: publish ``count`` messages of
    ``size`` bytes with ``window`` acks in flight, then pull-consume and ack them all."""
    js = nc.jetstream(publish_async_max_pending=window)
    await js.add_stream(
        StreamConfig(name="BENCH_RAW", subjects=["bench.raw.>"], storage=StorageType.FILE)
    )
    body = b"x" * size
    started = time.perf_counter()
    for n in range(count):
        await js.publish_async(
            f"bench.raw.{n % 64}", body, headers={"Nats-Msg-Id": f"raw-{n}"}, wait_stall=30.0
        )
    await asyncio.wait_for(js.publish_async_completed(), 120)
    published = time.perf_counter() - started
    subscription = await js.pull_subscribe(
        "bench.raw.>", durable="bench-raw", config=ConsumerConfig(max_ack_pending=-1)
    )
    received = 0
    started = time.perf_counter()
    while received < count:
        for msg in await subscription.fetch(min(window, count - received), timeout=10):
            await msg.ack()
            received += 1
    consumed = time.perf_counter() - started
    await js.delete_stream("BENCH_RAW")
    return {"publish_per_s": count / published, "consume_per_s": count / consumed}


# --- figures -----------------------------------------------------------------------------


def figures(submitted: list[Submitted | None], receipts: dict[str, float]) -> dict[str, Any]:
    accepted = [s for s in submitted if s is not None]
    if not accepted:
        return {"accepted": 0}
    first = min(s.started for s in accepted)
    last_answer = max(s.answered for s in accepted)
    seen = [receipts[s.report_id] for s in accepted if s.report_id in receipts]
    to_receipt = [receipts[s.report_id] - s.started for s in accepted if s.report_id in receipts]
    result: dict[str, Any] = {
        "accepted": len(accepted),
        "refused": len(submitted) - len(accepted),
        "receipts": len(seen),
        "accepted_per_s": round(len(accepted) / (last_answer - first), 1),
        "http_latency_s": percentiles([s.answered - s.started for s in accepted], 50, 95, 99),
        "submit_to_receipt_s": percentiles(to_receipt, 50, 95, 99),
    }
    if seen:
        result["receipts_per_s"] = round(len(seen) / (max(seen) - first), 1)
        result["last_receipt_after_last_submission_s"] = round(max(seen) - last_answer, 2)
    return result


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    count = args.submissions if args.mode == "burst" else int(args.rate * args.duration)
    units = -(-count // ENTRIES_PER_UNIT)
    with tempfile.TemporaryDirectory(prefix="qcdc-bench-") as tmp:
        log(f"starting the system on {args.db} in {tmp}")
        async with Stack(Path(tmp), args.db) as stack:
            started = time.perf_counter()
            nc = await stack.connect()
            obligations = await seed(stack, nc, units)
            await settled(nc)
            log(f"{len(obligations)} obligations ready in {time.perf_counter() - started:.1f} s")
            work = obligations[:count]
            baseline = await raw_bus(nc, count, message_size())
            log(f"baseline: {baseline}")
            observer = Observer()
            await observer.watch(nc)
            profilers = start_profilers(stack, args.profile)
            cpu_before = cpu_seconds(stack)
            log(f"{args.mode}: {len(work)} submissions")
            if args.mode == "burst":
                submitted = await burst(stack.url("reports"), work, args.concurrency)
            else:
                submitted = await sustained(stack.url("reports"), work, args.rate)
            accepted = sum(1 for s in submitted if s is not None)
            await observer.wait_for(accepted, args.receipt_timeout)
            stop_profilers(profilers)
            cpu_used = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds(stack).items()}
            result = figures(submitted, observer.receipts())
            result["other_notifications_delivered"] = observer.others.total()
            result["other_notifications_by_event_type"] = dict(observer.others)
            if args.timeline:
                write_timeline(args.timeline, submitted, observer)
            result["cpu_ms_per_submission"] = {
                name: round(1000 * seconds / max(1, len(work)), 2)
                for name, seconds in sorted(cpu_used.items())
            }
            await nc.close()
    result.update(
        {
            "bench": "pipeline",
            "mode": args.mode,
            "db": args.db,
            "machine": machine(),
            "submissions": count,
            "concurrency": args.concurrency if args.mode == "burst" else None,
            "rate_per_s": args.rate if args.mode == "sustained" else None,
            "baseline": {k: round(v, 1) for k, v in baseline.items()},
        }
    )
    if "accepted_per_s" in result:
        result["accepted_vs_raw_publish"] = round(
            result["accepted_per_s"] / baseline["publish_per_s"], 3
        )
    if "receipts_per_s" in result:
        result["receipts_vs_raw_publish"] = round(
            result["receipts_per_s"] / baseline["publish_per_s"], 3
        )
    return result


def write_timeline(path: str, submitted: list[Submitted | None], observer: Observer) -> None:
    """One line per accepted submission (``--timeline``): when it started (seconds from the
    first), the delays of its HTTP answer, its receipt and its ReportSubmitted on the bus,
    to see whether slow receipts are spread out or clustered in a stall, and where."""
    receipts = observer.receipts()
    accepted = sorted((s for s in submitted if s is not None), key=lambda s: s.started)
    first = accepted[0].started if accepted else 0.0
    with open(path, "w", encoding="utf-8") as out:
        for s in accepted:
            receipt = receipts.get(s.report_id)
            published = observer.published_at.get(s.report_id)
            row = [
                round(s.started - first, 4),
                round(s.answered - s.started, 4),
                None if receipt is None else round(receipt - s.started, 4),
                None if published is None else round(published - s.started, 4),
            ]
            out.write(json.dumps(row) + "\n")


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time so far of each part of the system: the services and the mail sink, the
    nats-server, every PostgreSQL process (its backends come and go), and this bench."""
    ticks = os.sysconf("SC_CLK_TCK")

    def of(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / ticks

    found = {name: of(pid) for name, pid in stack.pids().items()}
    found["nats-server"] = of(stack.nats.process.pid) if stack.nats.process else 0.0
    found["postgresql"] = sum(
        of(int(entry.name))
        for entry in Path("/proc").iterdir()
        if (entry.name.isdigit() and _command(entry).split(b"\0")[0].endswith(b"postgres"))
        or _command(entry).startswith(b"postgres:")
    )
    found["bench client"] = time.process_time()
    return found


def _command(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def start_profilers(stack: Stack, folder: str | None) -> list[subprocess.Popen[bytes]]:
    """py-spy on every process of the system while it works (``--profile DIR``): collapsed
    stacks per process, for ``py-spy``'s or speedscope's viewers."""
    if not folder:
        return []
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "50",
                "--nonblocking",  # sampling must not stop the process it measures
                "--gil",  # what holds the interpreter: CPU spent in Python, not waits
                "--output",
                str(Path(folder) / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in stack.pids().items()
    ]


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for profiler in profilers:
        profiler.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description="Submissions to receipts, end to end.")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--mode", choices=("burst", "sustained"), default="burst")
    parser.add_argument("-n", "--submissions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=100.0, help="sustained: per second")
    parser.add_argument("--duration", type=float, default=60.0, help="sustained: seconds")
    parser.add_argument("--receipt-timeout", type=float, default=600.0)
    parser.add_argument("--profile", help="folder for py-spy profiles of every process")
    parser.add_argument("--timeline", help="file for each submission's start and delays")
    json.dump(asyncio.run(measure(parser.parse_args())), sys.stdout)
    print()


if __name__ == "__main__":
    main()
