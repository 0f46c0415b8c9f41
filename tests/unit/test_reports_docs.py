"""docs/reports.md lists the indicator catalogue as the code has it."""

from __future__ import annotations

from pathlib import Path

from services.reports.domain.indicators import CATALOGUE

DOC = Path(__file__).resolve().parents[2] / "docs" / "reports.md"


def test_every_indicator_is_documented_with_its_label_and_unit() -> None:
    text = DOC.read_text(encoding="utf-8")
    for indicator in CATALOGUE:
        row = f"| `{indicator.code}` | {indicator.label} | {indicator.unit} |"
        assert row in text, indicator.code
