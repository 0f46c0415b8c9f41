"""Bus entrypoints of the reports service: which events it consumes, and their handlers."""

from __future__ import annotations

import functools
from typing import Any

from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from services.reports.adapters.repositories import ObligationRepository
from services.reports.domain.model import Obligation, ReportRefused
from services.reports.handlers import intake, mirror
from services.reports.handlers import obligations as handlers
from services.reports.handlers.clock import rules_from
from services.reports.settings import ReportsSettings
from shared.auth import Principal, Role
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
from shared.outage import database_outage, outage_message
from shared.rpc import SUBMIT_SUBJECT, BusReceipt, BusSubmission
from shared.runtime import Runtime
from shared.settings import ServiceSettings


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
        reviewed = functools.partial(mirror.on_report_reviewed, ownership=ownership)
        # Mirrors the reports of subtrees other instances own. Without any, every report
        # event is this instance's own coming back: a transaction each, for nothing.
        specs.append(
            ConsumerSpec(
                service=instance,
                name="reports",
                stream=REPORTS,
                subjects=["qcdc.v1.report.>"],
                handlers={
                    ReportSubmitted: functools.partial(
                        mirror.on_report_submitted, ownership=ownership
                    ),
                    ReportAccepted: reviewed,
                    ReportReturned: reviewed,
                },
            )
        )
    return specs


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
        settings = runtime.settings
        assert isinstance(settings, ReportsSettings)
        submission = await intake.submit_with_retry(
            runtime.grouped, command, settings.ownership(), caller=bus_caller(subject)
        )
    except Refused as exc:
        return {"error": {"message": exc.message, "field": exc.field, "errors": exc.errors}}
    except Missing as exc:
        return {"error": {"message": exc.message}}
    except Exception as exc:
        return _unavailable(runtime, subject, exc)
    report = submission.report
    receipt = BusReceipt(
        report_id=report.id,
        receipt_number=report.receipt_number,
        obligation_id=report.obligation_id,
        version=report.version,
        submitted_at=report.submitted_at,
        on_time=report.on_time,
        replayed=submission.replayed,
    )
    return receipt.model_dump(mode="json")  # times as POST /reports writes them


def _unavailable(runtime: Runtime, subject: str, exc: Exception) -> dict[str, Any] | None:
    """The answer while the database is not there, as over HTTP (a 503): nothing was
    recorded, ask again with the same key after ``retry_after`` seconds. Not for a unit of
    a subtree delegated to another instance (that one answers, or nobody: the caller times
    out and sends again). Anything else is a bug, and raises."""
    retry_after = database_outage(exc)
    if retry_after is None:
        raise exc
    settings = runtime.settings
    assert isinstance(settings, ReportsSettings)
    path = subject.removeprefix(SUBMIT_SUBJECT).strip(".").split(".")
    if set(path) & set(settings.delegated):
        return None
    return {"error": {"message": outage_message(retry_after), "retry_after": retry_after}}


def bus_caller(subject: str) -> Principal:
    """Who submits over the bus: a submitter of the unit the subject names. The NATS
    server's permissions decide who may publish there (docs/security.md), so the subject
    is the credential; the handler checks it is the obligation's unit like any caller."""
    path = tuple(subject.removeprefix(f"{SUBMIT_SUBJECT}.").split("."))
    return Principal(f"nats:{subject}"[:64], path[-1], path, Role.SUBMITTER)


def _answers_for(runtime: Runtime, obligation: Obligation | None) -> bool:
    settings = runtime.settings
    assert isinstance(settings, ReportsSettings)
    return obligation.owned if obligation is not None else settings.scope is None
