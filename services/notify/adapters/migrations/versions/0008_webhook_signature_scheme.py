"""webhook signature scheme

Webhooks are signed by the Standard Webhooks specification (webhook-id, webhook-timestamp,
webhook-signature) from now on. Subscriptions made before keep the earlier scheme
(X-QCDC-Signature), which their receivers verify, until moved over with
``PUT /subscriptions/{id}/signature`` and a ``whsec_`` secret: existing rows get "legacy",
new rows "standard".

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.add_column(
            sa.Column(
                "signature_scheme", sa.String(length=16), nullable=False, server_default="legacy"
            )
        )
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.alter_column("signature_scheme", server_default="standard")


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_column("signature_scheme")
