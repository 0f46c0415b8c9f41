"""Benchmark: notify's delivery of receipts, against the SMTP sink's and JetStream's own limits.

Real parts only: a nats-server with ``sync_interval: always``, notify as its own process
(``python -m services serve notify``) on SQLite or PostgreSQL, and the development mail
sink (``python -m services.mailsink``) writing one ``.eml`` file per message.

1. Baselines, measured first, in the same run, on the same servers:
   - ``sink``: aiosmtplib sending as many messages as notify will send (a receipt and a
     notice per report) over ONE persistent SMTP connection to the same sink: the sink's
     own limit, so the ceiling of any sender;
   - ``jetstream``: nats-py publishing ``--events`` messages of a ``ReportSubmitted``'s size
     with up to 256 acks in flight, to a stream with the same durability: the bus's limit
     (the pipeline's target is receipts/s ≥ 0.05 × this).
2. notify learns ``--events`` units (``UnitRegistered``, all mail at one domain, as in the
   demo) and the bench waits until its unit consumer has handled them all.
3. The delivery worker alone (unless ``--no-drain``): notify is stopped, ``2 × events``
   e-mails are written into its database as due deliveries, notify is started again and
   the bench times them out through the sink (first to last ``NotificationDelivered``).
4. ``--events`` ``ReportSubmitted`` (one per unit) are published, as fast as the bus takes
   them (burst, the default) or at ``--rate`` per second; the bench watches the bus for
   every ``NotificationDelivered`` and stops when each report's receipt has been delivered.

Prints one JSON object: receipts/s, mails/s, the time from the last submission to the last
receipt, p50/p95/p99 of submission → ``NotificationDelivered`` of the receipt, CPU seconds
of each process meanwhile, the worker's drain rate, the baselines and the ratios
(``worker_alone_vs_sink``: the delivery worker against the sink's one-connection limit).
Logs go to stderr.

Usage: python -m bench.notify [--events 2000] [--db sqlite|postgres] [--rate R]
       [--no-drain] [--env QCDC_SMTP_CONNECTIONS=8] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import StorageType, StreamConfig
from nats.js.client import JetStreamContext
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.support import machine, percentiles, scratch_database
from services.natsd import NatsServer, free_port, wait_for_port
from services.notify.adapters.deliveries import DeliveryRepository
from services.notify.adapters.mail import MAIL_POLICY, build_email
from services.notify.domain.model import Message
from shared.bus.envelope import encode
from shared.bus.streams import provision
from shared.db import create_engine
from shared.events import (
    Channel,
    Event,
    ReportSubmitted,
    UnitRegistered,
)
from tests import builders

DELIVERED = "qcdc.notification.delivered.v1"
FAILED = "qcdc.notification.failed.v1"
DOMAIN = "demo.gov.vn"
POSTGRES_DSN = os.environ.get(
    "QCDC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ACKS_IN_FLIGHT = 256


def log(message: str) -> None:
    print(f"[bench.notify] {message}", file=sys.stderr, flush=True)


# --- the events ------------------------------------------------------------------------------


def _code(n: int) -> str:
    return f"X{n:05d}"


def _focal(n: int) -> str:
    return f"vanphong.{_code(n).lower()}@{DOMAIN}"


def units(count: int) -> list[UnitRegistered]:
    return [
        *builders.province(home_affairs_focal=f"vanphong.snv@{DOMAIN}"),
        *(
            builders.unit_below(_code(n), f"Ủy ban nhân dân xã Số {n}", _focal(n))
            for n in range(count)
        ),
    ]


def submitted(n: int) -> ReportSubmitted:
    return builders.submitted(
        _code(n),
        report_id=f"r-{n}",
        receipt_number=f"BC-2026-{n + 1:06d}",
        year=2026,
        submitted_at=datetime.now(UTC),
    )


def _encoded(event: Event) -> tuple[str, dict[str, str], bytes]:
    return encode(event, source="/bench", correlation_id=str(uuid.uuid4()))


# --- processes -------------------------------------------------------------------------------


@dataclass
class Child:
    """A process of ours, logging to a file; stopped with SIGTERM, then SIGKILL."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, env={**os.environ, **self.env}, stdout=handle, stderr=subprocess.STDOUT
        )
        log(f"{self.name} started, pid {self.process.pid}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def _pid(process: Child | NatsServer) -> int:
    assert process.process is not None
    return process.process.pid


@contextlib.contextmanager
def running(child: Child) -> Iterator[Child]:
    child.start()
    try:
        yield child
    finally:
        child.stop()


async def wait_healthy(url: str, child: Child, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if child.process is not None and child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{child.name} not healthy after {timeout} s:\n{child.tail()}")


# --- baselines -------------------------------------------------------------------------------


def _mail_like_notify(n: int) -> EmailMessage:
    """A message of the size and shape of a receipt (text and HTML, quoted-printable)."""
    text = (
        "Kính gửi: Ủy ban nhân dân xã Số {n},\n\n"
        "Hệ thống đã nhận báo cáo 6 tháng của đơn vị theo Kế hoạch 123/KH-UBND.\n" * 6
    ).format(n=n)
    return build_email(
        key=uuid.uuid4().hex,
        mail_from="QCDC <khong-tra-loi@qcdc.local>",
        to=_focal(n),
        subject=f"[Xác nhận] Đã nhận báo cáo 6 tháng của Ủy ban nhân dân xã Số {n} – số BC-{n}",
        text=text,
        html="<p>" + text.replace("\n", "<br>") + "</p>",
    )


async def sink_baseline(port: int, count: int) -> dict[str, float]:
    """The sink's own limit: ``count`` messages over one persistent SMTP connection."""
    messages = [_mail_like_notify(n) for n in range(count)]
    payloads = [
        (
            m.as_bytes(policy=MAIL_POLICY),
            parseaddr(str(m["From"]))[1],
            [a for _, a in getaddresses(m.get_all("To", []))],
        )
        for m in messages
    ]
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await smtp.connect()
    started = time.perf_counter()
    for data, sender, recipients in payloads:
        await smtp.sendmail(sender, recipients, data)
    elapsed = time.perf_counter() - started
    await smtp.quit()
    return {
        "messages": count,
        "seconds": round(elapsed, 3),
        "per_second": round(count / elapsed, 1),
    }


async def jetstream_baseline(js: JetStreamContext, count: int) -> dict[str, float]:
    """Raw nats-py publishing of ReportSubmitted-sized messages, ≤ 256 acks in flight, on a
    stream as durable as the service streams (file storage, the server's sync_interval)."""
    await js.add_stream(StreamConfig(name="BENCH", subjects=["bench.>"], storage=StorageType.FILE))
    _, headers, body = _encoded(submitted(0))
    started = time.perf_counter()
    for n in range(count):
        await js.publish_async(
            f"bench.{n}", body, headers={**headers, "Nats-Msg-Id": f"b{n}"}, wait_stall=5.0
        )
    await js.publish_async_completed()
    elapsed = time.perf_counter() - started
    await js.delete_stream("BENCH")
    return {
        "messages": count,
        "seconds": round(elapsed, 3),
        "per_second": round(count / elapsed, 1),
        "bytes": len(body),
    }


# --- watching the bus ------------------------------------------------------------------------


@dataclass
class Watch:
    """NotificationDelivered / NotificationFailed seen on the bus, by event and recipient."""

    receipts_of: dict[str, str]  # event id → the reference of its receipt's recipient
    submitted_at: dict[str, float] = field(default_factory=dict)
    receipt_at: dict[str, float] = field(default_factory=dict)
    delivered: int = 0
    failed: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, msg: Msg) -> None:
        now = time.perf_counter()
        kind = (msg.headers or {}).get("ce-type")
        if kind == FAILED:
            self.failed += 1
            return
        if kind != DELIVERED:
            return
        self.delivered += 1
        data = json.loads(msg.data)
        event_id = data["event_id"]
        if self.receipts_of.get(event_id) == data["recipient"]:
            self.receipt_at.setdefault(event_id, now)
            if len(self.receipt_at) == len(self.receipts_of):
                self.done.set()


async def units_known(js: JetStreamContext) -> bool:
    try:
        info = await js.consumer_info("QCDC_PLANS", "notify-units")
    except nats.js.errors.NotFoundError:
        return False
    pending = info.num_pending or 0
    return bool(pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq)


async def register_units(js: JetStreamContext, count: int, timeout: float) -> float:
    started = time.perf_counter()
    for unit in units(count):
        subject, headers, body = _encoded(unit)
        await js.publish_async(subject, body, headers=headers, wait_stall=5.0)
    await js.publish_async_completed()
    deadline = time.monotonic() + timeout
    while not await units_known(js):
        if time.monotonic() > deadline:
            raise TimeoutError("notify did not learn the units in time")
        await asyncio.sleep(0.2)
    return time.perf_counter() - started


async def submit(
    js: JetStreamContext, watch: Watch, events: list[tuple[str, dict[str, str], bytes]], rate: float
) -> None:
    """Publish every event: as fast as the bus takes them (rate 0), or ``rate`` per second."""
    started = time.perf_counter()
    for n, (subject, headers, body) in enumerate(events):
        if rate:
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        watch.submitted_at[headers["ce-id"]] = time.perf_counter()
        await js.publish_async(subject, body, headers=headers, wait_stall=5.0)
    await js.publish_async_completed()


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the run ---------------------------------------------------------------------------------


def notify_env(
    args: argparse.Namespace, nats_url: str, db_url: str, smtp_port: int
) -> dict[str, str]:
    env = {
        "QCDC_NATS_URL": nats_url,
        "QCDC_DATABASE_URL": db_url,
        "QCDC_SMTP_PORT": str(smtp_port),
        "QCDC_LOG_LEVEL": "WARNING",
        "QCDC_AUTH": "open",
    }
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started_on = machine()
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-notify-")))
        else:  # kept afterwards: logs, mail, the SQLite file
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        server = NatsServer(workdir / "nats", free_port())
        server.start()
        try:
            return {
                **await _with_nats(args, workdir, server),
                "machine": {**started_on, "load_1m_at_end": round(os.getloadavg()[0], 2)},
            }
        finally:
            server.stop()


async def _with_nats(args: argparse.Namespace, workdir: Path, server: NatsServer) -> dict[str, Any]:
    smtp_port = free_port()
    mail = str(workdir / "mail")
    sink = Child(
        "mailsink",
        [sys.executable, "-m", "services.mailsink", "--port", str(smtp_port), "--dir", mail],
        {},
        workdir / "mailsink.log",
    )
    nc = await nats.connect(server.url, max_reconnect_attempts=-1)
    js = nc.jetstream(publish_async_max_pending=ACKS_IN_FLIGHT)
    try:
        await provision(js)
        with running(sink):
            wait_for_port("127.0.0.1", smtp_port)
            mails = args.events * 2  # a receipt and the receiving unit's notice per report
            log(f"baseline: {mails} mails over one SMTP connection")
            sink_base = await sink_baseline(smtp_port, mails)
            log(f"baseline: {args.events} raw JetStream publishes")
            js_base = await jetstream_baseline(js, args.events)
            async with scratch_database(args.db, workdir, "notify") as db_url:
                watched = {
                    "mailsink": _pid(sink),
                    "nats-server": _pid(server),
                    "bench": os.getpid(),
                }
                figures = await _with_notify(
                    args, workdir, server.url, nc, js, db_url, smtp_port, watched
                )
    finally:
        await nc.close()
    receipts = figures["receipts_per_second"]
    return {
        "benchmark": "notify",
        "db": args.db,
        "events": args.events,
        "mode": f"rate {args.rate}/s" if args.rate else "burst",
        **figures,
        "baseline_sink_one_connection": sink_base,
        "baseline_jetstream_publish": js_base,
        "mails_vs_sink": round(figures["mails_per_second"] / sink_base["per_second"], 3),
        "worker_alone_vs_sink": round(
            figures["delivery_worker_alone"].get("mails_per_second", 0) / sink_base["per_second"], 3
        ),
        "receipts_vs_jetstream": round(receipts / js_base["per_second"], 4),
        "settings": dict(item.partition("=")[::2] for item in args.env),
    }


async def _with_notify(
    args: argparse.Namespace,
    workdir: Path,
    nats_url: str,
    nc: Client,
    js: JetStreamContext,
    db_url: str,
    smtp_port: int,
    watched: dict[str, int],
) -> dict[str, Any]:
    port = free_port()
    notify = Child(
        "notify",
        [sys.executable, "-m", "services", "serve", "notify"],
        {**notify_env(args, nats_url, db_url, smtp_port), "QCDC_HTTP_PORT": str(port)},
        workdir / "notify.log",
    )
    with running(notify):
        await wait_healthy(f"http://127.0.0.1:{port}", notify)
        learned = await register_units(js, args.events, args.timeout)
        log(f"notify knows {args.events} units after {learned:.1f} s")
    drained: dict[str, float] = {}
    if args.drain:
        drained = await _drain(args, nc, db_url, notify)
    with running(notify):
        await wait_healthy(f"http://127.0.0.1:{port}", notify)
        watched = {"notify": _pid(notify), **watched}
        return {**await _burst(args, nc, js, notify, watched), "delivery_worker_alone": drained}


async def _drain(
    args: argparse.Namespace, nc: Client, db_url: str, notify: Child
) -> dict[str, float]:
    """The delivery worker alone: ``2 × events`` e-mails already due when notify starts
    (written straight into its database while it is stopped), sent as fast as it can."""
    count = 2 * args.events
    watch = Watch(await preload(db_url, count))
    subscription = await nc.subscribe("qcdc.v1.notification.>", cb=watch.on_message)
    await nc.flush()
    log(f"delivery worker alone: {count} due e-mails")
    with running(notify):
        await asyncio.wait_for(watch.done.wait(), args.timeout)
    await subscription.unsubscribe()
    first, last = min(watch.receipt_at.values()), max(watch.receipt_at.values())
    return {
        "mails": count,
        "seconds_first_to_last": round(last - first, 3),
        "mails_per_second": round((count - 1) / (last - first), 1),
    }


async def preload(db_url: str, count: int) -> dict[str, str]:
    """``count`` pending e-mails (receipts' text) in notify's database; event id → address."""
    engine = create_engine(db_url)
    sessions = async_sessionmaker(engine)
    messages = []
    for n in range(count):
        mail = _mail_like_notify(n)
        body = mail.get_body(("plain",))
        assert isinstance(body, EmailMessage)
        messages.append(
            Message(
                event_id=str(uuid.uuid4()),
                event_type=ReportSubmitted.ce_type(),
                channel=Channel.EMAIL,
                recipient=_focal(n % max(1, count // 2)),
                unit_path=["T89", _code(n % max(1, count // 2))],
                correlation_id="bench",
                subject=str(mail["Subject"]),
                text=body.get_content(),
                html=body.get_content(),
            )
        )
    try:
        for chunk in range(0, count, 500):
            async with sessions() as session, session.begin():
                await DeliveryRepository(session).add_all_missing(
                    messages[chunk : chunk + 500], "T89", datetime.now(UTC)
                )
    finally:
        await engine.dispose()
    return {m.event_id: m.recipient for m in messages}


async def _burst(
    args: argparse.Namespace,
    nc: Client,
    js: JetStreamContext,
    notify: Child,
    watched: dict[str, int],
) -> dict[str, Any]:
    events = [_encoded(submitted(n)) for n in range(args.events)]
    # NotificationDelivered names the unit reached, not its address (shared.personal_data).
    receipts = {
        headers["ce-id"]: f"email:unit:{_code(n)}" for n, (_, headers, _) in enumerate(events)
    }
    watch = Watch(receipts)
    subscription = await nc.subscribe("qcdc.v1.notification.>", cb=watch.on_message)
    await nc.flush()
    log(f"publishing {args.events} ReportSubmitted" + (f" at {args.rate}/s" if args.rate else ""))
    cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    await submit(js, watch, events, args.rate)
    last_submitted = time.perf_counter()
    try:
        await asyncio.wait_for(watch.done.wait(), args.timeout)
    except TimeoutError:
        log(f"timed out: {len(watch.receipt_at)} of {args.events} receipts\n{notify.tail()}")
        raise
    cpu = {name: round(cpu_seconds(pid) - cpu_before[name], 2) for name, pid in watched.items()}
    await subscription.unsubscribe()
    first = min(watch.submitted_at.values())
    last_receipt = max(watch.receipt_at.values())
    latencies = [watch.receipt_at[e] - watch.submitted_at[e] for e in watch.receipt_at]
    elapsed = last_receipt - first
    return {
        "seconds_first_submission_to_last_receipt": round(elapsed, 3),
        "publish_seconds": round(last_submitted - first, 3),
        "last_receipt_after_last_submission_s": round(last_receipt - last_submitted, 3),
        "receipts_per_second": round(args.events / elapsed, 1),
        "mails_per_second": round(watch.delivered / elapsed, 1),
        "notifications_delivered_seen": watch.delivered,
        "notifications_failed_seen": watch.failed,
        "latency_submit_to_receipt_s": {
            **percentiles(latencies, 50, 95, 99),
            "max": round(max(latencies), 4),
        },
        "cpu_seconds_submission_to_last_receipt": cpu,
        "notify_cpu_ms_per_event": round(cpu["notify"] / args.events * 1000, 2),
        "mailsink_cpu_ms_per_mail": round(cpu["mailsink"] / max(1, watch.delivered) * 1000, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000, help="ReportSubmitted, one per unit")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0: a burst")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds, at most")
    parser.add_argument("--workdir", type=Path, help="keep logs, mail and data here")
    parser.add_argument(
        "--no-drain",
        dest="drain",
        action="store_false",
        help="skip the delivery worker alone (2 × events e-mails already due)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="QCDC_NAME=VALUE",
        help="a notify setting for this run (repeatable)",
    )
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
