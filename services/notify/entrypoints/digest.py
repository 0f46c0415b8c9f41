"""The digest job: a background loop that assembles the daily digests when they are due."""

from __future__ import annotations

import asyncio

import structlog

from services.notify.handlers.digest import assemble_digests
from services.notify.settings import NotifySettings
from shared.outage import log_failure
from shared.runtime import Runtime

log = structlog.get_logger(__name__)


async def run_digest_job(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, NotifySettings)
    while True:
        try:
            await assemble_digests(runtime.uow, runtime.now_clock, hour=settings.digest_hour)
        except Exception as exc:  # e.g. another replica made the same digest first: next round
            log_failure(log, "digest job failed; continuing", exc)
        await asyncio.sleep(settings.digest_poll_seconds)
