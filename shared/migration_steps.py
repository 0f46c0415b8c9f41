"""Migration steps shared by every service with an HTTP API: its API tokens and audit log
(shared.db.security_tables). Frozen as first released: a later change to those tables is a
new function here and a new revision in each service, never an edit of these."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.db


def create_api_tokens_and_audit_log() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("unit_path", sa.JSON(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("expires_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=256), server_default="", nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("correlation_id", sa.String(length=128), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)


def drop_api_tokens_and_audit_log() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
    op.drop_table("api_tokens")
