"""due deliveries by channel

The delivery worker looks for due e-mails and due webhooks separately (all e-mail shares
one limit, the SMTP relay's): with the channel in the index, each look is a range scan
that stops at the batch size, however many deliveries wait.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 02:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_due")
        batch_op.create_index(
            "ix_deliveries_due_by_channel", ["status", "channel", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_due_by_channel")
        batch_op.create_index("ix_deliveries_due", ["status", "next_attempt_at"], unique=False)
