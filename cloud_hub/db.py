"""Database engines for the hub: SQLite (default) or PostgreSQL through psycopg 3.

SQLite runs in WAL mode with ``synchronous=FULL`` (a batch acknowledged to the edge survives a
power cut), a busy timeout so concurrent writers wait instead of failing, and foreign keys on.
Every transaction on SQLite begins ``IMMEDIATE``: it takes the write lock up front, so two
ingesting connections queue behind each other instead of deadlocking when both upgrade a read
lock. On PostgreSQL the ingest service locks the rows it merges (``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5


class UnsupportedDatabaseError(ValueError):
    """The database URL names a backend the hub does not run on."""


def create_hub_engine(database_url: str, *, pool_size: int = 5) -> Engine:
    """An engine for ``database_url`` (``sqlite:///...`` or ``postgresql+psycopg://...``).

    Raises:
        UnsupportedDatabaseError: any other backend or driver, or an in-memory SQLite database
            (the hub acknowledges only what it has stored durably).
    """
    if database_url.startswith("sqlite"):
        if make_url(database_url).database in (None, "", ":memory:"):
            raise UnsupportedDatabaseError(
                "in-memory SQLite would lose acknowledged batches: give a file, "
                "sqlite:///path/to/hub.db"
            )
        engine = create_engine(database_url, pool_size=pool_size, max_overflow=10, **_json_codec())
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if database_url.startswith("postgresql+psycopg://"):
        return create_engine(
            database_url,
            pool_size=pool_size,
            max_overflow=10,
            pool_pre_ping=True,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
            **_json_codec(),
        )
    raise UnsupportedDatabaseError(
        f"database URL scheme {database_url.split(':', 1)[0]!r}: the hub runs on SQLite "
        "(sqlite:///hub.db) or PostgreSQL via psycopg 3 (postgresql+psycopg://user@host/db)"
    )


def orjson_dumps(value: object) -> str:
    """JSON text of ``value``."""
    return orjson.dumps(value).decode()


def _json_codec() -> dict[str, Any]:
    """orjson for the JSON columns (heatmap grids, histograms, event payloads): several times
    faster than the standard library on ingest. Bodies holding NaN or Infinity never get here
    (the ingest dead-letters them). Module-level functions, not closures: psycopg keeps one
    adapter per function and warns that a new closure per engine would leak them."""
    return {"json_serializer": orjson_dumps, "json_deserializer": orjson.loads}


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only. On PostgreSQL it runs in autocommit: each statement sees
    what was committed when it started, as READ COMMITTED gives a statement inside a
    transaction, without the ``BEGIN`` and ``ROLLBACK`` round trips. On SQLite it is a plain
    connection (its transactions begin ``IMMEDIATE``, see ``_sqlite_begin_immediate``)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def ping(engine: Engine) -> None:
    """Run ``SELECT 1``; raises ``sqlalchemy.exc.OperationalError`` when unreachable."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Take BEGIN away from the sqlite3 module (legacy transaction control); _begin emits it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
