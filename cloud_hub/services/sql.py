"""The few SQL constructs that differ between SQLite and PostgreSQL, as one parameter each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Column, ColumnElement, String, Table, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import KeyedColumnElement

from cloud_hub.db import UnsupportedDatabaseError, orjson_dumps


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


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    skip_conflicts_on: Sequence[Column[Any]] | None = None,
    returning: Sequence[Column[Any]] = (),
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (dicts with the same keys) in one statement; with ``skip_conflicts_on``
    rows whose key exists are skipped (``ON CONFLICT DO NOTHING``); the ``returning`` columns of
    the rows inserted.

    On PostgreSQL the rows go as one array per column through ``unnest``: a short statement
    that psycopg parses once. SQLAlchemy's multi-row ``VALUES`` would send one placeholder per
    value, and psycopg re-parses such a statement on every call (it does not cache long ones):
    that was two thirds of ingest time on PostgreSQL.
    """
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        stmt = upsert(conn, table)
        if skip_conflicts_on:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
        if returning:
            return [tuple(r) for r in conn.execute(stmt.returning(*returning), list(rows))]
        conn.execute(stmt, list(rows))
        return []
    prep = conn.dialect.identifier_preparer
    names = list(rows[0])
    arrays: dict[str, list[Any]] = {}
    casts = []
    for i, name in enumerate(names):
        col = table.c[name]
        values = [r[name] for r in rows]
        if isinstance(col.type, JSON):
            values = [None if v is None else orjson_dumps(v) for v in values]
        arrays[f"a{i}"] = values
        casts.append(f"CAST(:a{i} AS {col.type.compile(dialect=conn.dialect)}[])")
    sql = (
        f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)}) "
        f"SELECT * FROM unnest({', '.join(casts)})"
    )
    if skip_conflicts_on:
        sql += (
            f" ON CONFLICT ({', '.join(prep.quote(c.name) for c in skip_conflicts_on)}) DO NOTHING"
        )
    if returning:
        sql += f" RETURNING {', '.join(prep.quote(c.name) for c in returning)}"
        return [tuple(r) for r in conn.execute(text(sql), arrays)]
    conn.execute(text(sql), arrays)
    return []
