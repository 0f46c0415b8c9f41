"""Private folders and files: made 0700 / 0600 whatever the umask, parents included; one
an earlier version left open is closed; SQLite's WAL and shared-memory files follow the
database file's mode."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.files import keep_private, private_dir, private_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most careless umask a process could be given; the process's own is restored."""
    before = os.umask(0)
    yield
    os.umask(before)


@pytest.mark.usefixtures("open_umask")
def test_folders_and_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    folder = private_dir(tmp_path / "var" / "attachments" / "ab")
    assert [_mode(p) for p in (folder, folder.parent, folder.parent.parent)] == [0o700] * 3
    made = private_file(folder / "reports.db")
    assert _mode(made) == 0o600 and made.read_bytes() == b""
    made.write_bytes(b"kept")
    assert private_file(made).read_bytes() == b"kept"  # an existing file is not emptied


@pytest.mark.usefixtures("open_umask")
def test_an_open_folder_or_file_left_by_an_earlier_version_is_closed(tmp_path: Path) -> None:
    folder, file = tmp_path / "var", tmp_path / "var" / "plans.db"
    folder.mkdir(mode=0o755)
    file.write_bytes(b"")
    os.chmod(file, 0o644)
    private_dir(folder)
    private_file(file)
    assert (_mode(folder), _mode(file)) == (0o700, 0o600)


@pytest.mark.usefixtures("open_umask")
def test_sqlite_journal_files_follow_the_private_database_file(tmp_path: Path) -> None:
    path = private_file(tmp_path / "notify.db")
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.commit()
        journals = [tmp_path / "notify.db-wal", tmp_path / "notify.db-shm"]
        assert [_mode(p) for p in journals] == [0o600, 0o600]
    finally:
        connection.close()


def test_keep_private_sets_the_umask() -> None:
    before = os.umask(0o022)
    try:
        keep_private()
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(before)
