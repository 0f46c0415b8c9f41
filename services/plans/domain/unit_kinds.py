"""Unit kinds are configuration (data/unit_kinds.yaml), not code: the 2025 reform changed the
levels once and may again. Parsing is pure; :func:`load_unit_kinds` finds and reads the file.

The file is found through ``QCDC_UNIT_KINDS_FILE`` when set, else the repository's
``data/unit_kinds.yaml`` (next to ``services/`` in a checkout or an editable install), else
``data/unit_kinds.yaml`` under the working directory (the Docker image runs in /app, where
``data/`` is copied while the package itself is installed into site-packages).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from services.plans.domain.units import UnitKind, UnitRefused

KINDS_FILE_ENV = "QCDC_UNIT_KINDS_FILE"
_KIND_CODE = re.compile(r"^[a-z_]{1,32}$")


class DataFileError(ValueError):
    """A shipped data file is missing or malformed: a deployment error, not a user's."""


def parse_unit_kinds(text: str) -> dict[str, UnitKind]:
    """Kinds by code, in file order, from the YAML text of a unit kinds file."""
    document = yaml.safe_load(text)
    entries = document.get("kinds") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataFileError("a unit kinds file has a non-empty list under 'kinds'")
    kinds: dict[str, UnitKind] = {}
    for position, entry in enumerate(entries, start=1):
        kind = _kind(entry, position)
        if kind.code in kinds:
            raise DataFileError(f"kind {kind.code!r} is listed twice")
        kinds[kind.code] = kind
    return kinds


def _kind(entry: Any, position: int) -> UnitKind:
    if not isinstance(entry, dict):
        raise DataFileError(f"kind #{position} is not a mapping")
    code, label, level = entry.get("code"), entry.get("label"), entry.get("level")
    if not isinstance(code, str) or not _KIND_CODE.fullmatch(code):
        raise DataFileError(f"kind #{position}: code must match {_KIND_CODE.pattern}")
    if not isinstance(label, str) or not label.strip():
        raise DataFileError(f"kind {code!r}: label is required")
    if not isinstance(level, int) or isinstance(level, bool) or level < 1:
        raise DataFileError(f"kind {code!r}: level must be a positive integer")
    return UnitKind(code=code, label=label.strip(), level=level)


def candidate_files(name: str, env: str | None = None) -> list[Path]:
    """Where the shipped data file ``data/<name>`` is looked for, in order."""
    configured = os.environ.get(env) if env else None
    if configured:
        return [Path(configured)]
    # services/plans/domain/unit_kinds.py → the checkout (or editable install) root.
    repository = Path(__file__).resolve().parents[3]
    return [repository / "data" / name, Path.cwd() / "data" / name]


def find_data_file(name: str, env: str | None = None) -> Path:
    candidates = candidate_files(name, env)
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    hint = f"; set {env}" if env else ""
    raise DataFileError(f"no data file {name} (tried {tried}){hint}")


def unit_kinds_file() -> Path:
    return find_data_file("unit_kinds.yaml", KINDS_FILE_ENV)


def load_unit_kinds(path: Path | None = None) -> dict[str, UnitKind]:
    """The configured kinds. Re-read only when the file changes (imports check every row)."""
    path = path or unit_kinds_file()
    return dict(_load(path.resolve(), path.stat().st_mtime_ns))


@lru_cache(maxsize=8)
def _load(path: Path, _mtime_ns: int) -> dict[str, UnitKind]:
    try:
        return parse_unit_kinds(path.read_text(encoding="utf-8"))
    except DataFileError as exc:
        raise DataFileError(f"{path}: {exc}") from exc


def unknown_kind_message(kind: str, kinds: Mapping[str, UnitKind]) -> str:
    return f"unknown kind {kind!r}; known: {', '.join(kinds)}"


def check_kind(kind: str, kinds: Mapping[str, UnitKind] | None = None) -> UnitKind:
    """The configured kind ``kind``; refuses (HTTP 422, field ``kind``) an unknown one."""
    kinds = load_unit_kinds() if kinds is None else kinds
    found = kinds.get(kind)
    if found is None:
        raise UnitRefused(unknown_kind_message(kind, kinds), field="kind")
    return found
