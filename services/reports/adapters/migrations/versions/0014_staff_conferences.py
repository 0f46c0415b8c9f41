"""staff conferences and their minutes

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 08:20:00.000000

A staff conference (hội nghị cán bộ, công chức, viên chức và người lao động) recorded by the
unit that held it, against its conference obligation (a row of ``obligations``, schedule key
``staff_conference``), and the files of its minutes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db


revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'conferences',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('obligation_id', sa.String(length=64), nullable=False),
        sa.Column('plan_id', sa.String(length=64), nullable=False),
        sa.Column('unit_code', sa.String(length=32), nullable=False),
        sa.Column('unit_path', sa.JSON(), nullable=False),
        sa.Column('receiving_unit', sa.String(length=32), nullable=False),
        sa.Column('held_on', sa.Date(), nullable=False),
        sa.Column('participants', sa.Integer(), nullable=True),
        sa.Column('on_time', sa.Boolean(), nullable=False),
        sa.Column('recorded_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('recorded_by_unit', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['obligation_id'], ['obligations.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('obligation_id'),
    )
    op.create_index(op.f('ix_conferences_plan_id'), 'conferences', ['plan_id'], unique=False)
    op.create_index(op.f('ix_conferences_unit_code'), 'conferences', ['unit_code'], unique=False)
    op.create_table(
        'conference_minutes',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('conference_id', sa.String(length=64), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=128), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('stored_as', sa.String(length=512), nullable=False),
        sa.Column('attached_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['conference_id'], ['conferences.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        op.f('ix_conference_minutes_conference_id'),
        'conference_minutes',
        ['conference_id'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_conference_minutes_conference_id'), table_name='conference_minutes')
    op.drop_table('conference_minutes')
    op.drop_index(op.f('ix_conferences_unit_code'), table_name='conferences')
    op.drop_index(op.f('ix_conferences_plan_id'), table_name='conferences')
    op.drop_table('conferences')
