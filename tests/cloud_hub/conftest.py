"""Hub test fixtures: migrated databases (SQLite file and PostgreSQL), as production has them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite file migrated to head."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    return url


@pytest.fixture()
def pg_hub_url(pg_url: str) -> str:
    """URL of a fresh PostgreSQL database migrated to head."""
    upgrade_database(pg_url)
    return pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_db(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on a migrated hub database, once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_hub_url"
    engine = create_hub_engine(request.getfixturevalue(name))
    yield engine
    engine.dispose()
