"""Vietnam's real administrative units (``vietnam_provinces``), through the same import."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from vietnam_provinces import Province, VietNamDivisionType, Ward

from services.plans.domain.unit_kinds import (
    DataFileError,
    find_data_file,
)
from services.plans.domain.units import UnitRefused
from services.plans.handlers.unit_import.checks import ImportCounts
from services.plans.handlers.unit_import.importing import import_units
from services.plans.handlers.unit_import.rows import ImportRow, ParsedFile, RawRow, validate_rows
from shared.uow import UnitOfWork

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
