"""overdue reports listed in the daily digest; deadline mail withdrawn

A report still missing after its last urging is no longer mailed about on its own: the
receiving unit's daily digest lists it until it is submitted, waived, the plan closed or
the deadline moved. ``deadline_mail`` names the obligation of each reminder or urging
e-mail, so that one not yet sent is withdrawn when its obligation stops awaiting a report.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "overdue_reports",
        sa.Column("obligation_id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("schedule_key", sa.String(length=64), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("receiving_unit", sa.String(length=32), nullable=False),
        sa.Column("report_kind", sa.String(length=16), nullable=False),
        sa.Column("due_at", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("plan_doc_number", sa.String(length=64), server_default="", nullable=False),
        sa.Column("urgings", sa.Integer(), nullable=False),
        sa.Column("since", shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("obligation_id"),
    )
    with op.batch_alter_table("overdue_reports") as batch_op:
        batch_op.create_index("ix_overdue_reports_plan_id", ["plan_id"], unique=False)
        batch_op.create_index("ix_overdue_reports_unit_code", ["unit_code"], unique=False)
        batch_op.create_index(
            "ix_overdue_reports_receiving_unit", ["receiving_unit"], unique=False
        )


    op.create_table(
        "deadline_mail",
        sa.Column("delivery_key", sa.String(length=64), nullable=False),
        sa.Column("obligation_id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("schedule_key", sa.String(length=64), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("delivery_key"),
    )
    with op.batch_alter_table("deadline_mail") as batch_op:
        batch_op.create_index("ix_deadline_mail_obligation_id", ["obligation_id"], unique=False)
        batch_op.create_index("ix_deadline_mail_plan_id", ["plan_id"], unique=False)
        batch_op.create_index("ix_deadline_mail_unit_code", ["unit_code"], unique=False)


def downgrade() -> None:
    op.drop_table("deadline_mail")
    op.drop_table("overdue_reports")
