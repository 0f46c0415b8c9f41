"""Unit codes and unit paths: the only part of the unit registry every service needs.

A unit path lists the codes from the root of the hierarchy down to the unit, e.g.
``("T89", "H886", "X30337")``. It is carried in every subject so that NATS permissions can
be scoped to a subtree.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

UNIT_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
_UNIT_CODE_RE = re.compile(UNIT_CODE_PATTERN)
_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}

UnitCode = Annotated[str, StringConstraints(pattern=UNIT_CODE_PATTERN)]


def is_unit_code(value: str) -> bool:
    return bool(_UNIT_CODE_RE.fullmatch(value))


_LINE_BREAKS = {"\n", "\r", "\t"}


def _nfc(value: str, allowed: set[str]) -> str:
    normalised = unicodedata.normalize("NFC", value).strip()
    if normalised.isprintable():  # no character of category C* at all: the fast answer
        return normalised
    if any(
        unicodedata.category(ch) in _CONTROL_CATEGORIES and ch not in allowed for ch in normalised
    ):
        raise ValueError("must not contain control characters")
    return normalised


def _nfc_name(value: str) -> str:
    """Vietnamese text is stored and compared in NFC; control characters are refused."""
    return _nfc(value, set())


def _nfc_text(value: str) -> str:
    return _nfc(value, _LINE_BREAKS)


NfcName = Annotated[str, AfterValidator(_nfc_name)]
"""A one-line text (a name, a title, a number) in Unicode NFC, no control characters."""

NfcText = Annotated[str, AfterValidator(_nfc_text)]
"""A free text (a description, a reason, a narrative) in NFC; line breaks and tabs allowed."""


def _valid_path(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("a unit path has at least one unit code")
    if len(value) > 12:
        raise ValueError("a unit path has at most 12 levels")
    return value


UnitPath = Annotated[list[UnitCode], AfterValidator(_valid_path)]
