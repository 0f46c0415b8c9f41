"""Tables of the notify service. Their repositories: :mod:`.contacts`, :mod:`.known_plans`,
:mod:`.subscriptions`, :mod:`.deliveries` (and :mod:`.overdue`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.db import UTCDateTime, messaging_tables, security_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)
security = security_tables(metadata)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("unit_code", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit_path", sa.JSON, nullable=False),
    sa.Column("focal_email", sa.String(256), nullable=True),
    sa.Column("head_email", sa.String(256), nullable=True),
    sa.Column("webhook_url", sa.String(2048), nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False, server_default=""),
    sa.Column("tags", sa.JSON, nullable=True),
    sa.Column("parent_code", sa.String(32), nullable=True),
    sa.Column("reports_to_code", sa.String(32), nullable=True),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False, index=True),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(2048), nullable=False),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("unit_path", sa.JSON, nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempts_before_redelivery", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("leased_until", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("subscription_id", sa.String(64), nullable=True),
    sa.Column("destination", sa.String(255), nullable=False, server_default=""),
    sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("digested_in", sa.String(64), nullable=True),
    # The worker's look for due deliveries, one channel at a time (migration 0006).
    sa.Index("ix_deliveries_due_by_channel", "status", "channel", "next_attempt_at"),
)

overdue_reports = sa.Table(
    "overdue_reports",
    metadata,
    # Reports still missing after their last urging: the receiving unit's daily digest
    # lists them until submitted, waived (unit removed or dissolved), the plan closed or
    # the deadline moved (migration 0007; repository in :mod:`overdue`).
    sa.Column("obligation_id", sa.String(64), primary_key=True),
    sa.Column("plan_id", sa.String(64), nullable=False, index=True),
    sa.Column("schedule_key", sa.String(64), nullable=False),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("receiving_unit", sa.String(32), nullable=False, index=True),
    sa.Column("report_kind", sa.String(16), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("plan_doc_number", sa.String(64), nullable=False, server_default=""),
    sa.Column("urgings", sa.Integer, nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
)

deadline_mail = sa.Table(
    "deadline_mail",
    metadata,
    # Which obligation each reminder or urging e-mail is about: one not yet sent when the
    # obligation stops awaiting a report is withdrawn (migration 0007; :mod:`overdue`).
    sa.Column("delivery_key", sa.String(64), primary_key=True),
    sa.Column("obligation_id", sa.String(64), nullable=False, index=True),
    sa.Column("plan_id", sa.String(64), nullable=False, index=True),
    sa.Column("schedule_key", sa.String(64), nullable=False),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("include_subtree", sa.Boolean, nullable=False),
    sa.Column("event_types", sa.JSON, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(256), nullable=True),
    sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Rows older than migration 0008 say "legacy"; new ones "standard" (SignatureScheme).
    sa.Column("signature_scheme", sa.String(16), nullable=False, server_default="standard"),
)

# PlanAmended carries only what changed; to tell every assignee that deadlines moved, notify
# keeps each plan's number, title and current assignees from PlanIssued on.
known_plans = sa.Table(
    "known_plans",
    metadata,
    sa.Column("plan_id", sa.String(64), primary_key=True),
    sa.Column("doc_number", sa.String(128), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("issuing_unit", sa.String(32), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

plan_assignees = sa.Table(
    "plan_assignees",
    metadata,
    sa.Column("plan_id", sa.String(64), primary_key=True),
    sa.Column("unit_code", sa.String(32), primary_key=True),
)


def json_text_contains(column: Any, value: str) -> Any:
    """``column`` (a JSON list of strings) mentions ``value``, as text: portable across
    SQLite and PostgreSQL, and only a pre-filter (callers test the list exactly)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.cast(column, sa.Text).like(f'%"{escaped}"%', escape="\\")
