"""Handlers for taking reports in."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from services.reports.adapters.repositories import ObligationRepository, ReportRepository
from services.reports.adapters.storage import AttachmentStore
from services.reports.domain.conferences import check_not_conference
from services.reports.domain.model import (
    Ownership,
    Report,
    ReportRefused,
)
from services.reports.handlers.acting import act_for_unit
from shared.auth import Principal
from shared.errors import Missing
from shared.security import audit
from shared.uow import GroupCommit, UnitOfWork, twice
from shared.vntime import ict_date

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SubmitReport:
    obligation_id: str
    unit_code: str
    idempotency_key: str | None = None
    submitted_by: str | None = None
    narrative: dict[str, str] = field(default_factory=dict)
    indicators: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    report: Report
    replayed: bool
    """True when this is the earlier answer to a retried submission with the same key."""


async def submit_report(
    command: SubmitReport,
    uow: UnitOfWork,
    ownership: Ownership = Ownership(),
    *,
    caller: Principal,
    commit: bool = True,
) -> Submission:
    """Take a report in. A retry with the submitting unit's Idempotency-Key answers with the
    earlier receipt, after the same checks of who is asking as the first request, and is
    audited; the same key with a different submission is refused. ``commit=False``: the
    caller commits (a transaction shared with other submissions, :class:`GroupCommit`),
    and answers only after that."""
    obligations = uow.repository(ObligationRepository)
    # The unit's earlier report with this key is read with the obligation (one round trip).
    found = await obligations.get_with_last_version(command.obligation_id, command.idempotency_key)
    if found is None:
        raise Missing(f"no obligation {command.obligation_id}")
    obligation, last_version, keyed_report_id = found
    # Who may act for the unit comes first, so that a key never opens another unit's receipt.
    act_for_unit(caller, obligation.unit_code, obligation.unit_path, "submit reports")
    if obligation.unit_code != command.unit_code:
        raise ReportRefused(
            f"obligation {obligation.id} belongs to unit {obligation.unit_code}, "
            f"not {command.unit_code}",
            field="unit_code",
        )
    reports = uow.repository(ReportRepository)
    if keyed_report_id is not None:
        earlier = await reports.get(keyed_report_id)
        assert earlier is not None  # a key always names a report
        return await _replay(command, earlier, uow, caller, commit=commit)
    if not obligation.owned:
        raise ReportRefused(
            f"reports of unit {obligation.unit_code} are taken by another instance "
            "(the one its district runs)",
            field="unit_code",
        )
    # Before a receipt number is taken.
    check_not_conference(obligation)
    obligation.check_submission(command.indicators, command.narrative, command.submitted_by)
    now = uow.clock.now()
    report = obligation.submit(
        report_id=str(uuid.uuid4()),
        receipt_number=await reports.next_receipt_number(
            ict_date(now).year, ownership.receipt_prefix
        ),
        version=last_version + 1,
        submitted_at=now,
        submitted_by=command.submitted_by,
        narrative=command.narrative,
        indicators=command.indicators,
    )
    await reports.add_submitted(report, obligation, command.idempotency_key, now)
    uow.publish(*obligation.events)
    audit(uow, caller, "report.submitted", report.id)
    if commit:
        await uow.commit()
    return Submission(report, replayed=False)


def same_submission(command: SubmitReport, report: Report) -> bool:
    """What the unit sent then is what it sends now (the IETF Idempotency-Key draft: a key
    reused with another payload is an error, never the earlier answer)."""
    return (
        report.obligation_id == command.obligation_id
        and report.submitted_by == command.submitted_by
        and report.narrative == command.narrative
        and report.indicators == command.indicators
    )


async def _replay(
    command: SubmitReport, earlier: Report, uow: UnitOfWork, caller: Principal, *, commit: bool
) -> Submission:
    if not same_submission(command, earlier):
        raise ReportRefused(
            "this Idempotency-Key was already used by the unit for a different submission; "
            "send a new key for new content",
            field="idempotency_key",
        )
    audit(uow, caller, "report.submission_replayed", earlier.id)
    if commit:
        await uow.commit()
    return Submission(earlier, replayed=True)


# Content that must start with these bytes to be what its type claims.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "application/msword": (b"\xd0\xcf\x11\xe0",),
}


@dataclass(frozen=True)
class Attach:
    report_id: str
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class AttachmentRules:
    max_bytes: int
    content_types: tuple[str, ...]


def check_attachment(command: Attach, rules: AttachmentRules) -> str:
    """The attachment's safe display name, or a refusal saying what is wrong."""
    name = unicodedata.normalize("NFC", command.filename).strip()
    if not name or "/" in name or "\\" in name or name in (".", "..") or len(name) > 255:
        raise ReportRefused("a file name without folders, at most 255 characters", field="filename")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ReportRefused("the file name has control characters", field="filename")
    if command.content_type not in rules.content_types:
        raise ReportRefused(
            f"content type {command.content_type!r} is not accepted; accepted: "
            + ", ".join(rules.content_types),
            field="content_type",
        )
    if not command.content:
        raise ReportRefused("the file is empty", field="content")
    if len(command.content) > rules.max_bytes:
        raise ReportRefused(f"the file is larger than {rules.max_bytes} bytes", field="content")
    signatures = SIGNATURES.get(command.content_type, ())
    if signatures and not command.content.startswith(signatures):
        raise ReportRefused(f"the content is not a {command.content_type} file", field="content")
    return name


def keep(command: Attach, name: str, store: AttachmentStore) -> dict[str, Any]:
    """Put the file in the store (durably): what its record says of it, a report's
    attachment or a conference's minutes alike."""
    stored = store.put(command.content)
    return {
        "filename": name,
        "content_type": command.content_type,
        "size": stored.size,
        "sha256": stored.sha256,
        "stored_as": stored.relative_path,
    }


async def attach(
    command: Attach,
    rules: AttachmentRules,
    store: AttachmentStore,
    uow: UnitOfWork,
    *,
    caller: Principal,
) -> dict[str, Any]:
    name = check_attachment(command, rules)
    report = await uow.repository(ReportRepository).get(command.report_id)
    if report is None:
        raise Missing(f"no report {command.report_id}")
    obligation = await uow.repository(ObligationRepository).get(report.obligation_id)
    assert obligation is not None
    act_for_unit(caller, obligation.unit_code, obligation.unit_path, "attach files")
    record = {
        "id": str(uuid.uuid4()),
        "report_id": command.report_id,
        **keep(command, name, store),
        "created_at": uow.clock.now(),
    }
    await uow.repository(ReportRepository).add_attachment(record)
    audit(uow, caller, "report.attachment_added", f"{command.report_id} {name}")
    await uow.commit()
    return record


async def submit_with_retry(
    transactions: GroupCommit, command: SubmitReport, ownership: Ownership, *, caller: Principal
) -> Submission:
    """Submit, answering once the submission is committed. Concurrent submissions share a
    transaction when they would otherwise wait for one (``transactions``, the runtime's
    :class:`GroupCommit`): one commit, one fsync, for many, each still on disk before its
    receipt is answered. When two submissions with the same key race, the loser answers
    with the winner's receipt (the unique key makes the second insert fail)."""

    async def step(uow: UnitOfWork) -> Submission:
        return await submit_report(command, uow, ownership, caller=caller, commit=False)

    submission = await twice(transactions, step, on_conflict=bool(command.idempotency_key))
    report = submission.report
    if submission.replayed:
        log.info("submission replayed", report_id=report.id, receipt=report.receipt_number)
    else:
        log.info(
            "report submitted",
            report_id=report.id,
            receipt=report.receipt_number,
            on_time=report.on_time,
        )
    return submission
