"""Repositories of the reports service: rows in, domain objects out."""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.adapters.db import (
    attachments,
    deadline_changes,
    deadline_clock_rules,
    deadline_steps,
    idempotency_keys,
    obligations,
    receipt_counters,
    reports,
    units,
)
from services.reports.domain.model import (
    RECONSIDER,
    Obligation,
    ObligationStatus,
    Report,
)
from shared.db import copy_connection
from shared.direct import Step, execute_one, execute_together, fetch
from shared.events import UnitRegistered
from shared.mapping import RowMapping
from shared.uow import seen, write_at_commit

_KNOWN_SEQUENCES: set[tuple[str, str]] = set()
"""Receipt-number sequences known to exist (PostgreSQL), by database URL and name."""


OBLIGATIONS = RowMapping(
    Obligation,
    obligations,
    # Stored: when the deadline clock next looks at it (None once nothing more is urged).
    written={"next_step_at": lambda o: o.on_the_clock_at},
)
"""An obligation is a row of ``obligations`` (its ``opened_at`` is the row's own)."""
_to_obligation = OBLIGATIONS.from_row
REPORTS = RowMapping(Report, reports)
_to_report = REPORTS.from_mapping


def _read_for_submission(keyed: bool) -> sa.Select[Any]:
    """The obligation, its last version and (``keyed``) the report its unit submitted with a
    key: built once, so that a submission pays no statement building nor cache key."""
    last_version = (
        sa.select(sa.func.coalesce(sa.func.max(reports.c.version), 0))
        .where(reports.c.obligation_id == obligations.c.id)
        .scalar_subquery()
    )
    keyed_report = (
        sa.select(idempotency_keys.c.report_id)
        .where(
            idempotency_keys.c.unit_code == obligations.c.unit_code,
            idempotency_keys.c.idempotency_key == sa.bindparam("idempotency_key", type_=sa.String),
        )
        .scalar_subquery()
    )
    return sa.select(
        obligations,
        last_version.label("last_version"),
        (keyed_report if keyed else sa.null()).label("keyed_report_id"),
    ).where(obligations.c.id == sa.bindparam("obligation_id", type_=sa.String))


_READ_FOR_SUBMISSION = {keyed: _read_for_submission(keyed) for keyed in (False, True)}
SAVED_COLUMNS = ("status", "waived_reason", "due_at", "next_step_at", "plan_closed")
"""What changes over an obligation's life (:meth:`ObligationRepository.save`), and with a
submission."""


@functools.cache
def _next_value(sequence: str) -> sa.Select[Any]:
    """A sequence's next value: built once per sequence (a year's), so compiled once."""
    return sa.select(sa.func.nextval(sequence))


def _bound(table: sa.Table, prefix: str, columns: Collection[str]) -> dict[str, Any]:
    """Each column given as a bound parameter of its own type, named ``prefix`` + column."""
    return {c: sa.bindparam(prefix + c, type_=table.c[c].type) for c in columns}


def _submission_statement(report_columns: tuple[str, ...], keyed: bool) -> sa.Update:
    """PostgreSQL: the report, its key and its obligation's new state in one statement
    (data-modifying CTEs, each row's constraints checked at its end as before), instead of
    three round trips. Parameters: ``r_<column>`` of the report, ``k_<column>`` of the key,
    ``o_<column>`` of the obligation's changes and ``o_id``."""
    statement = (
        obligations.update()
        .where(obligations.c.id == sa.bindparam("o_id", type_=obligations.c.id.type))
        .values(_bound(obligations, "o_", SAVED_COLUMNS))
    )
    ctes = [reports.insert().values(_bound(reports, "r_", report_columns)).cte("new_report")]
    if keyed:
        ctes.append(
            idempotency_keys.insert()
            .values(_bound(idempotency_keys, "k_", KEY_COLUMNS))
            .cte("new_key")
        )
    return statement.add_cte(*ctes)


_SUBMISSION_STATEMENTS: dict[tuple[tuple[str, ...], bool], sa.Update] = {}
KEY_COLUMNS = ("unit_code", "idempotency_key", "report_id", "created_at")


def _separate_writes(report_columns: tuple[str, ...]) -> tuple[sa.Insert, sa.Insert, sa.Update]:
    """Elsewhere (SQLite: no data-modifying CTEs) the same writes as three statements, with
    the same parameters, built once: the report's insert, its key's, the obligation's
    update."""
    return (
        reports.insert().values(_bound(reports, "r_", report_columns)),
        idempotency_keys.insert().values(_bound(idempotency_keys, "k_", KEY_COLUMNS)),
        obligations.update()
        .where(obligations.c.id == sa.bindparam("o_id", type_=obligations.c.id.type))
        .values(_bound(obligations, "o_", SAVED_COLUMNS)),
    )


_SEPARATE_WRITES: dict[tuple[str, ...], tuple[sa.Insert, sa.Insert, sa.Update]] = {}
_NEXT_RECEIPT = (
    receipt_counters.update()
    .where(receipt_counters.c.year == sa.bindparam("of_year", type_=receipt_counters.c.year.type))
    .values(last_number=receipt_counters.c.last_number + 1)
    .returning(receipt_counters.c.last_number)
)
"""SQLite's receipt counter, built once (no statement built nor cache key per call)."""
_SET_RECEIPT_COUNTER = (
    receipt_counters.update()
    .where(receipt_counters.c.year == sa.bindparam("of_year", type_=receipt_counters.c.year.type))
    .values(last_number=sa.bindparam("to_number", type_=receipt_counters.c.last_number.type))
)
"""The counter set to the last number a transaction gave (:meth:`ReportRepository.
_next_from_counter`)."""


class ObligationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, obligation_id: str) -> Obligation | None:
        row = (
            await self.session.execute(
                sa.select(obligations).where(obligations.c.id == obligation_id)
            )
        ).first()
        return seen(self.session, _to_obligation(row)) if row else None

    async def get_with_last_version(
        self, obligation_id: str, idempotency_key: str | None = None
    ) -> tuple[Obligation, int, str | None] | None:
        """The obligation, the version of its latest report (0 if none) and the report its
        unit already submitted with ``idempotency_key`` (None if none), in one query: what
        a submission needs to read."""
        query = _READ_FOR_SUBMISSION[idempotency_key is not None]
        params = {"obligation_id": obligation_id, "idempotency_key": idempotency_key}
        found = await fetch(self.session, query, params)
        if not found:
            return None
        row = found[0]
        return seen(self.session, _to_obligation(row)), int(row.last_version), row.keyed_report_id

    async def add_if_missing(self, obligation: Obligation, opened_at: datetime) -> bool:
        if await self.get(obligation.id) is not None:
            return False
        await self.session.execute(
            obligations.insert().values(**OBLIGATIONS.values(obligation, opened_at=opened_at))
        )
        return True

    async def content_areas_of_plan(self, plan_id: str) -> tuple[str, ...] | None:
        """The content areas the plan's obligations know (from its PlanIssued)."""
        found = await self.session.scalar(
            sa.select(obligations.c.content_areas)
            .where(
                obligations.c.plan_id == plan_id,
                obligations.c.request_id.is_(None),
                obligations.c.content_areas.is_not(None),
            )
            .limit(1)
        )
        return None if found is None else tuple(found)

    async def save(self, obligation: Obligation) -> None:
        """Save what changes over an obligation's life: status, waiver, deadline, and with
        them when the deadline clock next looks at it (off its scan once submitted)."""
        seen(self.session, obligation)
        await self.session.execute(
            obligations.update()
            .where(obligations.c.id == obligation.id)
            .values(**OBLIGATIONS.changes(obligation, *SAVED_COLUMNS))
        )

    async def find(
        self,
        *,
        unit_code: str | None = None,
        status: str | None = None,
        plan_id: str | None = None,
        schedule_key: str | None = None,
        receiving_unit: str | None = None,
    ) -> list[Obligation]:
        query = sa.select(obligations).order_by(obligations.c.due_at, obligations.c.unit_code)
        if receiving_unit:
            query = query.where(obligations.c.receiving_unit == receiving_unit)
        if schedule_key:
            query = query.where(obligations.c.schedule_key == schedule_key)
        if unit_code:
            query = query.where(obligations.c.unit_code == unit_code)
        if status:
            query = query.where(obligations.c.status == status)
        if plan_id:
            query = query.where(obligations.c.plan_id == plan_id)
        return [_to_obligation(row) for row in (await self.session.execute(query)).all()]

    # --- the deadline clock ---------------------------------------------------------------

    async def lock_due(
        self,
        now: datetime,
        limit: int,
        *,
        passed_over: Collection[str] = (),
        only: str | None = None,
    ) -> list[Obligation]:
        """Up to ``limit`` obligations whose next step has come at ``now``, the earliest
        first (a range scan of ``ix_obligations_next_step``), locked for this transaction
        (``FOR NO KEY UPDATE``: the lock an update of the row takes, so a report's insert,
        whose foreign key only shares the key, does not wait for the batch).
        On PostgreSQL ``SKIP LOCKED`` passes over rows another transaction holds: another
        replica's batch, or a submission being taken (it wins; the row comes back at the
        next pass if it still awaits a report). SQLite's ``BEGIN IMMEDIATE`` has already
        serialised writers, and SQLAlchemy renders no ``FOR UPDATE`` there. ``only`` takes
        that one obligation; otherwise those ``passed_over`` are left out."""
        if self.session.get_bind().dialect.name == "postgresql":
            # The same query, sent by the driver itself: a busy pass locks a hundred
            # thousand rows, and SQLAlchemy's result rows cost more than the query does.
            return await self._lock_due_directly(now, limit, passed_over, only)
        query = (
            sa.select(obligations)
            .where(obligations.c.next_step_at <= now)
            .order_by(obligations.c.next_step_at)
            .limit(limit)
            .with_for_update(skip_locked=True, key_share=True)
        )
        if only is not None:
            query = query.where(obligations.c.id == only)
        elif passed_over:
            query = query.where(obligations.c.id.not_in(list(passed_over)))
        return [_to_obligation(row) for row in (await self.session.execute(query)).all()]

    async def _lock_due_directly(
        self, now: datetime, limit: int, passed_over: Collection[str], only: str | None
    ) -> list[Obligation]:
        """:meth:`lock_due` on PostgreSQL through the session's asyncpg connection, in its
        transaction: the table's columns in its order, as ``from_row`` reads them."""
        driver = await copy_connection(self.session)
        if driver is None:
            # The driver's transaction begins with the session's first statement: the
            # locks must be held by the unit of work's transaction, not one of their own.
            await self.session.execute(sa.text("SELECT 1"))
            driver = await copy_connection(self.session)
        assert driver is not None
        if only is not None:
            rows = await driver.fetch(_LOCK_ONE, now, limit, only)
        elif passed_over:
            rows = await driver.fetch(_LOCK_DUE_EXCEPT, now, limit, list(passed_over))
        else:
            rows = await driver.fetch(_LOCK_DUE, now, limit)
        return [_to_obligation(row) for row in rows]

    async def move_next_steps(self, next_steps: Mapping[str, datetime | None]) -> None:
        """Store each obligation's next step; one statement per distinct instant, since
        obligations sharing a deadline share it (on PostgreSQL, one for them all)."""
        if not next_steps:
            return
        driver = await copy_connection(self.session)
        if driver is not None:
            await driver.execute(_MOVE_NEXT_STEPS, list(next_steps), list(next_steps.values()))
            return
        by_instant: dict[datetime | None, list[str]] = defaultdict(list)
        for obligation_id, instant in next_steps.items():
            by_instant[instant].append(obligation_id)
        for instant, ids in by_instant.items():
            for chunk in _chunks(ids, IN_LIST_SIZE):
                await self.session.execute(
                    obligations.update()
                    .where(obligations.c.id.in_(chunk))
                    .values(next_step_at=instant)
                )

    async def reconsider_awaiting(self) -> int:
        """Have the clock decide at its next pass for every obligation owned here that
        awaits a report (the schedule changed, or was never recorded)."""
        result = await self.session.execute(
            obligations.update()
            .where(
                obligations.c.owned.is_(sa.true()),
                obligations.c.status.in_(AWAITING),
                obligations.c.plan_closed.is_(sa.false()),
            )
            .values(next_step_at=RECONSIDER)
        )
        return int(getattr(result, "rowcount", 0))


def _lock_due_sql(condition: str = "") -> str:
    columns = ", ".join(f'"{column.name}"' for column in obligations.columns)
    return (
        f"SELECT {columns} FROM obligations WHERE next_step_at <= $1{condition}"
        " ORDER BY next_step_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED"
    )


_LOCK_DUE = _lock_due_sql()
_LOCK_ONE = _lock_due_sql(" AND id = $3")
_LOCK_DUE_EXCEPT = _lock_due_sql(" AND id <> ALL($3::text[])")
"""``ObligationRepository.lock_due``'s query, as the driver takes it (PostgreSQL)."""
_MOVE_NEXT_STEPS = """
UPDATE obligations AS o SET next_step_at = moved.at
FROM unnest($1::text[], $2::timestamptz[]) AS moved(id, at)
WHERE o.id = moved.id
"""
"""``ObligationRepository.move_next_steps`` in one statement (PostgreSQL)."""

AWAITING = (ObligationStatus.OPEN.value, ObligationStatus.RETURNED.value)
IN_LIST_SIZE = 1000
"""Ids per ``IN (…)`` list: far below the bind-parameter limits of asyncpg (32,767) and
SQLite (32,766)."""

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StepRow(NamedTuple):
    """A row of ``deadline_steps``."""

    obligation_id: str
    step: str
    planned_for: datetime
    fired_at: datetime
    event_id: str


class DeadlineChange(NamedTuple):
    """A row of ``deadline_changes``: a deadline moved, and the verdicts it changed."""

    obligation_id: str
    event_id: str
    changed_at: datetime
    old_due_at: datetime
    new_due_at: datetime
    cause: str
    reclassified: list[dict[str, Any]]
    """``{"report_id", "receipt_number", "on_time_before", "on_time"}`` per report."""


class DeadlineStepRepository:
    """The deadline steps already taken (fired, or skipped by the catch-up rules), and the
    schedule the stored next steps follow."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def recorded(self, obligation_ids: Sequence[str]) -> dict[str, set[str]]:
        """The steps recorded for these obligations, and for no other."""
        found: dict[str, set[str]] = defaultdict(set)
        for chunk in _chunks(obligation_ids, IN_LIST_SIZE):
            rows = await self.session.execute(
                sa.select(deadline_steps.c.obligation_id, deadline_steps.c.step).where(
                    deadline_steps.c.obligation_id.in_(chunk)
                )
            )
            for obligation_id, step in rows:
                found[obligation_id].add(step)
        return found

    async def record(self, rows: Sequence[StepRow]) -> None:
        """Insert step rows. A step already recorded fails the transaction: the caller
        decides again on what was recorded. On PostgreSQL the rows are copied in (COPY, in
        this transaction): a busy clock pass records tens of thousands at once."""
        if not rows:
            return
        copying = await copy_connection(self.session)
        if copying is not None:
            await copying.copy_records_to_table(
                "deadline_steps", records=rows, columns=StepRow._fields
            )
            return
        await self.session.execute(deadline_steps.insert(), [row._asdict() for row in rows])

    async def delete_all(self, obligation_id: str) -> None:
        await self.session.execute(
            deadline_steps.delete().where(deadline_steps.c.obligation_id == obligation_id)
        )

    async def record_change(self, change: DeadlineChange) -> None:
        """Keep a move of the deadline (once per obligation and event)."""
        await self.session.execute(
            self._dialect()
            .insert(deadline_changes)
            .values(**change._asdict())
            .on_conflict_do_nothing(index_elements=["obligation_id", "event_id"])
        )

    async def changes(self, obligation_id: str) -> list[DeadlineChange]:
        rows = await self.session.execute(
            sa.select(*(deadline_changes.c[name] for name in DeadlineChange._fields))
            .where(deadline_changes.c.obligation_id == obligation_id)
            .order_by(deadline_changes.c.changed_at)
        )
        return [DeadlineChange(*row) for row in rows]

    async def schedule(self) -> str | None:
        """The fingerprint of the schedule the stored next steps were computed with."""
        found = await self.session.scalar(
            sa.select(deadline_clock_rules.c.fingerprint).where(deadline_clock_rules.c.id == 1)
        )
        return str(found) if found is not None else None

    async def adopt_schedule(self, fingerprint: str, now: datetime) -> None:
        values = {"fingerprint": fingerprint, "adopted_at": now}
        statement = self._dialect().insert(deadline_clock_rules).values(id=1, **values)
        await self.session.execute(
            statement.on_conflict_do_update(index_elements=["id"], set_=values)
        )

    def _dialect(self) -> Any:
        return postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._counted: tuple[Any, dict[int, int]] = (None, {})
        """SQLite: the transaction, and the last receipt number it gave of each year."""

    async def add_attachment(self, record: dict[str, Any]) -> None:
        """A file attached to a report (its bytes are in the attachment store)."""
        await self.session.execute(attachments.insert().values(**record))

    async def get(self, report_id: str) -> Report | None:
        row = (
            await self.session.execute(sa.select(reports).where(reports.c.id == report_id))
        ).first()
        return _to_report(row) if row else None

    async def remember_key(self, unit_code: str, key: str, report_id: str, at: datetime) -> None:
        """A second insert of the same (unit, key) fails: a racing twin loses and replays."""
        await self.session.execute(
            idempotency_keys.insert().values(
                unit_code=unit_code, idempotency_key=key, report_id=report_id, created_at=at
            )
        )

    async def versions(self, obligation_id: str) -> list[Report]:
        rows = (
            await self.session.execute(
                sa.select(reports)
                .where(reports.c.obligation_id == obligation_id)
                .order_by(reports.c.version)
            )
        ).all()
        return [_to_report(row) for row in rows]

    async def reclassify(self, changed: Sequence[Report]) -> None:
        """Store the verdicts a moved deadline changed."""
        for report in changed:
            await self.session.execute(
                reports.update().where(reports.c.id == report.id).values(on_time=report.on_time)
            )

    async def save_review(
        self, report: Report, *, reviewer: str, at: datetime, reason: str | None = None
    ) -> None:
        await self.session.execute(
            reports.update()
            .where(reports.c.id == report.id)
            .values(
                status=report.status.value,
                reviewed_by_unit=reviewer,
                reviewed_at=at,
                review_reason=reason,
            )
        )

    async def next_receipt_number(self, year: int, prefix: str = "BC") -> str:
        """<prefix>-<year>-<6 digits>. Each instance has its own prefix, so receipts stay
        unique across instances.

        On PostgreSQL the number comes from a sequence per year: concurrent submissions do
        not queue for one counter row until each commits (a hot row that capped intake at
        one transaction at a time). A submission that fails after taking its number leaves
        a gap. On SQLite every write transaction holds the one database lock anyway, so the
        counter row costs no concurrency there and numbers have no gaps."""
        if self.session.get_bind().dialect.name == "postgresql":
            number = await self._next_from_sequence(year)
        else:
            number = await self._next_from_counter(year)
        return f"{prefix}-{year}-{number:06d}"

    async def _next_from_counter(self, year: int) -> int:
        """The year's counter, moved on. Submissions sharing a transaction (a group commit)
        read it once: the transaction holds SQLite's write lock, so no other writer moves it
        meanwhile; the following numbers are counted here and the counter set to the last
        one with the commit (:func:`write_at_commit`), one statement less per submission.
        A rollback takes the counter back with the reports, as before: no gap."""
        transaction = self.session.sync_session.get_transaction()
        counted_in, counted = self._counted
        if transaction is not None and counted_in is transaction and year in counted:
            number = counted[year] + 1
            parameters = {"of_year": year, "to_number": number}
            if write_at_commit(
                self.session, ("receipt_counter", year), (_SET_RECEIPT_COUNTER, parameters)
            ):
                counted[year] = number
                return number
        found = (await self.session.execute(_NEXT_RECEIPT, {"of_year": year})).scalar()
        if found is None:
            await self.session.execute(receipt_counters.insert().values(year=year, last_number=1))
            found = 1
        if counted_in is not transaction:
            self._counted = (transaction, {})
        self._counted[1][year] = int(found)
        return int(found)

    async def _next_from_sequence(self, year: int) -> int:
        name = f"receipt_numbers_{year:04d}"
        await self._ensure_sequence(name, year)
        ((number,),) = await fetch(self.session, _next_value(name), {})
        return int(number)

    async def _ensure_sequence(self, name: str, year: int) -> None:
        """Create the year's sequence with its first submission, after the numbers that the
        year's counter row gave before sequences were used. A concurrent creator may win:
        its sequence is then used. Remembered once the creating transaction committed, so
        this costs one query per year and process."""
        known = (self.session.get_bind().engine.url.render_as_string(), name)
        if known in _KNOWN_SEQUENCES:
            return
        if await self.session.scalar(sa.select(sa.func.to_regclass(name))) is None:
            counted = await self.session.scalar(
                sa.select(receipt_counters.c.last_number).where(receipt_counters.c.year == year)
            )
            start = int(counted or 0) + 1
            with contextlib.suppress(DBAPIError):
                async with self.session.begin_nested():
                    await self.session.execute(
                        sa.text(f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {start}")
                    )
        sa.event.listen(
            self.session.sync_session,
            "after_commit",
            lambda _session: _KNOWN_SEQUENCES.add(known),
            once=True,
        )

    async def add(self, report: Report) -> None:
        await self.session.execute(reports.insert(), REPORTS.values(report))

    async def add_submitted(
        self, report: Report, obligation: Obligation, key: str | None, at: datetime
    ) -> None:
        """A submission's writes: the report, the unit's ``key`` for it (a second insert of
        the same unit and key fails: a racing twin loses and replays), and what the
        submission changed of its obligation. One statement on PostgreSQL, where each
        statement is a round trip and most of intake's CPU (py-spy, 2026-11-29); on SQLite
        three statements in one trip to the driver's thread (:func:`execute_together`)."""
        seen(self.session, obligation)
        row = REPORTS.values(report)
        params = {f"r_{c}": v for c, v in row.items()}
        changes = OBLIGATIONS.changes(obligation, *SAVED_COLUMNS)
        params.update({f"o_{c}": v for c, v in changes.items()}, o_id=obligation.id)
        keyed: dict[str, Any] = {}
        if key:
            keyed = {
                "k_unit_code": obligation.unit_code,
                "k_idempotency_key": key,
                "k_report_id": report.id,
                "k_created_at": at,
            }
        shape = tuple(row)
        if self.session.get_bind().dialect.name != "postgresql":
            found = _SEPARATE_WRITES.get(shape)
            if found is None:
                found = _SEPARATE_WRITES[shape] = _separate_writes(shape)
            add_report, add_key, update_obligation = found
            steps: list[Step] = [(add_report, params)]
            if key:
                steps.append((add_key, keyed))
            steps.append((update_obligation, params))
            await execute_together(self.session, steps)
            return
        statement = _SUBMISSION_STATEMENTS.get((shape, bool(key)))
        if statement is None:
            statement = _submission_statement(shape, bool(key))
            _SUBMISSION_STATEMENTS[(shape, bool(key))] = statement
        await execute_one(self.session, statement, {**params, **keyed})


class UnitDirectory:
    """The reports service's copy of the unit registry, kept from UnitRegistered/Updated."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save(self, event: UnitRegistered, now: datetime) -> None:
        values = {
            "name": event.name,
            "kind": event.kind,
            "path": list(event.unit_path),
            "parent_code": event.parent_code,
            "reports_to_code": event.reports_to_code,
            "head_email": event.contacts.head_email,
            "active": event.active,
            "updated_at": now,
        }
        updated = await self.session.execute(
            units.update().where(units.c.code == event.code).values(**values)
        )
        if not getattr(updated, "rowcount", 0):
            await self.session.execute(units.insert().values(code=event.code, **values))

    async def get(self, code: str) -> dict[str, Any] | None:
        row = (await self.session.execute(sa.select(units).where(units.c.code == code))).first()
        return dict(row._mapping) if row else None

    async def all(self) -> dict[str, dict[str, Any]]:
        rows = (await self.session.execute(sa.select(units))).all()
        return {row.code: dict(row._mapping) for row in rows}
