"""api tokens and audit log

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 04:29:11.328967
"""

from collections.abc import Sequence

from shared.migration_steps import create_api_tokens_and_audit_log, drop_api_tokens_and_audit_log


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_api_tokens_and_audit_log()


def downgrade() -> None:
    drop_api_tokens_and_audit_log()
