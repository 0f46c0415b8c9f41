"""Alembic environment of the plans service (see shared.db.run_migrations_in_env)."""

from services.plans.adapters.db import metadata
from shared.db import run_migrations_in_env

run_migrations_in_env(metadata)
