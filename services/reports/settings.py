"""Settings of the reports service (``QCDC_`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from services.reports.domain.model import Ownership
from shared.settings import ServiceSettings


class ReportsSettings(ServiceSettings):
    http_port: int = 8302
    scope: str | None = Field(
        None,
        description="Unit code whose subtree this instance owns (a district's own instance); "
        "empty: the whole registry.",
    )
    scope_path: str = Field(
        "",
        description="The scope unit's path, dot-separated (e.g. T89.H801): a district's "
        "instance listens for bus submissions under it only, as its credential allows.",
    )
    delegated: list[str] = Field(
        default_factory=list,
        description="Subtrees owned by other instances (e.g. districts running their own); "
        "their reports reach this instance read-only, from the bus.",
    )

    @property
    def instance(self) -> str:
        """Names this instance's durable consumers, so instances never share messages while
        replicas of one instance do."""
        return self.ownership().instance

    def ownership(self) -> Ownership:
        return Ownership(scope=self.scope, delegated=tuple(self.delegated))

    attachment_max_bytes: int = Field(20 * 1024 * 1024, description="Largest attachment.")
    attachment_types: list[str] = Field(
        default_factory=lambda: [
            "application/pdf",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "image/jpeg",
            "image/png",
        ],
        description="Content types accepted for attachments.",
    )
    reminder_offsets_days: list[int] = Field(
        default_factory=lambda: [7, 3, 1],
        description="DeadlineApproaching this many days before each deadline.",
    )
    recommendation_answer_days: int = Field(
        30,
        ge=1,
        le=365,
        description="Calendar days, from the day received, within which the addressed unit "
        "answers a recommendation after supervision in writing (docs/reports.md: why 30).",
    )
    urge_every_working_days: int = Field(
        3, ge=1, description="Working days between urgings after a missed deadline."
    )
    escalate_after_steps: int = Field(
        2, ge=1, description="From this urging on, the head of the late unit is told too."
    )
    escalate_to_receiving_after_steps: int = Field(
        4,
        ge=1,
        description="From this urging on, the receiving unit's leadership is told too.",
    )
    urge_max_steps: int = Field(
        5,
        ge=0,
        description="Urgings after a missed deadline; the last one says so, and after it only "
        "the daily digest lists the report still missing. 0: none.",
    )
    clock_interval_seconds: float = Field(30.0, description="How often the deadline clock runs.")
    clock_batch_size: int = Field(
        1000, ge=1, description="Obligations the deadline clock fires in one transaction."
    )
    clock_workers: int = Field(
        2,
        ge=1,
        description="Batches the deadline clock fires at once, each in its own transaction: "
        "one decides while another waits on the database (SQLite takes them in turn).",
    )
