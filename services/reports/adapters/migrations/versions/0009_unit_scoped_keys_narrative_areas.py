"""idempotency keys scoped to the submitting unit; content areas of each obligation

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 05:00:00.000000

An Idempotency-Key belongs to the unit that submitted with it (``idempotency_keys``,
primary key unit × key): the keys already used move there with their obligation's unit,
and ``reports.idempotency_key`` is left empty (unused, kept for a downgrade). Obligations
record the content area codes their narrative may speak to (``content_areas``); rows from
before stay NULL, which checks nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'idempotency_keys',
        sa.Column('unit_code', sa.String(length=32), nullable=False),
        sa.Column('idempotency_key', sa.String(length=128), nullable=False),
        sa.Column('report_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['report_id'], ['reports.id']),
        sa.PrimaryKeyConstraint('unit_code', 'idempotency_key'),
    )
    op.execute(
        'INSERT INTO idempotency_keys (unit_code, idempotency_key, report_id, created_at) '
        'SELECT obligations.unit_code, reports.idempotency_key, reports.id, '
        'reports.submitted_at FROM reports JOIN obligations '
        'ON obligations.id = reports.obligation_id WHERE reports.idempotency_key IS NOT NULL'
    )
    op.execute('UPDATE reports SET idempotency_key = NULL')
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_areas', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_column('content_areas')
    # Keys of one unit only can go back to the column that was unique across units.
    op.execute(
        'UPDATE reports SET idempotency_key = (SELECT min(k.idempotency_key) '
        'FROM idempotency_keys k WHERE k.report_id = reports.id '
        'AND (SELECT count(*) FROM idempotency_keys o '
        'WHERE o.idempotency_key = k.idempotency_key) = 1)'
    )
    op.drop_table('idempotency_keys')
