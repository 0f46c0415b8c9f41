"""incremental deadline clock

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:00:00.000000

Each obligation carries the instant its next deadline step is due (``next_step_at``,
indexed where set), and the clock reads only the obligations whose instant has come.
Existing rows are not backfilled here: the column starts NULL and ``deadline_clock_rules``
empty, and the service's first clock pass, finding no schedule recorded, marks every owned
obligation awaiting a report for reconsideration and computes each one's next step as it
decides (the schedule depends on settings a migration does not see).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SET = sa.text('next_step_at IS NOT NULL')


def upgrade() -> None:
    op.create_table(
        'deadline_clock_rules',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('fingerprint', sa.String(length=512), nullable=False),
        sa.Column('adopted_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('next_step_at', shared.db.UTCDateTime(timezone=True), nullable=True)
        )
        # The horizon scan it served is gone; one index fewer for every status change.
        batch_op.drop_index('ix_obligations_clock')
        batch_op.create_index(
            'ix_obligations_next_step',
            ['next_step_at'],
            unique=False,
            postgresql_where=SET,
            sqlite_where=SET,
        )


def downgrade() -> None:
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_index('ix_obligations_next_step', postgresql_where=SET, sqlite_where=SET)
        batch_op.create_index('ix_obligations_clock', ['owned', 'status', 'due_at'], unique=False)
        batch_op.drop_column('next_step_at')
    op.drop_table('deadline_clock_rules')
