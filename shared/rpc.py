"""Request-reply contracts on the bus, version 1: a report submitted over NATS.

``qcdc.v1.rpc.report.submit.<unit path tokens>`` (core NATS request-reply, not a stream):
the request is a :class:`BusSubmission`, the reply a :class:`BusReceipt` or a
:class:`BusError`. They live here, beside the event models, because they are as public as
the events: the reports service answers with them and the AsyncAPI document describes them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from shared.units import NfcText, UnitCode

SUBMIT_SUBJECT = "qcdc.v1.rpc.report.submit"


class BusSubmission(BaseModel):
    """A submission over NATS request-reply: the HTTP body plus the idempotency key.
    Unknown fields are refused (unlike events)."""

    model_config = ConfigDict(extra="forbid")

    obligation_id: str = Field(max_length=64, description="The obligation answered.")
    unit_code: UnitCode = Field(description="The submitting unit, owner of the obligation.")
    idempotency_key: str | None = Field(
        None, max_length=128, description="A retry with the same key returns the same receipt."
    )
    submitted_by: str | None = Field(None, max_length=256, description="E-mail or user.")
    narrative: dict[str, NfcText] = Field(
        default_factory=dict, description="Text per content area code."
    )
    indicators: dict[str, StrictInt] = Field(
        default_factory=dict, description="Indicator values by code."
    )


class BusReceipt(BaseModel):
    """The receipt: the same fields, and the same time format, as ``POST /reports``."""

    report_id: str
    receipt_number: str = Field(description="`BC-<year>-<6 digits>`, year of receipt in ICT.")
    obligation_id: str
    version: int = Field(description="1 for the first submission, then 2, …")
    submitted_at: datetime = Field(description="When it was received, RFC 3339 UTC with `Z`.")
    on_time: bool
    replayed: bool = Field(
        description="True when an earlier submission with the same idempotency key is returned."
    )


class ErrorItem(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    message: str = Field(description="What is wrong, in Vietnamese where an official reads it.")
    field: str | None = Field(None, description="The field at fault, when there is one.")
    errors: list[ErrorItem] = Field(default_factory=list, description="One entry per field.")
    retry_after: int | None = Field(
        None,
        description="Only while the database is unavailable: nothing was recorded; send the "
        "same submission (same idempotency key) again after this many seconds.",
    )


class BusError(BaseModel):
    """The reply when the submission is refused: the shape of the HTTP API's errors."""

    error: ErrorDetail
