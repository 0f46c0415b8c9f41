"""The rows of a unit file: columns, validation, and the errors that refuse a file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.plans.domain.units import Unit, UnitRefused
from shared.events import Contacts
from shared.units import NfcName, UnitCode

COLUMNS = (
    "code",
    "name",
    "kind",
    "parent_code",
    "reports_to_code",
    "focal_email",
    "head_email",
    "webhook_url",
    "tags",
    "established_on",
)
REQUIRED_COLUMNS = ("code", "name", "kind")
REFERENCE_FIELDS = ("parent_code", "reports_to_code")


class FileFormat(StrEnum):
    CSV = "csv"
    YAML = "yaml"

    @classmethod
    def of_path(cls, path: Path) -> FileFormat:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return cls.CSV
        if suffix in (".yaml", ".yml"):
            return cls.YAML
        raise UnitRefused(f"{path.name}: expected a .csv, .yaml or .yml file", field="file")


# --- errors ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


class ImportRefused(UnitRefused):
    """The file has errors; nothing was imported. Carries every error, by line."""

    def __init__(self, errors: Iterable[RowError]) -> None:
        self.row_errors = sorted(errors)
        count = len(self.row_errors)
        super().__init__(
            f"{count} error{'s' if count != 1 else ''} in the file; nothing was imported"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "errors": [
                    {"line": e.line, "field": e.field, "message": e.message}
                    for e in self.row_errors
                ],
            }
        }


# --- rows -----------------------------------------------------------------------------

# The same rules as the HTTP API's UnitIn, so that whatever is registered exports.
Email = Annotated[str, Field(max_length=256, pattern=r"^[^@\s]+@[^@\s]+$")]
Webhook = Annotated[str, Field(max_length=2048, pattern=r"^https?://")]
Tag = Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]

# pydantic's "String should match pattern '…'" tells a province's clerk nothing.
_PATTERN_MESSAGES = {
    "code": "a code is 1 to 32 letters, digits, '-' or '_'",
    "parent_code": "a code is 1 to 32 letters, digits, '-' or '_'",
    "reports_to_code": "a code is 1 to 32 letters, digits, '-' or '_'",
    "kind": "a kind is lower-case letters and '_'",
    "focal_email": "not an e-mail address",
    "head_email": "not an e-mail address",
    "webhook_url": "not an http(s) URL",
    "tags": "a tag is 1 to 32 lower-case letters and '_'",
}


class UnitRow(BaseModel):
    """One unit of an import file, validated like the HTTP API's UnitIn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: UnitCode
    name: NfcName = Field(min_length=1, max_length=256)
    kind: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
    parent_code: UnitCode | None = None
    reports_to_code: UnitCode | None = None
    focal_email: Email | None = None
    head_email: Email | None = None
    webhook_url: Webhook | None = None
    tags: tuple[Tag, ...] = Field(default=(), max_length=16)
    established_on: date | None = None

    @property
    def contacts(self) -> Contacts:
        return Contacts(
            focal_email=self.focal_email, head_email=self.head_email, webhook_url=self.webhook_url
        )

    @classmethod
    def of(cls, unit: Unit) -> UnitRow:
        """A registered unit as a row (it was validated when registered)."""
        kept = {name: getattr(unit, name) for name in cls.model_fields if hasattr(unit, name)}
        return cls.model_construct(**kept, **unit.contacts.model_dump())


@dataclass(frozen=True)
class ImportRow:
    line: int
    unit: UnitRow
    keep_contacts: bool = False
    """True when the source gives no contacts (import-admin without demo contacts): a
    registered unit keeps its own instead of having them cleared."""

    @property
    def code(self) -> str:
        return self.unit.code


@dataclass(frozen=True)
class ParsedFile:
    rows: list[ImportRow]
    errors: list[RowError]
    codes: frozenset[str]
    """Every code the file names, also on rows with errors: a reference to a unit whose
    row is broken is not reported a second time as unknown."""


@dataclass(frozen=True)
class RawRow:
    line: int
    values: dict[str, Any]


RawFile = tuple[list[RawRow], list[RowError]]
"""The rows of a file as read, and what could not even be read as a row."""


def validate_rows(raw_rows: Sequence[RawRow], errors: Iterable[RowError] = ()) -> ParsedFile:
    """Check each row's fields and that no code repeats; collects every error."""
    found = list(errors)
    rows: list[ImportRow] = []
    first_line: dict[str, int] = {}
    for raw in raw_rows:
        code = raw.values.get("code")
        if isinstance(code, str) and code:
            if code in first_line:
                message = f"duplicate code {code} (first on line {first_line[code]})"
                found.append(RowError(raw.line, "code", message))
            first_line.setdefault(code, raw.line)
        try:
            rows.append(ImportRow(raw.line, UnitRow.model_validate(raw.values)))
        except ValidationError as exc:
            found.extend(_row_errors(raw.line, exc))
    return ParsedFile(rows=rows, errors=found, codes=frozenset(first_line))


def _row_errors(line: int, exc: ValidationError) -> Iterator[RowError]:
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "row"
        message = error["msg"]
        if error["type"] == "string_pattern_mismatch" and name in _PATTERN_MESSAGES:
            message = _PATTERN_MESSAGES[name]
        elif error["type"] == "extra_forbidden":
            message = f"unknown field; the fields are {', '.join(COLUMNS)}"
        elif error["type"] == "string_type" and isinstance(error.get("input"), int):
            message = 'must be text; in YAML quote codes such as "01"'
        yield RowError(line, name, message)
