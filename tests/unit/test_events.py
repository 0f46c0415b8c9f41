"""The v1 event catalogue: types, subjects, streams, unit codes and NFC text."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from pydantic import ValidationError

from shared.bus.streams import NOTIFY, PLANS, REPORTS, stream_for_subject
from shared.events import (
    BY_TYPE,
    CATALOGUE,
    ContentArea,
    DifficultyRaised,
    Event,
    UnitRegistered,
)
from shared.units import is_unit_code

OWNER_STREAM = {
    "unit": PLANS.name,
    "plan": PLANS.name,
    "subplan": PLANS.name,
    "request": PLANS.name,
    "difficulty": PLANS.name,
    "token": PLANS.name,
    "report": REPORTS.name,
    "deadline": REPORTS.name,
    "consolidation": REPORTS.name,
    "recommendation": REPORTS.name,
    "inspection": REPORTS.name,
    "conference": REPORTS.name,
    "notification": NOTIFY.name,
}
TOKEN = r"[a-z][a-z_]*"


def unit(**overrides: Any) -> UnitRegistered:
    fields: dict[str, Any] = {
        "unit_path": ["T89", "H886"],
        "code": "H886",
        "name": "Huyện Hòa Vang",
        "kind": "district",
    }
    fields.update(overrides)
    return UnitRegistered(**fields)


def test_catalogue_is_not_empty_and_lists_each_class_once() -> None:
    assert len(CATALOGUE) >= 16
    assert len(set(CATALOGUE)) == len(CATALOGUE)
    assert all(issubclass(cls, Event) for cls in CATALOGUE)


def test_every_event_has_a_unique_ce_type() -> None:
    types = [cls.ce_type() for cls in CATALOGUE]
    assert len(set(types)) == len(types), types
    assert {cls.ce_type(): cls for cls in CATALOGUE} == BY_TYPE


def test_every_event_has_a_unique_subject_prefix() -> None:
    prefixes = [cls.subject_prefix() for cls in CATALOGUE]
    assert len(set(prefixes)) == len(prefixes), prefixes


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.__name__)
def test_subject_prefix_and_type_have_the_v1_form(cls: type[Event]) -> None:
    assert re.fullmatch(rf"qcdc\.v1\.{TOKEN}\.{TOKEN}", cls.subject_prefix())
    assert cls.subject_prefix() == f"qcdc.v1.{cls.aggregate}.{cls.event}"
    assert cls.ce_type() == f"qcdc.{cls.aggregate}.{cls.event}.v1"


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.__name__)
def test_every_subject_falls_into_the_stream_of_its_owning_service(cls: type[Event]) -> None:
    assert cls.aggregate in OWNER_STREAM, f"no owner decided for aggregate {cls.aggregate!r}"
    subject = f"{cls.subject_prefix()}.T89.H886.X30337"
    assert stream_for_subject(subject).name == OWNER_STREAM[cls.aggregate]


def test_event_subject_appends_the_unit_path() -> None:
    event = unit(unit_path=["T89", "H886"])
    assert event.subject() == "qcdc.v1.unit.registered.T89.H886"


@pytest.mark.parametrize("code", ["T89", "H886", "X30337", "a", "so-noi_vu", "A" * 32, "0"])
def test_valid_unit_codes_are_accepted(code: str) -> None:
    assert is_unit_code(code)
    assert unit(unit_path=["T89", code], code=code).unit_path == ["T89", code]


@pytest.mark.parametrize(
    "code", ["a b", "x" * 33, "a.b", "*", ">", "", "T89\n", "Hòa", "a/b", "T89 "]
)
def test_invalid_unit_codes_are_refused_in_unit_path(code: str) -> None:
    assert not is_unit_code(code)
    with pytest.raises(ValidationError) as info:
        unit(unit_path=["T89", code])
    assert info.value.errors()[0]["loc"][:1] == ("unit_path",)


@pytest.mark.parametrize("code", ["a.b", "*", ">", "x" * 33])
def test_invalid_unit_codes_are_refused_as_codes(code: str) -> None:
    with pytest.raises(ValidationError):
        unit(code=code)


def test_unit_path_must_not_be_empty_nor_too_deep() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        unit(unit_path=[])
    with pytest.raises(ValidationError, match="at most 12"):
        unit(unit_path=[f"U{i}" for i in range(13)])
    assert len(unit(unit_path=[f"U{i}" for i in range(12)]).unit_path) == 12


def test_names_are_normalised_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Xã Hòa Bắc")
    assert decomposed != "Xã Hòa Bắc"
    event = unit(name=decomposed)
    assert event.name == "Xã Hòa Bắc"
    assert unicodedata.is_normalized("NFC", event.name)
    assert len(event.name) == len("Xã Hòa Bắc")


def test_nfc_applies_to_nested_text_too() -> None:
    area = ContentArea(code="1", title=unicodedata.normalize("NFD", "Lãnh đạo, chỉ đạo"))
    assert area.title == "Lãnh đạo, chỉ đạo"


@pytest.mark.parametrize("bad", ["Hòa\x00Vang", "Hòa\x07", "Hòa\u200bVang", "Hòa\x1bVang"])
def test_control_characters_are_refused_in_names(bad: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        unit(name=bad)


def test_names_keep_their_diacritics_and_lose_only_outer_whitespace() -> None:
    assert unit(name="  Ủy ban nhân dân tỉnh  ").name == "Ủy ban nhân dân tỉnh"


def test_unknown_fields_are_ignored_and_the_event_is_immutable() -> None:
    event = UnitRegistered.model_validate(
        {"unit_path": ["T89"], "code": "T89", "name": "Tỉnh", "kind": "province", "new": 1}
    )
    assert not hasattr(event, "new")
    with pytest.raises(ValidationError):
        event.code = "T90"  # type: ignore[misc]


def test_instants_must_carry_a_time_zone() -> None:
    with pytest.raises(ValidationError, match="raised_at"):
        DifficultyRaised(
            unit_path=["T89"],
            difficulty_id="d",
            plan_id="p",
            unit_code="T89",
            description="Khó khăn",
            raised_at="2023-06-09T10:00:00",  # type: ignore[arg-type]
        )
