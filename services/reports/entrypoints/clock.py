"""The deadline clock as a background job of the reports service.

Every ``clock_interval_seconds`` it fires the deadline steps due at the injectable clock's
current time (tests move that time). Every replica runs it; the handler makes each step
fire once. An error is logged and the next tick tries again: the clock never stops.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog

from services.reports.domain.deadlines import StepKind
from services.reports.handlers.clock import ClockRun, run_clock
from services.reports.settings import ReportsSettings
from shared.outage import log_failure
from shared.runtime import Runtime

log = structlog.get_logger(__name__)


async def tick(runtime: Runtime, settings: ReportsSettings) -> ClockRun | None:
    """One run of the clock; None when it failed (logged)."""
    try:
        run = await run_clock(runtime.now_clock.now(), runtime.uow, settings)
    except Exception as exc:
        log_failure(log, "deadline clock run failed; retrying at the next tick", exc)
        return None
    _log_run(run)
    steps = runtime.metrics.clock_steps
    for kind, count in Counter(fired.step.split("-", 1)[0] for fired in run.fired).items():
        steps.labels(kind).inc(count)
    return run


def _log_run(run: ClockRun) -> None:
    if run.fired:
        # One line per pass: on a deadline day a pass fires tens of thousands of steps, and
        # each is in the outbox and on the bus with its obligation; per step only at debug.
        log.info(
            "deadline steps fired",
            steps=len(run.fired),
            by_step=dict(Counter(fired.step for fired in run.fired)),
            now=run.now.isoformat(),
        )
    for fired in run.fired:
        log.debug(
            "deadline step fired",
            obligation_id=fired.obligation_id,
            unit_code=fired.unit_code,
            step=fired.step,
            event_id=fired.event_id,
            planned_for=fired.planned_for.isoformat(),
        )
    if run.skipped:
        log.info("stale deadline steps skipped", steps=len(run.skipped), now=run.now.isoformat())
    if run.failed:
        log.warning("deadline steps to retry at the next tick", obligations=len(run.failed))
    if run.retried_batches:
        log.warning("deadline batches retried one by one", batches=run.retried_batches)


async def run_deadline_clock(runtime: Runtime) -> None:
    settings = runtime.settings
    if not isinstance(settings, ReportsSettings):
        raise TypeError("the deadline clock needs the reports service's settings")
    for kind in StepKind:  # at 0 from the start, so rates work
        runtime.metrics.clock_steps.labels(kind.value)
    while True:
        await tick(runtime, settings)
        await asyncio.sleep(settings.clock_interval_seconds)
