"""What a consolidation document is asked for and sent as, without the writers themselves:
python-docx and openpyxl are imported only when a document is written (they cost every
start of the service a fifth of a second otherwise)."""

from __future__ import annotations

from dataclasses import dataclass

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Signer:
    position: str = ""
    name: str = ""


@dataclass(frozen=True)
class Edition:
    """Which edition a document shows: the live one (no version), or a published version."""

    version: int | None = None
