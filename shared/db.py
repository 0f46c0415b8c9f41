"""Persistence common to every service: engines, the outbox and inbox tables, migrations."""

from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from shared.files import private_dir, private_file
from shared.sqlite_driver import one_trip_module


class UTCDateTime(sa.TypeDecorator[Any]):
    """Timezone-aware instants on both SQLite (which forgets the zone) and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given where an instant is expected")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


CONNECT_TIMEOUT_S = 10
"""Seconds to wait for PostgreSQL to accept a new connection."""
UNITS_OF_WORK = 20
"""Transactions of units of work at once per process on PostgreSQL (SQLite: one)."""


Query = sa.Select[Any]


def matching(query: Query, table: sa.Table, **wanted: object) -> Query:
    """``query`` narrowed to the rows whose column of each name equals the value wanted;
    a value of None (or empty) asks for nothing: the filters a listing's caller left out."""
    for column, value in wanted.items():
        if value is not None and value != "":
            query = query.where(table.c[column] == value)
    return query


def create_engine(url: str, *, reader: bool = False) -> AsyncEngine:
    """An async engine. On SQLite: WAL, a busy timeout, and BEGIN IMMEDIATE so that two
    writers queue for the lock instead of failing on a read-to-write upgrade. A ``reader``
    (a tool that only looks, such as ``qcdc doctor``) begins plain transactions: in WAL a
    reader never waits for the running service's write lock."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            private_dir(Path(path).parent)
            private_file(path)
        # One connection per process: every transaction here is a writer (BEGIN IMMEDIATE)
        # and SQLite has one write lock, so they wait in the pool's queue, first come first
        # served, instead of in SQLite's busy handler, which sleeps and polls and lets a
        # waiter starve for seconds under load. Other processes (the CLI) still queue for
        # the file lock with the busy timeout.
        on_disk = bool(path) and path != ":memory:"
        pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60} if on_disk else {}
        # aiosqlite's own driver, each statement one trip to its thread (shared.sqlite_driver).
        driver = {"module": one_trip_module()} if "+aiosqlite" in url.split(":", 1)[0] else {}
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool, **driver)
        if on_disk:
            _CAPACITY[engine.sync_engine] = 1

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it costs three round trips (BEGIN, ping, ROLLBACK) on every checkout.
    # A pooled connection the driver has seen closed is replaced at checkout (below); one
    # that dies while in use fails once; SQLAlchemy then renews the whole pool, intake
    # retries the submission, and the HTTP apps answer 503 "retry".
    # Units of work are admitted up to the pool's size, so their connections stay open
    # (a connection made and closed per transaction costs a fork on the server and every
    # statement prepared again); the overflow is for the relay and the health check.
    # A server that does not answer (unreachable, not just refusing) fails a connection
    # attempt after CONNECT_TIMEOUT_S, not asyncpg's default minute: the APIs answer 503
    # and the health check "not ready" while the caller still waits.
    engine = create_async_engine(
        url,
        pool_size=UNITS_OF_WORK,
        max_overflow=5,
        connect_args={"timeout": CONNECT_TIMEOUT_S},
    )
    _CAPACITY[engine.sync_engine] = UNITS_OF_WORK

    @event.listens_for(engine.sync_engine, "checkout")
    def _skip_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # asyncpg already knows when the server closed an idle connection (a restart,
        # pg_terminate_backend): such a connection is replaced at checkout, at no cost,
        # instead of failing the request that drew it.
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise sa.exc.DisconnectionError("the server closed this pooled connection")

    return engine


_CAPACITY: weakref.WeakKeyDictionary[sa.Engine, int] = weakref.WeakKeyDictionary()
_ADMISSION: weakref.WeakKeyDictionary[sa.Engine, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def capacity(engine: AsyncEngine) -> int:
    """How many units of work the engine admits at once (1 for SQLite on disk)."""
    return _CAPACITY.get(engine.sync_engine, 1)


def admission(engine: AsyncEngine) -> asyncio.Semaphore | None:
    """Where a unit of work waits for one of the engine's connections, first come first
    served. SQLAlchemy's async pool queue lets a newcomer take a connection just returned
    before the waiter it was returned for wakes up: under load some waiters starve for
    seconds while others pass. asyncio's semaphore queues newcomers behind the waiters."""
    capacity = _CAPACITY.get(engine.sync_engine)
    if capacity is None:
        return None
    gate = _ADMISSION.get(engine.sync_engine)
    if gate is None:
        gate = _ADMISSION[engine.sync_engine] = asyncio.Semaphore(capacity)
    return gate


@dataclass(frozen=True)
class MessagingTables:
    """The outbox (events to publish) and the inbox (events already handled) of a service."""

    outbox: sa.Table
    inbox: sa.Table

    def insert_ignoring_duplicates(self, dialect_name: str) -> Any:
        """INSERT into the inbox, doing nothing when the row is already there; executed with
        the row as parameters. Built once per dialect: every event handled runs it, and
        building it (with its cache key) cost more than running it."""
        return _inbox_insert(self.inbox, dialect_name)


@functools.cache
def _inbox_insert(inbox: sa.Table, dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(inbox).on_conflict_do_nothing()


def messaging_tables(metadata: sa.MetaData) -> MessagingTables:
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, index=True),
        sa.Column("published_at", UTCDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Index("ix_outbox_unpublished", "published_at", "seq"),
    )
    inbox = sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.String(128), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("handled_at", UTCDateTime, nullable=False),
    )
    return MessagingTables(outbox=outbox, inbox=inbox)


async def migrate(engine: AsyncEngine, script_location: Path) -> None:
    """Run the service's alembic migrations up to head on this engine."""

    def _upgrade(sync_connection: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(script_location))
        config.attributes["connection"] = sync_connection
        command.upgrade(config, "head")

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas of a service starting together (or upgraded together) migrate one
            # at a time: the others wait here, then find the database at head. The lock is
            # the transaction's, released at its commit or rollback.
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('qcdc-migrate'))"))
        await conn.run_sync(_upgrade)


def run_migrations_in_env(metadata: sa.MetaData) -> None:
    """Body of every service's alembic ``env.py``: migrate the connection handed over by
    :func:`migrate`, or (for the alembic CLI) the URL in ``QCDC_DATABASE_URL``."""
    import asyncio
    import os

    from alembic import context

    def _run(sync_connection: sa.Connection) -> None:
        context.configure(
            connection=sync_connection,
            target_metadata=metadata,
            render_as_batch=sync_connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return

    async def _offline_cli() -> None:
        engine = create_engine(os.environ["QCDC_DATABASE_URL"])
        conn: AsyncConnection
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(_offline_cli())


@dataclass(frozen=True)
class SecurityTables:
    """Valid API tokens (hashes only, kept from TokenIssued/TokenRevoked) and the audit log:
    who did what, when, and every refusal."""

    tokens: sa.Table
    audit: sa.Table


def security_tables(metadata: sa.MetaData) -> SecurityTables:
    tokens = sa.Table(
        "api_tokens",
        metadata,
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("unit_code", sa.String(32), nullable=False),
        sa.Column("unit_path", sa.JSON, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    audit = sa.Table(
        "audit_log",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False, index=True),
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("unit_code", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("correlation_id", sa.String(128), nullable=False, server_default=""),
    )
    return SecurityTables(tokens=tokens, audit=audit)


async def copy_connection(session: AsyncSession) -> Any | None:
    """The session's asyncpg connection, for COPYing many rows in (several times faster than
    an INSERT per row), when the database is PostgreSQL and the session's transaction has
    begun (outside one, asyncpg would commit the COPY on its own); else None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    raw = await (await session.connection()).get_raw_connection()
    connection = raw.driver_connection
    return connection if connection is not None and connection.is_in_transaction() else None
