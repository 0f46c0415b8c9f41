"""CSV and YAML in and out: the unit file's text formats."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from services.plans.domain.units import Unit
from services.plans.handlers.unit_import.rows import (
    COLUMNS,
    REQUIRED_COLUMNS,
    FileFormat,
    ImportRefused,
    ParsedFile,
    RawFile,
    RawRow,
    RowError,
    UnitRow,
    validate_rows,
)
from shared.errors import Missing
from shared.spreadsheets import from_csv_cell, to_csv_cell

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
