"""Import and export of the unit registry as CSV or YAML, all or nothing, and Vietnam's real
administrative units (``vietnam_provinces``) through the same import.

The file format, one unit per CSV row or YAML item, with these fields::

    code,name,kind,parent_code,reports_to_code,focal_email,head_email,webhook_url,tags,established_on

- CSV: UTF-8 (a BOM is accepted), a header row naming the columns (``code``, ``name`` and
  ``kind`` are required, the others optional, in any order); an empty cell is "none";
  ``tags`` are separated by ``;``; ``established_on`` is YYYY-MM-DD. Line numbers in errors
  count the header as line 1.
- YAML: a list of mappings with the same flat keys; ``tags`` a list (or a ``;`` string). The
  contacts may instead be nested under ``contacts:`` as in the HTTP API. Codes must be
  strings: quote ``"01"`` or ``"00070"`` (YAML reads 00070 as the octal number 56). Errors
  give the line where the item starts.

Every row is validated before anything is written; any error refuses the whole file with
every error listed (:class:`ImportRefused`). Otherwise new units are registered parents
first whatever the file order, changed units are updated (name, contacts, reports_to, tags),
identical ones are left alone: importing the same file twice creates nothing the second time.
The kind, the parent and the date of establishment of a registered unit do not change by
import (its path, and with it every subject it publishes on, hangs on its parent).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from vietnam_provinces import Province, VietNamDivisionType, Ward

from services.plans.adapters.repositories import UnitRepository
from services.plans.domain.unit_kinds import (
    DataFileError,
    find_data_file,
    load_unit_kinds,
    unknown_kind_message,
)
from services.plans.domain.units import Unit, UnitKind, UnitRefused
from services.plans.handlers.units import RegisterUnit, add_unit
from shared.errors import Missing
from shared.events import Contacts
from shared.spreadsheets import from_csv_cell, to_csv_cell
from shared.units import NfcName, UnitCode
from shared.uow import UnitOfWork

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
        return cls.model_construct(
            code=unit.code,
            name=unit.name,
            kind=unit.kind,
            parent_code=unit.parent_code,
            reports_to_code=unit.reports_to_code,
            tags=unit.tags,
            established_on=unit.established_on,
            **unit.contacts.model_dump(),
        )


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


# --- CSV and YAML in ------------------------------------------------------------------


def decode(data: bytes) -> str:
    """UTF-8 text (a BOM, as spreadsheets write it, is dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRefused([RowError(line, "file", "not UTF-8 text")]) from exc


def parse_file(text: str, file_format: FileFormat) -> ParsedFile:
    """Read and validate a whole file; raises ImportRefused only when it cannot be read at
    all (row errors are collected in the result, to be reported with the registry's)."""
    raw_rows, errors = read_csv(text) if file_format is FileFormat.CSV else read_yaml(text)
    return validate_rows(raw_rows, errors)


def read_csv(text: str) -> RawFile:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise ImportRefused([RowError(1, "file", "empty file: expected a header row")])
        columns = _check_header([cell.strip() for cell in header])
        return _csv_rows(reader, columns)
    except csv.Error as exc:
        raise ImportRefused([RowError(reader.line_num, "file", f"not CSV: {exc}")]) from exc


def _check_header(columns: list[str]) -> list[str]:
    expected = ", ".join(COLUMNS)
    errors = [
        RowError(1, name or f"column {i}", f"unknown column; the columns are {expected}")
        for i, name in enumerate(columns, start=1)
        if name not in COLUMNS
    ]
    errors += [RowError(1, n, "column appears twice") for n in COLUMNS if columns.count(n) > 1]
    errors += [RowError(1, n, "missing column") for n in REQUIRED_COLUMNS if n not in columns]
    if errors:
        raise ImportRefused(errors)
    return columns


def _csv_rows(reader: Any, columns: list[str]) -> RawFile:
    rows: list[RawRow] = []
    errors: list[RowError] = []
    end_of_previous = reader.line_num
    for cells in reader:
        # A record starts on the line after the previous one ended (quoted cells may span
        # lines, and the header's line_num already counts them).
        line, end_of_previous = end_of_previous + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(columns):
            message = f"{len(cells)} cells but {len(columns)} columns (a ',' to quote?)"
            errors.append(RowError(line, "row", message))
            continue
        values = {
            name: from_csv_cell(cell.strip()) for name, cell in zip(columns, cells, strict=False)
        }
        rows.append(RawRow(line, _csv_values(values)))
    return rows, errors


def _csv_values(values: dict[str, str]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {name: value for name, value in values.items() if value != ""}
    if "tags" in cleaned:
        cleaned["tags"] = _split_tags(cleaned["tags"])
    return cleaned


def _split_tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(";") if tag.strip()]


def read_yaml(text: str) -> RawFile:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None  # type: ignore[no-untyped-call]
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ImportRefused([RowError(line, "file", f"not YAML: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:
        raise ImportRefused([RowError(1, "file", f"not YAML: {exc}")]) from exc
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
    if not isinstance(root, yaml.SequenceNode) or not isinstance(data, list):
        raise ImportRefused([RowError(1, "file", "expected a list of units")])
    rows: list[RawRow] = []
    errors: list[RowError] = []
    # The node's mark gives the line where the item starts (PyYAML counts from 0).
    for node, item in zip(root.value, data, strict=True):
        line = node.start_mark.line + 1
        if isinstance(item, dict):
            rows.append(RawRow(line, _yaml_values(item)))
        else:
            errors.append(RowError(line, "row", "expected a mapping of fields"))
    return rows, errors


def _yaml_values(item: dict[Any, Any]) -> dict[str, Any]:
    values = {str(key): value for key, value in item.items() if value not in (None, "")}
    contacts = values.pop("contacts", None)
    if isinstance(contacts, dict):
        values.update({str(k): v for k, v in contacts.items() if v not in (None, "")})
    elif contacts is not None:
        values["contacts"] = contacts  # reported as an unknown field
    if isinstance(values.get("tags"), str):
        values["tags"] = _split_tags(values["tags"])
    return values


# --- checking the file against the registry -------------------------------------------


@dataclass
class ImportPlan:
    creates: list[ImportRow] = field(default_factory=list)
    """New units, each after its parent and the unit it reports to."""
    updates: list[ImportRow] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportCounts:
    created: int
    updated: int
    unchanged: int


def plan_import(
    parsed: ParsedFile, registry: Mapping[str, Unit], kinds: Mapping[str, UnitKind]
) -> ImportPlan:
    """What importing ``parsed`` into ``registry`` does; refuses with every error found."""
    errors = list(parsed.errors)
    for row in parsed.rows:
        errors += _row_checks(row, parsed.codes, registry, kinds)
    cycles = _cycle_errors(parsed.rows, registry)
    errors += cycles
    plan = ImportPlan()
    for row in parsed.rows:
        existing = registry.get(row.code)
        if existing is None:
            plan.creates.append(row)
        elif _changes(existing, row):
            plan.updates.append(row)
        else:
            plan.unchanged.append(row.code)
    plan.creates, unordered = _creation_order(plan.creates)
    if not cycles:  # else these rows only wait on the cycles already reported
        errors += [
            RowError(row.line, "parent_code", "parent and reports_to form a loop with other rows")
            for row in unordered
        ]
    if errors:
        raise ImportRefused(errors)
    return plan


def _row_checks(
    row: ImportRow,
    codes: frozenset[str],
    registry: Mapping[str, Unit],
    kinds: Mapping[str, UnitKind],
) -> list[RowError]:
    unit, line = row.unit, row.line
    errors = []
    if unit.kind not in kinds:
        errors.append(RowError(line, "kind", unknown_kind_message(unit.kind, kinds)))
    for name in REFERENCE_FIELDS:
        reference = getattr(unit, name)
        if reference is None or reference == unit.code:
            continue  # a unit naming itself is a cycle, reported with the cycles
        if reference not in registry and reference not in codes:
            message = f"unknown unit {reference}: neither registered nor in this file"
            errors.append(RowError(line, name, message))
        elif reference in registry and not registry[reference].active:
            errors.append(RowError(line, name, f"unit {reference} is dissolved"))
    existing = registry.get(unit.code)
    if existing is not None:
        errors += _unchangeable(row, existing)
    return errors


def _unchangeable(row: ImportRow, existing: Unit) -> list[RowError]:
    unit, line = row.unit, row.line
    errors = []
    if unit.kind != existing.kind:
        errors.append(RowError(line, "kind", f"cannot change (registered as {existing.kind})"))
    if unit.parent_code != existing.parent_code:
        was = existing.parent_code or "no parent"
        errors.append(RowError(line, "parent_code", f"cannot change (registered under {was})"))
    if unit.established_on not in (None, existing.established_on):
        errors.append(RowError(line, "established_on", "cannot change by import"))
    if unit.reports_to_code is None and existing.reports_to_code is not None:
        message = f"cannot be cleared by import (reports to {existing.reports_to_code})"
        errors.append(RowError(line, "reports_to_code", message))
    if not existing.active and _changes(existing, row):
        errors.append(RowError(line, "code", f"unit {existing.code} is dissolved"))
    return errors


def _changes(existing: Unit, row: ImportRow) -> bool:
    unit = row.unit
    return (
        unit.name != existing.name
        or (not row.keep_contacts and unit.contacts != existing.contacts)
        or unit.reports_to_code != existing.reports_to_code
        or unit.tags != existing.tags
    )


def _cycle_errors(rows: Sequence[ImportRow], registry: Mapping[str, Unit]) -> list[RowError]:
    """A parent or reports_to chain that comes back to the row's own unit."""
    errors = []
    for name in REFERENCE_FIELDS:
        links: dict[str, str | None] = {c: getattr(u, name) for c, u in registry.items()}
        links.update({row.code: getattr(row.unit, name) for row in rows})
        for row in rows:
            loop = _loop_from(row.code, links)
            if loop:
                errors.append(RowError(row.line, name, f"cycle: {' → '.join(loop)}"))
    return errors


def _loop_from(start: str, links: Mapping[str, str | None]) -> list[str]:
    chain = [start]
    current = links.get(start)
    while current is not None and current not in chain:
        chain.append(current)
        current = links.get(current)
    return [*chain, start] if current == start else []


def _creation_order(rows: list[ImportRow]) -> tuple[list[ImportRow], list[ImportRow]]:
    """New units in file order, except that a unit comes after the new units it names as
    parent or reports_to (a depth-first walk, without recursion: a chain may be long).
    Returns those in order, and those that can never be (they wait on a loop)."""
    by_code = {row.code: row for row in rows}
    visiting: set[str] = set()
    visited: list[str] = []
    for row in rows:
        if row.code in visiting:
            continue
        stack = [row.code]
        while stack:
            code = stack[-1]
            visiting.add(code)
            waiting = [c for c in _needs(by_code[code]) if c in by_code and c not in visiting]
            if waiting:
                stack.append(waiting[0])
                continue
            visited.append(stack.pop())
    placed: set[str] = set()
    ordered, looped = [], []
    for code in visited:
        row = by_code[code]
        if all(c in placed for c in _needs(row) if c in by_code):
            placed.add(code)
            ordered.append(row)
        else:
            looped.append(row)
    return ordered, looped


def _needs(row: ImportRow) -> set[str]:
    unit = row.unit
    return {c for c in (unit.parent_code, unit.reports_to_code) if c and c != unit.code}


# --- the handler ----------------------------------------------------------------------


async def import_units(
    parsed: ParsedFile, uow: UnitOfWork, kinds: Mapping[str, UnitKind] | None = None
) -> ImportCounts:
    """Import every row of ``parsed`` in one unit of work, or none (ImportRefused)."""
    repository = uow.repository(UnitRepository)
    registry = await repository.all()
    plan = plan_import(parsed, registry, load_unit_kinds() if kinds is None else kinds)
    known = dict(registry)
    for row in plan.creates:
        known[row.code] = await add_unit(_register_command(row), repository, uow)
    for row in plan.updates:
        await _update(row, known, repository, uow)
    await uow.commit()
    return ImportCounts(
        created=len(plan.creates), updated=len(plan.updates), unchanged=len(plan.unchanged)
    )


def _register_command(row: ImportRow) -> RegisterUnit:
    unit = row.unit
    return RegisterUnit(
        code=unit.code,
        name=unit.name,
        kind=unit.kind,
        parent_code=unit.parent_code,
        reports_to_code=unit.reports_to_code,
        contacts=unit.contacts,
        tags=unit.tags,
        established_on=unit.established_on,
    )


async def _update(
    row: ImportRow, known: Mapping[str, Unit], repository: UnitRepository, uow: UnitOfWork
) -> None:
    unit = known[row.code]
    reports_to = row.unit.reports_to_code
    unit.update(
        name=row.unit.name,
        contacts=None if row.keep_contacts else row.unit.contacts,
        reports_to=known[reports_to] if reports_to else None,
        tags=row.unit.tags,
    )
    await repository.save(unit, uow.clock.now())
    uow.publish(*unit.events)


# --- export ---------------------------------------------------------------------------


def export_rows(registry: Mapping[str, Unit], under: str | None = None) -> list[UnitRow]:
    """The active units (of the subtree of ``under``, itself included), in registry order,
    which lists parents before their children."""
    if under is not None and under not in registry:
        raise Missing(f"no unit {under}")
    return [
        UnitRow.of(unit)
        for unit in registry.values()
        if unit.active and (under is None or unit.is_within(under))
    ]


def to_csv(rows: Iterable[UnitRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = row.model_dump()
        values["tags"] = ";".join(row.tags)
        writer.writerow(
            ["" if values[name] is None else to_csv_cell(str(values[name])) for name in COLUMNS]
        )
    return out.getvalue()


def to_yaml(rows: Iterable[UnitRow]) -> str:
    items = []
    for row in rows:
        values = row.model_dump(exclude_none=True)
        values["tags"] = list(row.tags)
        items.append({name: values[name] for name in COLUMNS if values.get(name) not in (None, [])})
    return yaml.safe_dump(items, allow_unicode=True, sort_keys=False, width=100)


def render(rows: Iterable[UnitRow], file_format: FileFormat) -> str:
    return to_csv(rows) if file_format is FileFormat.CSV else to_yaml(rows)


async def export_units(uow: UnitOfWork, file_format: FileFormat, under: str | None = None) -> str:
    registry = await uow.repository(UnitRepository).all()
    return render(export_rows(registry, under), file_format)


# --- real administrative units --------------------------------------------------------

DEPARTMENTS_FILE = "units/departments.yaml"


@dataclass(frozen=True)
class DepartmentSpec:
    """A department, agency or public service unit of data/units/departments.yaml."""

    abbr: str
    name: str
    kind: str
    tags: tuple[str, ...] = ()
    only_in: tuple[str, ...] = ()
    except_in: tuple[str, ...] = ()

    def applies_to(self, province_code: str) -> bool:
        if self.only_in and province_code not in self.only_in:
            return False
        return province_code not in self.except_in


@dataclass(frozen=True)
class ProvinceNames:
    """How a province names itself and its units: unit code, full name, the word for its
    level ("tỉnh", or "Thành phố" for a centrally-run city) and its short name."""

    code: str
    name: str
    level_word: str
    short_name: str


def parse_departments(text: str) -> list[DepartmentSpec]:
    document = yaml.safe_load(text)
    entries = document.get("departments") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DataFileError("a departments file has a list under 'departments'")
    return [_department(entry, position) for position, entry in enumerate(entries, start=1)]


def _department(entry: Any, position: int) -> DepartmentSpec:
    if not isinstance(entry, dict) or not all(entry.get(k) for k in ("abbr", "name", "kind")):
        raise DataFileError(f"department #{position} needs abbr, name and kind")
    return DepartmentSpec(
        abbr=str(entry["abbr"]),
        name=str(entry["name"]),
        kind=str(entry["kind"]),
        tags=tuple(str(tag) for tag in entry.get("tags") or ()),
        only_in=tuple(str(code) for code in entry.get("only_in") or ()),
        except_in=tuple(str(code) for code in entry.get("except_in") or ()),
    )


def load_departments(path: Path | None = None) -> list[DepartmentSpec]:
    path = path or find_data_file(DEPARTMENTS_FILE)
    return parse_departments(path.read_text(encoding="utf-8"))


def demo_contacts(code: str, domain: str = "demo.gov.vn") -> dict[str, str]:
    """Plausible, undeliverable addresses for demos: the unit's office and its head."""
    local = code.lower()
    return {"focal_email": f"vanphong.{local}@{domain}", "head_email": f"lanhdao.{local}@{domain}"}


def home_affairs_abbr(specs: Sequence[DepartmentSpec]) -> str:
    found = [spec.abbr for spec in specs if "home_affairs" in spec.tags]
    if len(found) != 1:
        raise DataFileError("the departments file tags exactly one unit home_affairs")
    return found[0]


def department_values(
    province: ProvinceNames, specs: Sequence[DepartmentSpec]
) -> list[dict[str, Any]]:
    """Rows (import file fields) of the province's departments, agencies and public
    service units; all report to Home Affairs, which reports to nobody."""
    home_affairs = f"{province.code}-{home_affairs_abbr(specs)}"
    rows = []
    for spec in specs:
        if not spec.applies_to(province.code):
            continue
        code = f"{province.code}-{spec.abbr}"
        name = spec.name.format(cap=province.level_word, ten=province.short_name)
        rows.append(
            {
                "code": code,
                "name": name,
                "kind": spec.kind,
                "parent_code": province.code,
                "reports_to_code": None if code == home_affairs else home_affairs,
                "tags": list(spec.tags),
            }
        )
    return rows


def list_provinces() -> list[Province]:
    return sorted(Province.iter_all(), key=lambda province: int(province.code))


def find_province(reference: str) -> Province:
    """A province by GSO code ("01" or "1") or codename ("ha_noi")."""
    text = reference.strip()
    for province in Province.iter_all():
        if (text.isdigit() and int(text) == int(province.code)) or text == province.codename:
            return province
    raise UnitRefused(
        f"no province {reference!r}; `qcdc units import-admin --list` lists the 34 provinces",
        field="province",
    )


def province_names(province: Province) -> ProvinceNames:
    city = province.division_type is VietNamDivisionType.THANH_PHO_TRUNG_UONG
    short = province.name.removeprefix("Thành phố ")
    return ProvinceNames(
        code=f"{int(province.code):02d}",
        # The package names a tỉnh without its level ("Lai Châu"), a city with it.
        name=province.name if city else f"Tỉnh {province.name}",
        level_word="Thành phố" if city else "tỉnh",
        short_name=short,
    )


def admin_values(province: Province, specs: Sequence[DepartmentSpec]) -> list[dict[str, Any]]:
    """The province, its departments and every commune, ward and special zone in force
    since 1 July 2025 (two levels: communes hang directly under the province and report to
    Home Affairs)."""
    names = province_names(province)
    departments = department_values(names, specs)
    home_affairs = f"{names.code}-{home_affairs_abbr(specs)}"
    wards = sorted(Ward.iter_by_province(province.code), key=lambda ward: int(ward.code))
    communes = [
        {
            "code": f"{int(ward.code):05d}",
            "name": ward.name,
            "kind": "commune",
            "parent_code": names.code,
            "reports_to_code": home_affairs,
        }
        for ward in wards
    ]
    root = {
        "code": names.code,
        "name": names.name,
        "kind": "province",
        "tags": ["province_committee"],
    }
    return [root, *departments, *communes]


def admin_file(
    province: Province, specs: Sequence[DepartmentSpec], *, with_demo_contacts: bool
) -> ParsedFile:
    """The administrative units as an import file (line = position), so they take the same
    validated, all-or-nothing path as a CSV or YAML file."""
    values = admin_values(province, specs)
    if with_demo_contacts:
        values = [{**row, **demo_contacts(row["code"])} for row in values]
    parsed = validate_rows([RawRow(i, row) for i, row in enumerate(values, start=1)])
    rows = [
        ImportRow(row.line, row.unit, keep_contacts=not with_demo_contacts) for row in parsed.rows
    ]
    return ParsedFile(rows=rows, errors=parsed.errors, codes=parsed.codes)


async def import_admin(
    reference: str,
    uow: UnitOfWork,
    *,
    with_demo_contacts: bool = False,
    departments: Sequence[DepartmentSpec] | None = None,
) -> ImportCounts:
    """``qcdc units import-admin --province``: idempotent, all or nothing."""
    province = find_province(reference)
    specs = load_departments() if departments is None else departments
    return await import_units(
        admin_file(province, specs, with_demo_contacts=with_demo_contacts), uow
    )
