"""The outbox: events leave in commit order with Nats-Msg-Id = ce-id, and `qcdc outbox
replay --since` restores what a NATS crash lost."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import nats

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from tests.integration.scenario import UNITS
from tests.support import InProcessService, eventually, service_settings


async def _stream_subjects(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("QCDC_PLANS")
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            msg = await js.get_msg("QCDC_PLANS", seq)
            assert msg.headers is not None
            assert msg.headers["Nats-Msg-Id"] == msg.headers["ce-id"]
            found.append(json.loads(msg.data or b"{}")["code"])
        return found
    finally:
        await nc.close()


async def test_replay_republishes_what_the_stream_lost(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/plans.db"
    settings = service_settings(PLANS, nats_url=nats_server.url, database_url=database_url)
    service = await InProcessService(PLANS, settings).start()
    try:
        async with service.client() as plans:
            for unit in UNITS:
                assert (await plans.post("/units", json=unit)).status_code == 201

        async def all_published() -> list[str]:
            codes = await _stream_subjects(nats_server.url)
            return codes if len(codes) == len(UNITS) else []

        assert await eventually(all_published) == [u["code"] for u in UNITS]
    finally:
        await service.stop()

    # A crash that loses acknowledged writes, as a purge of the stream and its dedupe state.
    nats_server.stop()
    for path in (nats_server.data_dir / "jetstream").rglob("*"):
        if path.is_file() and "QCDC_PLANS" in path.parts:
            path.unlink()
    nats_server.start()

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        "outbox",
        "replay",
        "--since",
        "2000-01-01T00:00:00Z",
        "--service",
        "plans",
        env={**os.environ, "QCDC_NATS_URL": nats_server.url, "QCDC_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    assert process.returncode == 0, output
    assert f"plans: republished {len(UNITS)} event(s)" in output
    assert await _stream_subjects(nats_server.url) == [u["code"] for u in UNITS]
