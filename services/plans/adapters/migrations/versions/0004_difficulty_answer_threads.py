"""difficulty answers as a thread; the unit a difficulty is raised to

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:00:00.000000

Every answer to a difficulty is kept (``difficulty_answers``, numbered 1, 2, …); an answer
already given becomes answer 1. ``difficulties.raised_to`` names the unit that answers;
rows from before stay NULL and the plan's rule decides for them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('difficulties', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raised_to', sa.String(length=32), nullable=True))
    op.create_table(
        'difficulty_answers',
        sa.Column('difficulty_id', sa.String(length=64), nullable=False),
        sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('answered_by', sa.String(length=32), nullable=False),
        sa.Column('answered_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['difficulty_id'], ['difficulties.id']),
        sa.PrimaryKeyConstraint('difficulty_id', 'number'),
    )
    op.execute(
        'INSERT INTO difficulty_answers (difficulty_id, number, answer, answered_by, answered_at) '
        'SELECT id, 1, answer, answered_by, answered_at FROM difficulties '
        'WHERE answer IS NOT NULL AND answered_by IS NOT NULL AND answered_at IS NOT NULL'
    )


def downgrade() -> None:
    op.drop_table('difficulty_answers')
    with op.batch_alter_table('difficulties', schema=None) as batch_op:
        batch_op.drop_column('raised_to')
