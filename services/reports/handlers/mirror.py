"""Reports of units another instance owns, mirrored read-only from the bus.

A district running its own reports service takes its communes' reports and its own; the
province's instance sees its ReportSubmitted, ReportAccepted and ReportReturned events and
keeps a copy, so that Home Affairs' consolidation includes the district. Events of
obligations this instance owns are its own, coming back: they change nothing.

A review (accepted, returned) is the receiving unit's word, so it is applied only when it
comes from the instance that owns the receiving unit: its ``ce-source`` names that instance
(a district's is ``/qcdc/reports-<code>``), and it speaks for the obligation's own unit,
whose subject only that instance (or the province's) may publish on. When this instance
owns the receiving unit, the review is one it made itself, so its id must be in its own
outbox. Anything else is dead-lettered with the reason: a district cannot accept its own
report on Home Affairs' behalf."""

from __future__ import annotations

from services.reports.adapters.repositories import (
    ObligationRepository,
    ReportRepository,
    UnitDirectory,
)
from services.reports.domain.model import (
    Obligation,
    ObligationStatus,
    Ownership,
    Report,
    ReportStatus,
)
from shared.bus.envelope import Envelope, UndeliverableEvent
from shared.events import ReportAccepted, ReportReturned, ReportSubmitted
from shared.mapping import taken
from shared.uow import UnitOfWork


async def on_report_submitted(
    event: ReportSubmitted, envelope: Envelope, uow: UnitOfWork, *, ownership: Ownership
) -> None:
    obligations = uow.repository(ObligationRepository)
    obligation = await _known_obligation(event, obligations, ownership)
    if obligation is None or obligation.owned:
        return
    check_submitter(event, envelope, obligation, ownership)
    reports = uow.repository(ReportRepository)
    if await reports.get(event.report_id) is None:
        # The report as its unit's instance took it in: the event's fields of the same names.
        await reports.add(taken(Report, event, id=event.report_id, obligation_id=obligation.id))
    obligation.status = ObligationStatus.SUBMITTED
    await obligations.save(obligation)


class NotYetMirrored(Exception):
    """The obligation or report has not reached this instance yet (the plan's events and the
    reports' travel on different streams): retried with backoff, never dropped."""


async def _known_obligation(
    event: ReportSubmitted | ReportAccepted | ReportReturned,
    obligations: ObligationRepository,
    ownership: Ownership,
) -> Obligation | None:
    """The event's obligation; None when it is outside this instance's subtree (it never
    will be known here)."""
    obligation = await obligations.get(event.obligation.obligation_id)
    if obligation is None and ownership.in_scope(list(event.unit_path)):
        raise NotYetMirrored(f"obligation {event.obligation.obligation_id} is not known yet")
    return obligation


class ReceivingUnitUnknown(Exception):
    """The receiving unit has not reached this instance yet; retried, unit events may lag."""


async def on_report_reviewed(
    event: ReportAccepted | ReportReturned,
    envelope: Envelope,
    uow: UnitOfWork,
    *,
    ownership: Ownership,
) -> None:
    obligations = uow.repository(ObligationRepository)
    obligation = await _known_obligation(event, obligations, ownership)
    if obligation is None:
        return
    await check_reviewer(event, envelope, obligation, ownership, uow)
    if obligation.owned:
        return
    reports = uow.repository(ReportRepository)
    report = await reports.get(event.report_id)
    if report is None:
        # Its submission is still on its way (retried), or was never mirrored (before this
        # instance existed): retried, then dead-lettered where the operator sees it.
        raise NotYetMirrored(f"report {event.report_id} has not been mirrored here yet")
    accepted = isinstance(event, ReportAccepted)
    report.status = ReportStatus.ACCEPTED if accepted else ReportStatus.RETURNED
    obligation.status = ObligationStatus.ACCEPTED if accepted else ObligationStatus.RETURNED
    reason = None if isinstance(event, ReportAccepted) else event.reason
    await reports.save_review(
        report, reviewer=event.reviewed_by_unit, at=event.reviewed_at, reason=reason
    )
    await obligations.save(obligation)


def check_submitter(
    event: ReportSubmitted, envelope: Envelope, obligation: Obligation, ownership: Ownership
) -> None:
    """A mirrored submission comes from the instance that owns the submitting unit."""
    what = f"{envelope.type} of report {event.report_id}"
    _speaks_for_its_unit(what, event.unit_path, obligation)
    owner = ownership.instance_owning(list(obligation.unit_path))
    if envelope.source != f"/qcdc/{owner}":
        raise UndeliverableEvent(
            f"{what} from {envelope.source}: only {owner}, which owns unit "
            f"{obligation.unit_code}, takes its reports"
        )


async def check_reviewer(
    event: ReportAccepted | ReportReturned,
    envelope: Envelope,
    obligation: Obligation,
    ownership: Ownership,
    uow: UnitOfWork,
) -> None:
    """Refuse (dead-letter) a review that does not come from the instance owning the
    obligation's receiving unit, as this instance knows it (never as the event says)."""
    what = f"{envelope.type} of report {event.report_id}"
    _speaks_for_its_unit(what, event.unit_path, obligation)
    receiving = await uow.repository(UnitDirectory).get(obligation.receiving_unit)
    if receiving is None:
        raise ReceivingUnitUnknown(f"unit {obligation.receiving_unit} is not known yet")
    owner = ownership.instance_owning(list(receiving["path"]))
    if owner is None:
        raise UndeliverableEvent(
            f"{what}: the receiving unit {obligation.receiving_unit} is outside this "
            "instance's scope, so no instance it knows may review the report"
        )
    if owner == ownership.instance:
        if not await uow.published_here(envelope.id):
            raise UndeliverableEvent(
                f"{what} from {envelope.source}: the receiving unit "
                f"{obligation.receiving_unit} is this instance's ({owner}), which never "
                "published this review"
            )
        return
    if envelope.source != f"/qcdc/{owner}":
        raise UndeliverableEvent(
            f"{what} from {envelope.source}: only {owner}, which owns the receiving unit "
            f"{obligation.receiving_unit}, may review it"
        )


def _speaks_for_its_unit(what: str, unit_path: list[str], obligation: Obligation) -> None:
    """The subject (the event's unit path) is the obligation's unit: the bus's permissions
    on that subject are what vouch for the publisher."""
    if list(unit_path) != list(obligation.unit_path):
        raise UndeliverableEvent(
            f"{what} speaks for {'.'.join(unit_path)}, but its obligation is "
            f"unit {obligation.unit_code}'s ({'.'.join(obligation.unit_path)})"
        )
