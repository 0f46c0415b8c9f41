"""deadline changes and closed plans

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 05:30:00.000000

``deadline_changes`` keeps every move of an obligation's deadline with the reports whose
verdict (on time or late) it changed; ``obligations.plan_closed`` takes the obligations of
a closed plan off the deadline clock.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'deadline_changes',
        sa.Column('obligation_id', sa.String(length=64), nullable=False),
        sa.Column('event_id', sa.String(length=64), nullable=False),
        sa.Column('changed_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('old_due_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('new_due_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('cause', sa.Text(), server_default='', nullable=False),
        sa.Column('reclassified', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['obligation_id'], ['obligations.id']),
        sa.PrimaryKeyConstraint('obligation_id', 'event_id'),
    )
    # A constant default needs no copy of the table on SQLite: recreating it would drop
    # the table that submitted reports refer to, which their foreign keys refuse.
    with op.batch_alter_table('obligations', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('plan_closed', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_column('plan_closed')
    op.drop_table('deadline_changes')
