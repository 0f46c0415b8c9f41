"""recommendations after supervision and their history

Revision ID: 0012
Revises: 0009
Create Date: 2026-11-29 06:00:00.000000

A recommendation after supervision (kiến nghị sau giám sát) registered for a unit, with its
answer obligation (a row of ``obligations``, schedule key ``recommendation-<id>``) and its
history: the written answer and every implementation report.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db


revision: str = '0012'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'recommendations',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('source_organisation', sa.Text(), nullable=False),
        sa.Column('topic', sa.Text(), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('addressed_unit', sa.String(length=32), nullable=False),
        sa.Column('addressed_path', sa.JSON(), nullable=False),
        sa.Column('registered_by_unit', sa.String(length=32), nullable=False),
        sa.Column('received_on', sa.Date(), nullable=False),
        sa.Column('registered_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('answer_due_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('answered_at', shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('answered_on_time', sa.Boolean(), nullable=True),
        sa.Column('closed_at', shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        op.f('ix_recommendations_addressed_unit'),
        'recommendations',
        ['addressed_unit'],
        unique=False,
    )
    op.create_table(
        'recommendation_history',
        sa.Column('recommendation_id', sa.String(length=64), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('by_unit', sa.String(length=32), nullable=False),
        sa.Column('completed', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['recommendation_id'], ['recommendations.id']),
        sa.PrimaryKeyConstraint('recommendation_id', 'number'),
    )


def downgrade() -> None:
    op.drop_table('recommendation_history')
    op.drop_index(op.f('ix_recommendations_addressed_unit'), table_name='recommendations')
    op.drop_table('recommendations')
