"""A small table for the tests of statements handed to the driver directly (shared.direct),
on SQLite alone and on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from shared.db import UTCDateTime

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(32), nullable=False, unique=True),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)
AT = datetime(2026, 11, 29, 14, 0, tzinfo=UTC)
