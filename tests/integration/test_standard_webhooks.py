"""Webhooks signed by the Standard Webhooks specification: a real delivery from notify (real
nats-server, SQLite, HTTP) verifies with the ``standardwebhooks`` package, in-process and in
the example receiver (examples/python/webhook_receiver.py); a subscription made with the
earlier scheme keeps it until moved over; migration 0008 marks existing rows legacy."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from nats.js.client import JetStreamContext
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.natsd import free_port
from services.notify.adapters.webhook import new_standard_secret
from services.notify.bootstrap import SERVICE as NOTIFY
from tests.integration import test_webhooks as hooks
from tests.integration.test_webhooks import (
    SUBMITTED,
    Receiver,
    StartNotify,
    publish,
    register_units,
    submitted,
    subscribe,
)
from tests.support import DEFAULT_TIMEOUT, InProcessService, eventually, patience

ROOT = Path(__file__).resolve().parents[2]
# The webhook tests' fixtures: notify in-process and local receivers (tests/conftest.py: js).
start_notify = hooks.start_notify
receivers = hooks.receivers
quick_backoff = hooks.quick_backoff


async def subscribe_standard(notify: InProcessService, url: str, secret: str) -> dict[str, Any]:
    body = {
        "unit_code": "STP",
        "event_types": ["report.submitted"],
        "channel": "webhook",
        "address": url,
        "secret": secret,
    }
    async with notify.client() as client:
        response = await client.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


Hooked = tuple[InProcessService, Receiver]


@pytest.fixture
async def hooked(
    start_notify: StartNotify,
    receivers: Callable[..., Awaitable[Receiver]],
    js: JetStreamContext,
) -> Hooked:
    """Notify, told of the units, and a webhook receiver that accepts every delivery."""
    notify = await start_notify()
    hook = await receivers()
    await register_units(js, notify)
    return notify, hook


async def test_a_delivery_verifies_with_the_standardwebhooks_package(
    hooked: Hooked, js: JetStreamContext
) -> None:
    notify, hook = hooked
    secret = new_standard_secret()
    created = await subscribe_standard(notify, hook.url, secret)
    assert created["signature_scheme"] == "standard" and "secret" not in created
    event_id = await publish(js, submitted())

    await hook.wait_for(lambda hits: len(hits) == 1)
    [hit] = hook.hits
    event = Webhook(secret).verify(hit.body, hit.headers)
    assert event["id"] == event_id and event["type"] == SUBMITTED
    assert hit.headers["webhook-id"] == hit.headers["x-qcdc-delivery"]
    assert "x-qcdc-signature" not in hit.headers
    with pytest.raises(WebhookVerificationError):
        Webhook(new_standard_secret()).verify(hit.body, hit.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(hit.body + b" ", hit.headers)


async def test_a_plain_secret_is_refused_for_a_standard_webhook(
    start_notify: StartNotify,
) -> None:
    notify = await start_notify()
    async with notify.client() as client:
        response = await client.post(
            "/subscriptions",
            json={
                "unit_code": "STP",
                "event_types": ["report.submitted"],
                "channel": "webhook",
                "address": "http://127.0.0.1:9/hook",
                "secret": "bí-mật-của-tích-hợp",
            },
        )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "secret" and "whsec_" in error["errors"][0]["message"]


async def test_a_legacy_subscription_moves_to_standard_signatures(
    hooked: Hooked, js: JetStreamContext
) -> None:
    notify, hook = hooked
    legacy_id = await subscribe(notify, hook.url)  # a row as made before migration 0008
    await publish(js, submitted(1))
    await hook.wait_for(lambda hits: len(hits) == 1)
    assert "x-qcdc-signature" in hook.hits[0].headers
    assert "webhook-signature" not in hook.hits[0].headers

    secret = new_standard_secret()
    async with notify.client() as client:
        bad = await client.put(f"/subscriptions/{legacy_id}/signature", json={"secret": "x" * 20})
        moved = await client.put(f"/subscriptions/{legacy_id}/signature", json={"secret": secret})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "secret"
    assert moved.status_code == 200 and moved.json()["signature_scheme"] == "standard"
    await publish(js, submitted(2))
    await hook.wait_for(lambda hits: len(hits) == 2)
    event = Webhook(secret).verify(hook.hits[1].body, hook.hits[1].headers)
    assert event["data"]["receipt_number"] == "STP-2023-0002"


@pytest.fixture
def example_receiver(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    secret = new_standard_secret()
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / "python" / "webhook_receiver.py"),
            "--port",
            str(port),
        ],
        env={**os.environ, "QCDC_WEBHOOK_SECRET": secret},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert json.loads(process.stdout.readline()) == {"listening": port}
    yield f"http://127.0.0.1:{port}/qcdc/events", secret, process
    process.terminate()
    process.wait(timeout=patience(10))


async def test_the_example_receiver_verifies_a_real_delivery(
    start_notify: StartNotify,
    js: JetStreamContext,
    example_receiver: tuple[str, str, subprocess.Popen[str]],
) -> None:
    url, secret, process = example_receiver
    notify = await start_notify()
    await register_units(js, notify)
    await subscribe_standard(notify, url, secret)
    event_id = await publish(js, submitted())

    async def sent() -> bool:
        async with notify.client() as client:
            found = (await client.get("/deliveries", params={"status": "sent"})).json()
        return any(d["recipient"] == url for d in found)

    await eventually(sent)
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), DEFAULT_TIMEOUT)
    accepted = json.loads(line)
    assert accepted["id"] == event_id and accepted["type"] == SUBMITTED
    assert accepted["subject"] == "T89.STP"


def test_migration_0008_keeps_existing_subscriptions_on_the_legacy_scheme(
    tmp_path: Path,
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/notify.db")
    config = Config()
    config.set_main_option("script_location", str(NOTIFY.migrations))
    row = {
        "id": "old",
        "unit_code": "STP",
        "include_subtree": False,
        "event_types": "[]",
        "channel": "webhook",
        "address": "https://hooks.example.vn/",
        "secret": "bí-mật-của-tích-hợp",
        "digest": False,
        "active": True,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
    }
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        insert = sa.text(f"INSERT INTO subscriptions ({columns}) VALUES ({values})")
        connection.execute(insert, row)
        command.upgrade(config, "head")
        connection.execute(insert, {**row, "id": "new"})  # the column left to its default
        found = connection.execute(sa.text("SELECT id, signature_scheme FROM subscriptions"))
        schemes = {str(row_id): str(scheme) for row_id, scheme in found}
    engine.dispose()
    assert schemes == {"old": "legacy", "new": "standard"}
