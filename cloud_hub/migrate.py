"""Schema migrations as library calls (``retail-hub migrate`` is a thin shell over these).

The hub never creates tables implicitly: production and tests both run Alembic to ``head``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for the hub's migrations on ``database_url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Migrate the database at ``database_url`` to ``revision`` (default: the newest).

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    log.info("migrating the hub database to %s", revision)
    command.upgrade(alembic_config(database_url), revision)


class SchemaOutOfDateError(RuntimeError):
    """The database's schema is not the one this hub's code expects."""


def check_schema_current(engine: Engine) -> None:
    """Raise unless the database at ``engine`` is migrated to the newest revision.

    Raises:
        SchemaOutOfDateError: behind (or ahead of) this code; the message says what to run.
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise SchemaOutOfDateError(
            f"the hub database is at schema revision {current or 'none (empty)'}, this hub "
            f"needs {head}: run `retail-hub migrate` with the same DATABASE_URL"
        )
