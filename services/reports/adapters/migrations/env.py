"""Alembic environment of the reports service (see shared.db.run_migrations_in_env)."""

from services.reports.adapters.db import metadata
from shared.db import run_migrations_in_env

run_migrations_in_env(metadata)
