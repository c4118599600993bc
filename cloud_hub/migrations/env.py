"""Alembic environment: the hub's tables (cloud_hub.models) on DATABASE_URL.

The URL comes from the Alembic config when the caller set one (``cloud_hub.migrate`` does),
else from ``HubSettings`` (env ``DATABASE_URL``), so ``alembic -c cloud_hub/alembic.ini
upgrade head`` and ``retail-hub migrate`` migrate the same database.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import cloud_hub.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from cloud_hub.core.config import HubSettings
from cloud_hub.db import create_hub_engine

target_metadata = SQLModel.metadata


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    return url if url else HubSettings().database_url


def run_migrations_offline() -> None:
    """Emit SQL for ``alembic upgrade --sql`` without a database."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the database at the configured URL in one transaction."""
    engine = create_hub_engine(_url(), pool_size=1)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,  # SQLite alters tables by copying them
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
