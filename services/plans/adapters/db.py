"""Tables of the plans service (repositories are in :mod:`repositories`)."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import UTCDateTime, messaging_tables, security_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)
security = security_tables(metadata)

units = sa.Table(
    "units",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("parent_code", sa.String(32), sa.ForeignKey("units.code"), nullable=True),
    sa.Column("reports_to_code", sa.String(32), sa.ForeignKey("units.code"), nullable=True),
    sa.Column("path", sa.JSON, nullable=False),
    sa.Column("contacts", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("position", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("established_on", sa.Date, nullable=True),
    sa.Column("dissolved_on", sa.Date, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=True),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("doc_number", sa.String(64), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("issuing_unit", sa.String(32), sa.ForeignKey("units.code"), nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("place", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("content_areas", sa.JSON, nullable=False),
    sa.Column("assignee_rule", sa.JSON, nullable=False),
    sa.Column("schedule", sa.JSON, nullable=False),
    sa.Column("assignees", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("details", sa.JSON, nullable=False, server_default="{}"),
    sa.Column(
        "parent_plan_id", sa.String(64), sa.ForeignKey("plans.id"), nullable=True, index=True
    ),
    sa.Column("amendments", sa.Integer, nullable=False, server_default="0"),
)

plan_history = sa.Table(
    "plan_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan_id", sa.String(64), sa.ForeignKey("plans.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
)

sub_plans = sa.Table(
    "sub_plans",
    metadata,
    sa.Column("parent_plan_id", sa.String(64), sa.ForeignKey("plans.id"), primary_key=True),
    sa.Column("unit_code", sa.String(32), sa.ForeignKey("units.code"), primary_key=True),
    sa.Column("plan_id", sa.String(64), nullable=True),
    sa.Column("doc_number", sa.String(64), nullable=False),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("registered_at", UTCDateTime, nullable=False),
)

report_requests = sa.Table(
    "report_requests",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("requesting_unit", sa.String(32), sa.ForeignKey("units.code"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("units", sa.JSON, nullable=False),
    sa.Column("content_areas", sa.JSON, nullable=False),
    sa.Column("indicators", sa.JSON, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("due_before", sa.Date, nullable=False),
    sa.Column("plan_id", sa.String(64), sa.ForeignKey("plans.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

difficulties = sa.Table(
    "difficulties",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("plan_id", sa.String(64), sa.ForeignKey("plans.id"), nullable=False, index=True),
    sa.Column("unit_code", sa.String(32), sa.ForeignKey("units.code"), nullable=False),
    sa.Column("content_area", sa.String(16), nullable=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    # The latest answer (every answer is in difficulty_answers).
    sa.Column("answer", sa.Text, nullable=True),
    sa.Column("answered_by", sa.String(32), nullable=True),
    sa.Column("answered_at", UTCDateTime, nullable=True),
    # Who answers it; NULL for difficulties raised before 0004 (the plan's rule decides).
    sa.Column("raised_to", sa.String(32), nullable=True),
)

difficulty_answers = sa.Table(
    "difficulty_answers",
    metadata,
    sa.Column("difficulty_id", sa.ForeignKey("difficulties.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("answered_by", sa.String(32), nullable=False),
    sa.Column("answered_at", UTCDateTime, nullable=False),
)
