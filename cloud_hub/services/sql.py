"""The few SQL constructs that differ between SQLite and PostgreSQL, as one parameter each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import KeyedColumnElement

from cloud_hub.db import UnsupportedDatabaseError


def upsert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` with the dialect's ``ON CONFLICT`` clauses (both spell them the same)."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise UnsupportedDatabaseError(f"the hub does not run on {name}")


def greatest(conn: Connection, a: Any, b: Any) -> ColumnElement[Any]:
    """SQL for the larger of two values (``greatest`` on PostgreSQL, ``max`` on SQLite)."""
    return func.greatest(a, b) if conn.dialect.name == "postgresql" else func.max(a, b)


def lock_order(conn: Connection, columns: Sequence[KeyedColumnElement[Any]]) -> list[Any]:
    """ORDER BY terms that sort rows like Python sorts their key tuples.

    Rows are locked in this order, so every transaction locks shared rows in one global order
    and two ingest workers cannot deadlock. Keys are ASCII ids, so byte order (PostgreSQL's
    "C" collation, SQLite's BINARY) is Python's string order.
    """
    if conn.dialect.name != "postgresql":
        return list(columns)
    return [c.collate("C") if isinstance(c.type, String) else c for c in columns]
