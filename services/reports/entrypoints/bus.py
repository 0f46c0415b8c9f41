"""Bus entrypoints of the reports service: which events it consumes, and their handlers."""

from __future__ import annotations

import functools
from typing import Any

from faststream.nats.annotations import NatsMessage
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from services.reports.adapters.repositories import ObligationRepository
from services.reports.domain.model import Obligation, ReportRefused
from services.reports.handlers import intake, mirror
from services.reports.handlers import obligations as handlers
from services.reports.handlers.clock import rules_from
from services.reports.settings import ReportsSettings
from shared.bus.consumer import ConsumerSpec
from shared.bus.streams import PLANS, REPORTS
from shared.errors import Missing, Refused
from shared.events import (
    PlanAmended,
    PlanClosed,
    PlanIssued,
    ReportAccepted,
    ReportRequested,
    ReportReturned,
    ReportSubmitted,
    UnitRegistered,
    UnitUpdated,
)
from shared.runtime import Runtime
from shared.settings import ServiceSettings
from shared.units import NfcText, UnitCode


def consumer_specs(settings: ServiceSettings) -> list[ConsumerSpec]:
    assert isinstance(settings, ReportsSettings)
    ownership = settings.ownership()
    rules = rules_from(settings)
    instance = settings.instance

    def owned(handler: Any) -> Any:
        # Obligations opened or moved get their first deadline step from the clock's rules.
        return functools.partial(handler, ownership=ownership, rules=rules)

    specs = [
        ConsumerSpec(
            service=instance,
            name="plans",
            stream=PLANS,
            subjects=["qcdc.v1.plan.>"],
            handlers={
                PlanIssued: owned(handlers.on_plan_issued),
                PlanAmended: owned(handlers.on_plan_amended),
                PlanClosed: handlers.on_plan_closed,
            },
        ),
        ConsumerSpec(
            service=instance,
            name="requests",
            stream=PLANS,
            subjects=["qcdc.v1.request.>"],
            handlers={ReportRequested: owned(handlers.on_report_requested)},
        ),
        ConsumerSpec(
            service=instance,
            name="units",
            stream=PLANS,
            subjects=["qcdc.v1.unit.>"],
            handlers={
                UnitRegistered: handlers.on_unit_registered,
                UnitUpdated: handlers.on_unit_updated,
            },
        ),
    ]
    if ownership.delegated:
        # Mirrors the reports of subtrees other instances own. Without any, every report
        # event is this instance's own coming back: a transaction each, for nothing.
        specs.append(
            ConsumerSpec(
                service=instance,
                name="reports",
                stream=REPORTS,
                subjects=["qcdc.v1.report.>"],
                handlers={
                    ReportSubmitted: mirror.on_report_submitted,
                    ReportAccepted: mirror.on_report_reviewed,
                    ReportReturned: mirror.on_report_reviewed,
                },
            )
        )
    return specs


SUBMIT_SUBJECT = "qcdc.v1.rpc.report.submit"


class BusSubmission(BaseModel):
    """A submission over NATS request-reply: the HTTP body plus the idempotency key."""

    model_config = ConfigDict(extra="forbid")

    obligation_id: str = Field(max_length=64)
    unit_code: UnitCode
    idempotency_key: str | None = Field(None, max_length=128)
    submitted_by: str | None = Field(None, max_length=256)
    narrative: dict[str, NfcText] = Field(default_factory=dict)
    indicators: dict[str, StrictInt] = Field(default_factory=dict)


def register_submit_responder(runtime: Runtime) -> None:
    """``qcdc.v1.rpc.report.submit.<unit path>``: systems that submit over the bus get the
    same receipt an HTTP client gets (and the same one again when they retry with the
    same idempotency key). The unit path in the subject must be the unit's own, so a
    credential scoped to a subtree can only submit for it."""

    settings = runtime.settings
    assert isinstance(settings, ReportsSettings)

    # A district's instance hears only its own subtree; the whole-province one hears all.
    path = settings.scope_path.strip(".")
    subjects = (
        [f"{SUBMIT_SUBJECT}.{path}", f"{SUBMIT_SUBJECT}.{path}.>"]
        if path
        else [f"{SUBMIT_SUBJECT}.>"]
    )

    async def submit(msg: NatsMessage) -> None:
        answer = await answer_submission(runtime, msg.raw_message.subject, bytes(msg.body))
        if answer is not None and msg.reply_to:
            await runtime.broker.publish(answer, msg.reply_to)

    for subject in subjects:
        runtime.broker.subscriber(
            subject,
            queue=settings.instance,
            decoder=_raw_body,
            no_reply=True,  # the owner replies itself; others must stay silent
            title=f"{settings.instance}:submit:{subject}",
        )(submit)


async def _raw_body(msg: NatsMessage) -> bytes:
    return bytes(msg.body)


async def answer_submission(runtime: Runtime, subject: str, body: bytes) -> dict[str, Any] | None:
    """The reply to a bus submission, or None when another instance owns the unit (every
    instance hears the request; the owner answers, and the whole-province instance answers
    for obligations nobody has)."""
    try:
        request = BusSubmission.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return {"error": {"message": "the request is not valid", "errors": errors}}
    command = intake.SubmitReport(
        obligation_id=request.obligation_id,
        unit_code=request.unit_code,
        idempotency_key=request.idempotency_key,
        submitted_by=request.submitted_by,
        narrative=request.narrative,
        indicators=request.indicators,
    )
    try:
        async with runtime.uow() as uow:
            obligation = await ObligationRepository(uow.session).get(command.obligation_id)
            if not _answers_for(runtime, obligation):
                return None
            if obligation is not None and subject != ".".join(
                [SUBMIT_SUBJECT, *obligation.unit_path]
            ):
                raise ReportRefused("the subject does not carry this unit's path", field="subject")
        submission = await intake.submit_with_retry(runtime, command)
    except Refused as exc:
        return {"error": {"message": exc.message, "field": exc.field, "errors": exc.errors}}
    except Missing as exc:
        return {"error": {"message": exc.message}}
    report = submission.report
    return {
        "report_id": report.id,
        "receipt_number": report.receipt_number,
        "obligation_id": report.obligation_id,
        "version": report.version,
        "submitted_at": report.submitted_at.isoformat(),
        "on_time": report.on_time,
        "replayed": submission.replayed,
    }


def _answers_for(runtime: Runtime, obligation: Obligation | None) -> bool:
    settings = runtime.settings
    assert isinstance(settings, ReportsSettings)
    return obligation.owned if obligation is not None else settings.scope is None
