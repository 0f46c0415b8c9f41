"""Which failures mean "the database is not there" (503, retry) and which are bugs (500)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
import structlog.testing
from sqlalchemy.ext.asyncio import create_async_engine

from services.natsd import free_port
from shared.outage import RETRY_AFTER_DOWN_S, database_outage, log_failure


async def _failure(url: str, statement: str = "SELECT 1") -> BaseException:
    engine = create_async_engine(url, connect_args={"timeout": 2})
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text(statement))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("no failure")


async def test_a_postgresql_server_that_refuses_connections_is_an_outage() -> None:
    # Nothing listens on the port: asyncpg raises a bare ConnectionRefusedError.
    failure = await _failure(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    assert isinstance(failure, OSError)
    assert database_outage(failure) == RETRY_AFTER_DOWN_S


def _sqlite_failure(url: str, statement: str = "SELECT 1") -> BaseException:
    # The synchronous driver: aiosqlite would fail in a thread of its own.
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(statement))
    except Exception as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no failure")


def test_a_sqlite_file_that_cannot_be_opened_is_an_outage(tmp_path: Path) -> None:
    failure = _sqlite_failure(f"sqlite:///{tmp_path}/missing/folder/x.db")
    assert database_outage(failure) == RETRY_AFTER_DOWN_S


def test_a_bad_statement_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    failure = _sqlite_failure(f"sqlite:///{tmp_path}/x.db", "SELECT * FROM nowhere")
    assert "no such table" in str(failure)
    assert database_outage(failure) is None


@pytest.mark.parametrize(
    "failure",
    [OSError(28, "No space left on device"), TimeoutError(), ValueError("bad input")],
)
def test_other_failures_are_not_outages(failure: Exception) -> None:
    # An OSError or a timeout that did not come from the database driver (a file, a
    # webhook) is not the database's.
    try:
        raise failure
    except Exception as raised:
        assert database_outage(raised) is None


def test_a_locked_sqlite_database_is_an_outage() -> None:
    try:
        raise sa.exc.OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
    except sa.exc.OperationalError as raised:
        assert database_outage(raised) == RETRY_AFTER_DOWN_S


async def test_a_background_job_logs_an_outage_as_one_line_and_a_bug_with_its_traceback() -> None:
    log = structlog.get_logger("test")
    outage = await _failure(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    with structlog.testing.capture_logs() as logs:
        log_failure(log, "delivery worker failed; continuing", outage)
        try:
            raise KeyError("a bug")
        except KeyError as bug:
            log_failure(log, "delivery worker failed; continuing", bug)
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("delivery worker failed; continuing: the database is unavailable", "warning"),
        ("delivery worker failed; continuing", "error"),
    ]
    assert "Connect call failed" in logs[0]["error"] and logs[1]["exc_info"] is True
