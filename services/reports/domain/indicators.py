"""The indicator catalogue and its rules, as the reports service uses them: the contract's
own, in :mod:`shared.indicators` (the plans service checks request codes against it too)."""

from shared.indicators import (
    BY_CODE,
    CATALOGUE,
    NOT_MORE_THAN,
    Aggregation,
    FieldError,
    Indicator,
    IndicatorKind,
    validate_indicators,
)

__all__ = [
    "BY_CODE",
    "CATALOGUE",
    "NOT_MORE_THAN",
    "Aggregation",
    "FieldError",
    "Indicator",
    "IndicatorKind",
    "validate_indicators",
]
