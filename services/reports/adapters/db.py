"""Tables of the reports service (repositories are in :mod:`repositories`)."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import UTCDateTime, messaging_tables, security_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)
security = security_tables(metadata)

obligations = sa.Table(
    "obligations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("plan_id", sa.String(64), nullable=False, index=True),
    sa.Column("schedule_key", sa.String(64), nullable=False),
    sa.Column("report_kind", sa.String(16), nullable=False),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("unit_path", sa.JSON, nullable=False),
    sa.Column("receiving_unit", sa.String(32), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("plan_doc_number", sa.String(64), nullable=False, server_default=""),
    sa.Column("plan_title", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("waived_reason", sa.Text, nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True, index=True),
    sa.Column("owned", sa.Boolean, nullable=False, server_default=sa.true()),
    # When the deadline clock next has something to decide; NULL (and out of the index)
    # unless the obligation is owned here and awaits a report. A pass is a range scan of it.
    sa.Column("next_step_at", UTCDateTime, nullable=True),
    # The plan was closed: nothing more is urged, whatever the status (kept for the record).
    sa.Column("plan_closed", sa.Boolean, nullable=False, server_default=sa.false()),
    # Content area codes its narrative may speak to; NULL where none are known.
    sa.Column("content_areas", sa.JSON, nullable=True),
    sa.Index(
        "ix_obligations_next_step",
        "next_step_at",
        postgresql_where=sa.text("next_step_at IS NOT NULL"),
        sqlite_where=sa.text("next_step_at IS NOT NULL"),
    ),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("obligation_id", sa.ForeignKey("obligations.id"), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("receipt_number", sa.String(32), nullable=False, unique=True),
    # Unused since 0009 (keys are scoped to the submitting unit: idempotency_keys); kept
    # NULL so a rollback finds the column.
    sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
    sa.Column("submitted_at", UTCDateTime, nullable=False),
    sa.Column("on_time", sa.Boolean, nullable=False),
    sa.Column("submitted_by", sa.String(256), nullable=True),
    sa.Column("narrative", sa.JSON, nullable=False),
    sa.Column("indicators", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="submitted"),
    sa.Column("reviewed_at", UTCDateTime, nullable=True),
    sa.Column("reviewed_by_unit", sa.String(32), nullable=True),
    sa.Column("review_reason", sa.Text, nullable=True),
    sa.UniqueConstraint("obligation_id", "version"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    # An Idempotency-Key belongs to the unit that submitted with it: another unit's same key
    # is another key, and never reaches this unit's receipt.
    sa.Column("unit_code", sa.String(32), primary_key=True),
    sa.Column("idempotency_key", sa.String(128), primary_key=True),
    sa.Column("report_id", sa.ForeignKey("reports.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("report_id", sa.ForeignKey("reports.id"), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(128), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("stored_as", sa.String(512), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

units = sa.Table(
    "units",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("path", sa.JSON, nullable=False),
    sa.Column("parent_code", sa.String(32), nullable=True),
    sa.Column("reports_to_code", sa.String(32), nullable=True),
    sa.Column("head_email", sa.String(256), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

deadline_steps = sa.Table(
    "deadline_steps",
    metadata,
    sa.Column("obligation_id", sa.ForeignKey("obligations.id"), primary_key=True),
    sa.Column("step", sa.String(32), primary_key=True),
    sa.Column("planned_for", UTCDateTime, nullable=False),
    sa.Column("fired_at", UTCDateTime, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
)

deadline_changes = sa.Table(
    "deadline_changes",
    metadata,
    # Every move of an obligation's deadline, and the reports whose verdict (on time or
    # late) it changed: the history behind a report counted on time after an extension.
    sa.Column("obligation_id", sa.ForeignKey("obligations.id"), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("old_due_at", UTCDateTime, nullable=False),
    sa.Column("new_due_at", UTCDateTime, nullable=False),
    sa.Column("cause", sa.Text, nullable=False, server_default=""),
    sa.Column("reclassified", sa.JSON, nullable=False),
)

deadline_clock_rules = sa.Table(
    "deadline_clock_rules",
    metadata,
    # The schedule the stored next steps were computed with (one row): the clock
    # reconsiders every awaiting obligation when the settings or the calendar change.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("fingerprint", sa.String(512), nullable=False),
    sa.Column("adopted_at", UTCDateTime, nullable=False),
)

consolidations = sa.Table(
    "consolidations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("plan_id", sa.String(64), nullable=False),
    sa.Column("schedule_key", sa.String(64), nullable=False),
    sa.Column("receiving_unit", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
    sa.Column("published_by", sa.String(256), nullable=False, server_default=""),
    sa.Column("content", sa.JSON, nullable=False),
    sa.UniqueConstraint("plan_id", "schedule_key", "receiving_unit", "version"),
)

receipt_counters = sa.Table(
    "receipt_counters",
    metadata,
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
)

recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("source_organisation", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("addressed_unit", sa.String(32), nullable=False, index=True),
    sa.Column("addressed_path", sa.JSON, nullable=False),
    sa.Column("registered_by_unit", sa.String(32), nullable=False),
    sa.Column("received_on", sa.Date, nullable=False),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("answer_due_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("answered_at", UTCDateTime, nullable=True),
    sa.Column("answered_on_time", sa.Boolean, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
)

recommendation_history = sa.Table(
    "recommendation_history",
    metadata,
    # The answer and every implementation report, in order: never changed once written.
    sa.Column("recommendation_id", sa.ForeignKey("recommendations.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("by_unit", sa.String(32), nullable=False),
    sa.Column("completed", sa.Boolean, nullable=False),
)

# --- inspections and surveys (reports migration 0013) ----------------------------------

inspections = sa.Table(
    "inspections",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("inspecting_unit", sa.String(32), nullable=False, index=True),
    sa.Column("inspecting_path", sa.JSON, nullable=False),
    sa.Column("plan_id", sa.String(64), nullable=True),
    sa.Column("planned_start", sa.Date, nullable=False, index=True),
    sa.Column("planned_end", sa.Date, nullable=False),
    sa.Column("registered_at", UTCDateTime, nullable=False),
)

inspected_units = sa.Table(
    "inspected_units",
    metadata,
    # One row per inspection and inspected unit; the findings make it done.
    sa.Column("inspection_id", sa.ForeignKey("inspections.id"), primary_key=True),
    sa.Column("unit_code", sa.String(32), primary_key=True, index=True),
    sa.Column("unit_path", sa.JSON, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("conducted_on", sa.Date, nullable=True),
    sa.Column("conclusion", sa.Text, nullable=False, server_default=""),
    sa.Column("findings_recorded_at", UTCDateTime, nullable=True),
)

inspection_findings = sa.Table(
    "inspection_findings",
    metadata,
    sa.Column("inspection_id", sa.ForeignKey("inspections.id"), primary_key=True),
    sa.Column("unit_code", sa.String(32), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("content", sa.Text, nullable=False),
)

inspection_actions = sa.Table(
    "inspection_actions",
    metadata,
    # A required action of a finding; its follow-up obligation is ``inspection-<id>``.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("inspection_id", sa.ForeignKey("inspections.id"), nullable=False, index=True),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("unit_path", sa.JSON, nullable=False),
    sa.Column("finding_number", sa.Integer, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("conducted_on", sa.Date, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("done_reported_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("closed_on_time", sa.Boolean, nullable=True),
)

inspection_action_history = sa.Table(
    "inspection_action_history",
    metadata,
    # Follow-up reports, closings and returns, in order: never changed once written.
    sa.Column("action_id", sa.ForeignKey("inspection_actions.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("by_unit", sa.String(32), nullable=False),
    sa.Column("done", sa.Boolean, nullable=False),
)

# --- staff conferences (reports migration 0014) ------------------------------------------

conferences = sa.Table(
    "conferences",
    metadata,
    # A staff conference recorded by the unit that held it: one per conference obligation.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("obligation_id", sa.ForeignKey("obligations.id"), nullable=False, unique=True),
    sa.Column("plan_id", sa.String(64), nullable=False, index=True),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("unit_path", sa.JSON, nullable=False),
    sa.Column("receiving_unit", sa.String(32), nullable=False),
    sa.Column("held_on", sa.Date, nullable=False),
    sa.Column("participants", sa.Integer, nullable=True),
    sa.Column("on_time", sa.Boolean, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("recorded_by_unit", sa.String(32), nullable=False),
)

conference_minutes = sa.Table(
    "conference_minutes",
    metadata,
    # The minutes' files, in the attachment store (content-addressed, like reports' files).
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("conference_id", sa.ForeignKey("conferences.id"), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(128), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("stored_as", sa.String(512), nullable=False),
    sa.Column("attached_at", UTCDateTime, nullable=False),
)
