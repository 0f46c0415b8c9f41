"""inspections and surveys, their findings, required actions and follow-up history

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 08:00:00.000000

An inspection or survey (kiểm tra, khảo sát) scheduled by an inspecting unit for inspected
units; the findings recorded at each; the actions they require, each with its follow-up
obligation (a row of ``obligations``, schedule key ``inspection-<action id>``); and every
follow-up report, closing and return of an action.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db


revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'inspections',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('topic', sa.Text(), nullable=False),
        sa.Column('inspecting_unit', sa.String(length=32), nullable=False),
        sa.Column('inspecting_path', sa.JSON(), nullable=False),
        sa.Column('plan_id', sa.String(length=64), nullable=True),
        sa.Column('planned_start', sa.Date(), nullable=False),
        sa.Column('planned_end', sa.Date(), nullable=False),
        sa.Column('registered_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        op.f('ix_inspections_inspecting_unit'), 'inspections', ['inspecting_unit'], unique=False
    )
    op.create_index(
        op.f('ix_inspections_planned_start'), 'inspections', ['planned_start'], unique=False
    )
    op.create_table(
        'inspected_units',
        sa.Column('inspection_id', sa.String(length=64), nullable=False),
        sa.Column('unit_code', sa.String(length=32), nullable=False),
        sa.Column('unit_path', sa.JSON(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('conducted_on', sa.Date(), nullable=True),
        sa.Column('conclusion', sa.Text(), server_default='', nullable=False),
        sa.Column('findings_recorded_at', shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id']),
        sa.PrimaryKeyConstraint('inspection_id', 'unit_code'),
    )
    op.create_index(
        op.f('ix_inspected_units_unit_code'), 'inspected_units', ['unit_code'], unique=False
    )
    op.create_table(
        'inspection_findings',
        sa.Column('inspection_id', sa.String(length=64), nullable=False),
        sa.Column('unit_code', sa.String(length=32), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id']),
        sa.PrimaryKeyConstraint('inspection_id', 'unit_code', 'number'),
    )
    op.create_table(
        'inspection_actions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('inspection_id', sa.String(length=64), nullable=False),
        sa.Column('unit_code', sa.String(length=32), nullable=False),
        sa.Column('unit_path', sa.JSON(), nullable=False),
        sa.Column('finding_number', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('conducted_on', sa.Date(), nullable=False),
        sa.Column('due_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('done_reported_at', shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('closed_at', shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('closed_on_time', sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        op.f('ix_inspection_actions_inspection_id'),
        'inspection_actions',
        ['inspection_id'],
        unique=False,
    )
    op.create_index(
        op.f('ix_inspection_actions_unit_code'), 'inspection_actions', ['unit_code'], unique=False
    )
    op.create_table(
        'inspection_action_history',
        sa.Column('action_id', sa.String(length=64), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('by_unit', sa.String(length=32), nullable=False),
        sa.Column('done', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['action_id'], ['inspection_actions.id']),
        sa.PrimaryKeyConstraint('action_id', 'number'),
    )


def downgrade() -> None:
    op.drop_table('inspection_action_history')
    op.drop_index(op.f('ix_inspection_actions_unit_code'), table_name='inspection_actions')
    op.drop_index(op.f('ix_inspection_actions_inspection_id'), table_name='inspection_actions')
    op.drop_table('inspection_actions')
    op.drop_table('inspection_findings')
    op.drop_index(op.f('ix_inspected_units_unit_code'), table_name='inspected_units')
    op.drop_table('inspected_units')
    op.drop_index(op.f('ix_inspections_planned_start'), table_name='inspections')
    op.drop_index(op.f('ix_inspections_inspecting_unit'), table_name='inspections')
    op.drop_table('inspections')
