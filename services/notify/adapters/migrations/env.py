"""Alembic environment of the notify service (see shared.db.run_migrations_in_env)."""

from services.notify.adapters.db import metadata
from shared.db import run_migrations_in_env

run_migrations_in_env(metadata)
