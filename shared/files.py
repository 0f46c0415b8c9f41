"""Files the system writes are its owner's alone: the data folder, databases, attachments,
mail, logs and the bus's store hold reports, contacts and credentials.

Two layers, so that one forgotten call does not open a file to every user of the machine:
every ``qcdc`` process (and what it starts: nats-server, the services, the mail sink)
runs with the umask 077, and the places that create the folders and files say the modes
themselves (0700 folders, 0600 files) whatever umask the process was given.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def keep_private() -> None:
    """From now on this process and its children create files for their owner only."""
    os.umask(PRIVATE_UMASK)


def _tighten(path: Path, mode: int) -> None:
    """``mode`` on a path we own (a folder an earlier version left open is closed now);
    someone else's is left as it is, for its owner to decide."""
    info = path.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o777 != mode:
        os.chmod(path, mode)


def private_dir(path: Path | str) -> Path:
    """The folder, made with every missing parent 0700 (``Path.mkdir(parents=True)`` gives
    the parents the default mode), and itself 0700."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=PRIVATE_DIR)
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is masked by the umask
    _tighten(path, PRIVATE_DIR)
    return path


def private_file(path: Path | str) -> Path:
    """The file, created empty 0600 if missing (before a library opens it with the default
    mode; SQLite gives its journal and WAL files the database file's mode), and 0600."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.close(fd)
    _tighten(path, PRIVATE_FILE)
    return path
