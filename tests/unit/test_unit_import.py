"""Unit registry import and export: parsing, every error by line, ordering, round trips, the
unit kinds file, real administrative units and the three-level demo file."""

from __future__ import annotations

import unicodedata
from datetime import date
from pathlib import Path

import pytest
from vietnam_provinces import Ward

from services.plans.domain.unit_kinds import (
    DataFileError,
    check_kind,
    load_unit_kinds,
    parse_unit_kinds,
)
from services.plans.domain.units import Unit, UnitRefused
from services.plans.handlers.unit_import import (
    COLUMNS,
    FileFormat,
    ImportPlan,
    ImportRefused,
    ParsedFile,
    admin_file,
    export_rows,
    find_province,
    load_departments,
    parse_file,
    plan_import,
    render,
)
from shared.events import Contacts

REPO = Path(__file__).resolve().parents[2]
HEADER = ",".join(COLUMNS)
KINDS = load_unit_kinds()


def build_registry() -> dict[str, Unit]:
    """T89 → Home Affairs (SNV), Justice (STP), commune X1 reporting to Home Affairs."""
    registry: dict[str, Unit] = {}

    def add(code: str, name: str, kind: str, parent: str | None, reports_to: str | None) -> None:
        registry[code] = Unit.register(
            code=code,
            name=name,
            kind=kind,
            parent=registry[parent] if parent else None,
            reports_to=registry[reports_to] if reports_to else None,
            contacts=Contacts(focal_email=f"vanphong.{code.lower()}@anbinh.demo.gov.vn"),
            tags=("home_affairs",) if code == "SNV" else (),
            established_on=date(2023, 1, 1) if code == "X1" else None,
        )

    add("T89", "Tỉnh An Bình", "province", None, None)
    add("SNV", "Sở Nội vụ", "department", "T89", None)
    add("STP", "Sở Tư pháp", "department", "T89", "SNV")
    add("X1", "Xã Hòa Bắc", "commune", "T89", "SNV")
    return registry


def csv_file(*rows: str) -> ParsedFile:
    return parse_file("\n".join([HEADER, *rows]) + "\n", FileFormat.CSV)


def refused(parsed: ParsedFile, registry: dict[str, Unit] | None = None) -> ImportRefused:
    """Why importing ``parsed`` into ``registry`` is refused (it must be)."""
    with pytest.raises(ImportRefused) as caught:
        plan_import(parsed, registry or {}, KINDS)
    return caught.value


def refusal(parsed: ParsedFile, registry: dict[str, Unit] | None = None) -> list[tuple[int, str]]:
    return [(error.line, error.field) for error in refused(parsed, registry).row_errors]


def planned(parsed: ParsedFile, registry: dict[str, Unit] | None = None) -> ImportPlan:
    return plan_import(parsed, registry or {}, KINDS)


def test_a_csv_with_three_bad_rows_reports_all_three_by_line_and_field() -> None:
    parsed = csv_file(
        "T89,Tỉnh An Bình,province,,,,,,province_committee,",
        "SNV,Sở Nội vụ,department,T89,,,,,home_affairs,",
        "X1,Xã Một,xa,T89,SNV,,,,,",
        "X2,Xã Hai,commune,NOPE,SNV,,,,,",
        "X 3,Xã Ba,commune,T89,SNV,,,,,",
        "X4,Xã Bốn,commune,T89,SNV,vanphong@xabon.demo.gov.vn,,,,2023-01-01",
    )
    caught = refused(parsed)
    errors = caught.row_errors
    assert [(e.line, e.field) for e in errors] == [(4, "kind"), (5, "parent_code"), (6, "code")]
    assert str(errors[0]) == (
        "line 4, kind: unknown kind 'xa'; known: "
        "province, department, public_service_unit, district, commune"
    )
    assert "NOPE" in errors[1].message
    assert caught.message == "3 errors in the file; nothing was imported"


def test_csv_line_numbers_count_the_header_and_lines_inside_quoted_cells() -> None:
    parsed = csv_file(
        "T89,Tỉnh An Bình,province,,,,,,,",
        "",
        'X1,"Xã\nMột",commune,T89,,,,,,',
        "X2,Xã Hai,commune,T89,,not-an-email,,,,",
        "X3,Xã Ba,commune,T89,,,,,bad tag;,",
        "X4,Xã Bốn,commune,T89,,,,,,01/01/2023,extra",
    )
    assert refusal(parsed) == [(4, "name"), (6, "focal_email"), (7, "tags"), (8, "row")]


def test_a_bad_header_is_refused_before_any_row() -> None:
    with pytest.raises(ImportRefused) as caught:
        parse_file("code,name,type\nX1,Xã Một,commune\n", FileFormat.CSV)
    errors = [(e.line, e.field, e.message) for e in caught.value.row_errors]
    assert (1, "kind", "missing column") in errors
    assert (1, "type", f"unknown column; the columns are {', '.join(COLUMNS)}") in errors


def test_yaml_errors_give_the_line_where_the_item_starts() -> None:
    text = """\
# a comment
- code: T89
  name: Tỉnh An Bình
  kind: province

- code: X1
  name: Xã Một
  kind: xa
  parent_code: T89
- code: 00070
  name: Phường Hoàn Kiếm
  kind: commune
- code: X2
  name: Xã Hai
  kind: commune
  parent_code: T89
  contacts:
    focal_email: not-an-email
"""
    parsed = parse_file(text, FileFormat.YAML)
    assert refusal(parsed) == [(6, "kind"), (10, "code"), (13, "focal_email")]
    quoted = next(e for e in parsed.errors if e.field == "code")
    assert 'quote codes such as "01"' in quoted.message


def test_yaml_that_is_not_a_list_of_units_is_refused_with_its_line() -> None:
    with pytest.raises(ImportRefused) as caught:
        parse_file("- code: X1\n  name: [unclosed\n", FileFormat.YAML)
    assert caught.value.row_errors[0].field == "file"
    with pytest.raises(ImportRefused):
        parse_file("code: X1\n", FileFormat.YAML)


def test_parent_and_reports_to_cycles_are_refused() -> None:
    parsed = csv_file(
        "A,Đơn vị A,department,B,,,,,,",
        "B,Đơn vị B,department,A,,,,,,",
        "C,Đơn vị C,department,,C,,,,,",
    )
    errors = refusal(parsed)
    assert errors == [(2, "parent_code"), (3, "parent_code"), (4, "reports_to_code")]


def test_a_reporting_cycle_through_the_registry_is_refused() -> None:
    registry = build_registry()
    parsed = csv_file(
        "SNV,Sở Nội vụ,department,T89,X9,vanphong.snv@anbinh.demo.gov.vn,,,home_affairs,",
        "X9,Xã Chín,commune,T89,STP,,,,,",
    )
    messages = {(e.line, e.field): e.message for e in refused(parsed, registry).row_errors}
    assert messages[(2, "reports_to_code")] == "cycle: SNV → X9 → STP → SNV"


def test_references_may_point_later_in_the_file_and_parents_come_first() -> None:
    parsed = csv_file(
        "X1,Xã Một,commune,H1,H1,,,,,",
        "H1,Huyện Một,district,T1,SNV,,,,,",
        "SNV,Sở Nội vụ,department,T1,,,,,home_affairs,",
        "T1,Tỉnh Một,province,,,,,,,",
    )
    assert [row.code for row in planned(parsed).creates] == ["T1", "SNV", "H1", "X1"]


def test_unknown_parent_and_duplicate_code_are_refused() -> None:
    parsed = csv_file(
        "T89,Tỉnh An Bình,province,,,,,,,",
        "X1,Xã Một,commune,H404,,,,,,",
        "X2,Xã Hai,commune,T89,,,,,,",
        "X2,Xã Hai bis,commune,T89,,,,,,",
    )
    errors = {(e.line, e.field): e.message for e in refused(parsed).row_errors}
    assert errors == {
        (3, "parent_code"): "unknown unit H404: neither registered nor in this file",
        (5, "code"): "duplicate code X2 (first on line 4)",
    }


def test_a_reference_to_a_broken_row_is_not_reported_twice() -> None:
    parsed = csv_file("H1,Huyện Một,huyen,,,,,,,", "X1,Xã Một,commune,H1,H1,,,,,")
    assert refusal(parsed) == [(2, "kind")]


def test_names_are_stored_in_nfc_and_nfd_input_matches_them() -> None:
    decomposed = unicodedata.normalize("NFD", "Xã Hòa Bắc")
    assert decomposed != "Xã Hòa Bắc"
    parsed = csv_file(
        f"X1,{decomposed},commune,T89,SNV,vanphong.x1@anbinh.demo.gov.vn,,,,2023-01-01",
        f"X2,  {decomposed} 2 ,commune,T89,SNV,,,,,",
    )
    assert parsed.rows[1].unit.name == "Xã Hòa Bắc 2"
    plan = planned(parsed, build_registry())
    assert plan.unchanged == ["X1"]
    assert [row.code for row in plan.creates] == ["X2"]


def test_control_characters_in_a_name_are_refused() -> None:
    assert refusal(csv_file("X1,Xã\u200bMột,commune,,,,,,,")) == [(2, "name")]


def test_changed_units_are_updated_and_identical_ones_left_alone() -> None:
    registry = build_registry()
    rows = [
        "T89,Tỉnh An Bình,province,,,vanphong.t89@anbinh.demo.gov.vn,,,,",
        "SNV,Sở Nội vụ,department,T89,,vanphong.snv@anbinh.demo.gov.vn,,,home_affairs,",
        "STP,Sở Tư pháp tỉnh,department,T89,SNV,vanphong.stp@anbinh.demo.gov.vn,,,,",
        "X1,Xã Hòa Bắc,commune,T89,STP,vanphong.x1@anbinh.demo.gov.vn,,,,2023-01-01",
    ]
    plan = planned(csv_file(*rows), registry)
    assert (plan.creates, plan.unchanged) == ([], ["T89", "SNV"])
    assert [row.code for row in plan.updates] == ["STP", "X1"]


def test_kind_and_parent_do_not_change_and_reports_to_is_not_cleared_by_import() -> None:
    parsed = csv_file(
        "STP,Sở Tư pháp,public_service_unit,T89,SNV,vanphong.stp@anbinh.demo.gov.vn,,,,",
        "X1,Xã Hòa Bắc,commune,STP,,vanphong.x1@anbinh.demo.gov.vn,,,,2024-01-01",
    )
    errors = refusal(parsed, build_registry())
    assert errors == [
        (2, "kind"),
        (3, "established_on"),
        (3, "parent_code"),
        (3, "reports_to_code"),
    ]


@pytest.mark.parametrize("file_format", list(FileFormat))
def test_export_then_import_changes_nothing(file_format: FileFormat) -> None:
    registry = build_registry()
    registry["STP"].update(contacts=Contacts(webhook_url="https://stp.anbinh.demo.gov.vn/hook"))
    text = render(export_rows(registry), file_format)
    parsed = parse_file(text, file_format)
    assert [row.unit for row in parsed.rows] == export_rows(registry)
    plan = planned(parsed, registry)
    assert (plan.creates, plan.updates) == ([], [])
    assert plan.unchanged == ["T89", "SNV", "STP", "X1"]


def test_a_name_a_spreadsheet_would_evaluate_is_exported_as_text_and_reads_back() -> None:
    # OWASP's CSV-injection rule: a leading apostrophe, which our import removes again.
    registry = build_registry()
    formula = '=HYPERLINK("http://evil.example/","Bấm vào đây")'
    registry["STP"].update(name=formula)
    text = render(export_rows(registry), FileFormat.CSV)
    line = next(row for row in text.splitlines() if row.startswith("STP,"))
    assert line.startswith('STP,"\'=HYPERLINK(""http://evil.example/"",""Bấm vào đây"")"')
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in line.split(","))
    parsed = parse_file(text, FileFormat.CSV)
    assert next(r.unit for r in parsed.rows if r.unit.code == "STP").name == formula
    assert planned(parsed, registry).updates == []


def test_an_exported_subtree_imports_into_an_empty_registry() -> None:
    registry = build_registry()
    registry["X2"] = Unit.register(
        code="X2",
        name="Xã Hai",
        kind="commune",
        parent=registry["X1"],
        reports_to=registry["X1"],
        contacts=Contacts(),
    )
    exported = render(export_rows(registry, under="X1"), FileFormat.CSV)
    assert exported.splitlines()[1:] == [
        "X1,Xã Hòa Bắc,commune,T89,SNV,vanphong.x1@anbinh.demo.gov.vn,,,,2023-01-01",
        "X2,Xã Hai,commune,X1,X1,,,,,",
    ]


def test_the_shipped_unit_kinds_and_an_unknown_kind() -> None:
    assert list(KINDS) == ["province", "department", "public_service_unit", "district", "commune"]
    assert KINDS["commune"].label == "UBND xã, phường, thị trấn, đặc khu"
    assert check_kind("district").level == 2
    with pytest.raises(UnitRefused) as caught:
        check_kind("huyen")
    assert caught.value.field == "kind"
    assert "known: province, department" in caught.value.message


def test_a_malformed_unit_kinds_file_is_a_deployment_error() -> None:
    with pytest.raises(DataFileError):
        parse_unit_kinds("kinds:\n  - code: Province\n    label: Tỉnh\n    level: 1\n")
    with pytest.raises(DataFileError):
        parse_unit_kinds("kinds: []\n")


def test_the_unit_kinds_file_can_be_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kinds.yaml"
    path.write_text("kinds:\n  - code: ward\n    label: Phường\n    level: 2\n", encoding="utf-8")
    monkeypatch.setenv("QCDC_UNIT_KINDS_FILE", str(path))
    assert list(load_unit_kinds()) == ["ward"]
    with pytest.raises(UnitRefused):
        check_kind("commune")


@pytest.mark.parametrize("reference", ["12", "012", "lai_chau"])
def test_provinces_are_found_by_code_or_codename(reference: str) -> None:
    assert find_province(reference).codename == "lai_chau"


def test_an_unknown_province_is_refused() -> None:
    with pytest.raises(UnitRefused, match="import-admin --list"):
        find_province("99")


def test_a_real_two_level_province_as_an_import_file() -> None:
    parsed = admin_file(find_province("12"), load_departments(), with_demo_contacts=True)
    assert parsed.errors == []
    units = {row.code: row.unit for row in parsed.rows}
    wards = list(Ward.iter_by_province(find_province("12").code))
    communes = [u for u in units.values() if u.kind == "commune"]
    assert len(communes) == len(wards) == 38
    assert units["12"].name == "Tỉnh Lai Châu"
    assert units["12"].tags == ("province_committee",)
    assert units["12-SNV"].tags == ("home_affairs",)
    assert units["12-SNV"].reports_to_code is None
    assert units["12-TTR"].name == "Thanh tra tỉnh"
    assert "12-SNGV" in units  # a border province keeps its foreign affairs department
    assert "12-SDL" not in units
    assert {(u.parent_code, u.reports_to_code) for u in communes} == {("12", "12-SNV")}
    assert all(len(u.code) == 5 and u.code.isdigit() for u in communes)
    assert units["12-STP"].focal_email == "vanphong.12-stp@demo.gov.vn"
    assert planned(parsed).creates[0].code == "12"


def test_a_centrally_run_city_names_itself_and_its_office() -> None:
    parsed = admin_file(find_province("1"), load_departments(), with_demo_contacts=False)
    units = {row.code: row.unit for row in parsed.rows}
    assert units["01"].name == "Thành phố Hà Nội"
    assert units["01-VP"].name == "Văn phòng Ủy ban nhân dân Thành phố"
    assert units["00070"].name == "Phường Hoàn Kiếm"
    assert units["01-SDL"].name == "Sở Du lịch"
    assert all(row.keep_contacts for row in parsed.rows)
    assert units["01"].focal_email is None


def test_the_three_level_demo_file() -> None:
    path = REPO / "data" / "units" / "demo-three-level.yaml"
    parsed = parse_file(path.read_text(encoding="utf-8"), FileFormat.YAML)
    plan = planned(parsed)
    units = {row.code: row.unit for row in plan.creates}
    districts = [u for u in units.values() if u.kind == "district"]
    communes = [u for u in units.values() if u.kind == "commune"]
    assert (len(districts), len(communes)) == (9, 150)
    assert all(u.reports_to_code == u.parent_code for u in communes)
    assert all(units[u.parent_code or ""].kind == "district" for u in communes)
    assert {u.reports_to_code for u in districts} == {"T89-SNV"}
    assert all(u.focal_email and u.head_email for u in units.values())
    assert len({u.name for u in communes}) == 150
