"""Durable storage of attachments: content-addressed files under the data folder.

A file is written to a temporary name, fsynced, then renamed to its SHA-256, so a crash
leaves either nothing or the whole file; the name a person gave it is only metadata and can
never choose where it is stored."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shared.files import private_dir


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    relative_path: str


class AttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, content: bytes) -> Stored:
        digest = hashlib.sha256(content).hexdigest()
        relative = f"{digest[:2]}/{digest}"
        target = self.root / relative
        if not target.exists():
            private_dir(target.parent)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(content)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return Stored(sha256=digest, size=len(content), relative_path=relative)

    def read(self, relative_path: str) -> bytes:
        path = (self.root / relative_path).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("attachment path escapes the store")
        return path.read_bytes()
