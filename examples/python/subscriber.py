"""A QCDC bus subscriber for integrators, with nats-py only (no QCDC code needed).

- durable consumers on a unit subtree (the unit itself and everything below it): they
  resume where they left off after a restart;
- ``--since``: a replay of the subtree's history from a point in time;
- every message checked as a QCDC CloudEvent (binary mode: ``ce-*`` headers, JSON body,
  ``Nats-Msg-Id`` = ``ce-id``); one that fails is terminated and reported, never retried;
- duplicates (a redelivery, a replay, a re-published event) dropped by ``ce-id``, kept in a
  SQLite file in the same transaction as the handling.

Each outcome is printed as one JSON line (``handled``, ``duplicate`` or ``rejected``).

    pip install nats-py
    set -a; . integrator-egov-h801.env; set +a     # from `qcdc nats config --integrator …`
    python subscriber.py --subtree T89.H801 --durable integrator-egov-h801-inbox
    python subscriber.py --subtree T89.H801 --since 2026-06-01T00:00:00Z --once

Environment: ``QCDC_NATS_URL`` (default nats://127.0.0.1:4222), ``QCDC_NATS_USER``,
``QCDC_NATS_PASSWORD``, ``QCDC_NATS_INBOX_PREFIX`` (required by subtree credentials),
``QCDC_SUBTREE`` (default for ``--subtree``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

EVENT_STREAMS = ("QCDC_PLANS", "QCDC_REPORTS", "QCDC_NOTIFY")
SUBJECT = re.compile(
    r"^qcdc\.v1\.(?P<aggregate>[a-z_]+)\.(?P<event>[a-z_]+)\."
    r"(?P<path>[A-Za-z0-9_-]{1,32}(?:\.[A-Za-z0-9_-]{1,32}){0,11})$"
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BATCH = 50


class Rejected(Exception):
    """The message is not a QCDC CloudEvent; retrying will not change that."""


def check(msg: Msg) -> dict[str, object]:
    """The CloudEvent's attributes and data, or Rejected naming what is wrong."""
    match = SUBJECT.fullmatch(msg.subject)
    if match is None:
        raise Rejected("subject is not qcdc.v1.<aggregate>.<event>.<unit path>")
    headers = msg.headers or {}
    ce_id = headers.get("ce-id", "")
    expected = {
        "ce-specversion": "1.0",
        "ce-type": f"qcdc.{match['aggregate']}.{match['event']}.v1",
        "ce-subject": match["path"],
        "content-type": "application/json",
        "Nats-Msg-Id": ce_id,
    }
    for name, value in expected.items():
        if headers.get(name) != value:
            raise Rejected(f"{name} is {headers.get(name)!r}, expected {value!r}")
    if not UUID.fullmatch(ce_id):
        raise Rejected(f"ce-id {ce_id!r} is not a UUID")
    if not headers.get("ce-source", "").startswith("/qcdc/"):
        raise Rejected(f"ce-source {headers.get('ce-source')!r}")
    try:
        time = datetime.fromisoformat(headers.get("ce-time", ""))
        data = json.loads(msg.data)
    except ValueError as exc:
        raise Rejected(f"ce-time or body: {exc}") from exc
    if not isinstance(data, dict) or ".".join(data.get("unit_path", [])) != match["path"]:
        raise Rejected("the body's unit_path does not end the subject")
    return {"id": ce_id, "type": expected["ce-type"], "time": time.isoformat(), "data": data}


class Seen:
    """Handled ce-ids, in your own database: the handling and the id commit together."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (ce_id TEXT PRIMARY KEY, subject TEXT)")

    @contextmanager
    def first_time(self, ce_id: str, subject: str) -> Iterator[bool]:
        """True inside the block when ``ce_id`` is new; committed only if the block ends."""
        with self.db:  # one transaction: rolled back if handling raises
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO seen (ce_id, subject) VALUES (?, ?)", (ce_id, subject)
            )
            yield cursor.rowcount == 1


def report(outcome: str, msg: Msg, **fields: object) -> None:
    line = {"outcome": outcome, "subject": msg.subject, **fields}
    print(json.dumps(line, ensure_ascii=False), flush=True)


async def handle(msg: Msg, seen: Seen, *, acks: bool = True) -> None:
    try:
        event = check(msg)
    except Rejected as exc:
        report("rejected", msg, reason=str(exc), ce_id=(msg.headers or {}).get("ce-id"))
        if acks:
            await msg.term()  # never redelivered; it stays in the stream's history
        return
    with seen.first_time(str(event["id"]), msg.subject) as new:
        # Your handling goes here, in the same transaction as the id.
        report("handled" if new else "duplicate", msg, ce_id=event["id"], type=event["type"])
    if acks:
        await msg.ack()


async def read_pending(sub: JetStreamContext.PullSubscription, seen: Seen, *, acks: bool) -> None:
    """Fetch until the consumer has nothing pending (asked of the server, so an empty
    consumer costs no fetch timeout)."""
    while (await sub.consumer_info()).num_pending:
        try:
            batch = await sub.fetch(BATCH, timeout=5)
        except (TimeoutError, nats.errors.TimeoutError):
            return
        for msg in batch:
            await handle(msg, seen, acks=acks)


def filters(subtree: str) -> list[str]:
    """``>`` needs at least one token: the unit itself, and everything below it."""
    return [f"qcdc.v1.*.*.{subtree}", f"qcdc.v1.*.*.{subtree}.>"]


async def drain(js: JetStreamContext, stream: str, durable: str, subject: str, seen: Seen) -> None:
    """Everything the durable has not acked yet. One filter per consumer: a subtree
    credential may create only consumers whose filter the server can check."""
    sub = await js.pull_subscribe(
        subject,
        durable=durable,
        stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=10),
    )
    await read_pending(sub, seen, acks=True)


async def replay(
    js: JetStreamContext, stream: str, user: str, subject: str, since: datetime, seen: Seen
) -> None:
    """The stream's history on ``subject`` from ``since``: an ephemeral consumer named
    under the credential's prefix, removed by the server 30 s after we stop reading."""
    name = f"{user}-replay-{uuid.uuid4().hex[:12]}"
    await js.add_consumer(
        stream,
        ConsumerConfig(
            name=name,
            filter_subject=subject,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=since,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30,
        ),
    )
    sub = await js.pull_subscribe_bind(consumer=name, stream=stream)
    await read_pending(sub, seen, acks=False)


async def run(args: argparse.Namespace) -> None:
    user = os.environ.get("QCDC_NATS_USER")
    nc: Client = await nats.connect(
        os.environ.get("QCDC_NATS_URL", "nats://127.0.0.1:4222"),
        user=user,
        password=os.environ.get("QCDC_NATS_PASSWORD"),
        inbox_prefix=os.environ.get("QCDC_NATS_INBOX_PREFIX", "_INBOX"),
    )
    js = nc.jetstream(timeout=10)
    seen = Seen(args.seen)
    try:
        while True:
            for stream in EVENT_STREAMS:
                for part, subject in zip(("self", "below"), filters(args.subtree), strict=True):
                    if args.since:
                        await replay(js, stream, user or "anonymous", subject, args.since, seen)
                    else:
                        short = stream.removeprefix("QCDC_").lower()
                        durable = f"{args.durable}-{short}-{part}"
                        await drain(js, stream, durable, subject, seen)
            if args.once or args.since:
                return
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subtree", default=os.environ.get("QCDC_SUBTREE"), help="e.g. T89.H801")
    parser.add_argument("--durable", help="consumer name prefix, e.g. integrator-egov-h801-inbox")
    parser.add_argument("--since", type=datetime.fromisoformat, help="replay from this time")
    parser.add_argument("--once", action="store_true", help="stop when nothing is pending")
    parser.add_argument("--seen", default="seen.sqlite3", help="SQLite file of handled ce-ids")
    args = parser.parse_args()
    if not args.subtree or not (args.durable or args.since):
        parser.error("--subtree and one of --durable or --since are required")
    if args.since and args.since.tzinfo is None:
        parser.error("--since needs a time zone, e.g. 2026-06-01T00:00:00Z")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
