"""Personal data stays off the bus: after the whole demo (``qcdc up`` seeds a province with
its units' e-mail addresses and issues the seed's plan, notify mails every assignee, a commune
submits a report signed by a person and gets its receipt by e-mail), no message in any
stream carries an e-mail address, in its body or its headers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from shared.bus.streams import ALL_STREAMS
from shared.personal_data import EMAIL
from tests.e2e.test_embedded_runner import (  # noqa: F401
    DEMO_FOCAL_EMAIL,
    Up,
    _poll,
    _receipt_mail,
    _submit_demo_report,
    run_up,
)
from tests.support import patience

pytestmark = pytest.mark.slow


async def _every_message(url: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Every message every stream holds: (subject, headers, body)."""
    nc = await nats.connect(url)
    found: list[tuple[str, dict[str, str], bytes]] = []
    try:
        js = nc.jetstream()
        for spec in ALL_STREAMS:
            info = await js.stream_info(spec.name)
            if not info.state.messages:
                continue
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(spec.name, seq)
                except NotFoundError:
                    continue
                found.append((msg.subject or "", dict(msg.headers or {}), msg.data or b""))
    finally:
        await nc.close()
    return found


def test_no_email_address_in_any_event_after_the_demo(
    run_up: Callable[[str], Up],  # noqa: F811
) -> None:
    up = run_up("demo.out")
    with httpx.Client(base_url=up.url("reports"), timeout=patience(10)) as reports:
        receipt = _submit_demo_report(reports)  # signed "Nguyễn Thị Lan"
    mail = _poll(
        lambda: _receipt_mail(up.data_dir / "mail", receipt["receipt_number"]),
        patience(30),
        f"e-mail for receipt {receipt['receipt_number']}",
    )
    nats_url = f"nats://127.0.0.1:{up.ports['nats']}"

    def receipt_delivered() -> list[tuple[str, dict[str, str], bytes]] | None:
        messages = asyncio.run(_every_message(nats_url))
        delivered = [m for m in messages if m[0].startswith("qcdc.v1.notification.delivered.")]
        return messages if any(b"report.submitted" in body for _, _, body in delivered) else None

    messages = _poll(receipt_delivered, patience(30), "NotificationDelivered of the receipt")

    # The addresses were there, and were used: the mail went to the commune's focal person.
    assert [a.addr_spec for a in mail["To"].addresses] == [DEMO_FOCAL_EMAIL]
    leaks = [
        (subject, EMAIL.findall(body.decode() + json.dumps(headers)))
        for subject, headers, body in messages
        if EMAIL.search(body.decode() + json.dumps(headers))
    ]
    assert leaks == []
    assert not any("Nguyễn Thị Lan".encode() in body for _, _, body in messages)
    units = [_body(b) for s, _, b in messages if s.startswith("qcdc.v1.unit.registered.")]
    assert units and any(unit["contacts"].get("sealed") for unit in units)
    delivered = [_body(b) for s, _, b in messages if ".notification.delivered." in s]
    assert {d["recipient"] for d in delivered} >= {"email:unit:03637"}


def _body(raw: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(raw)
    return parsed
