"""Stores as HQ sees them: created by the first batch from one of their devices, edited by an
HQ admin (name, IANA time zone, group), listed within what a caller may see."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import STORES
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.sql import upsert

DEFAULT_TIMEZONE = "UTC"


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone this hub knows (tzdata); ValueError otherwise."""
    if name not in _iana_names():
        raise ValueError(f"{name!r} is not an IANA time zone name (e.g. Europe/Paris, UTC)")
    return name


class StoreOut(BaseModel):
    """A store: its id (as the edges send it), display name, IANA time zone and group."""

    model_config = ConfigDict(extra="forbid")

    store_id: str
    name: str
    timezone: str = Field(description="IANA time zone; analytics days and weeks follow it")
    group: str | None = Field(description="region, banner or other grouping; null for none")
    created_at: datetime = Field(description="when the hub first heard of the store (UTC)")
    updated_at: datetime

    @property
    def zone(self) -> ZoneInfo:
        """The store's time zone."""
        return ZoneInfo(self.timezone)


class StoreUpdate(BaseModel):
    """What an HQ admin sets on a store (``PUT`` replaces all three)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(description="IANA time zone name, e.g. Europe/Paris")
    group: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        return check_timezone(value)


class StorePage(PageInfo):
    """Stores by ``store_id``."""

    items: list[StoreOut]


def ensure_store(conn: Connection, store_id: str, now: float) -> None:
    """Record ``store_id`` (name = id, time zone UTC) unless the hub knows it already; an
    existing store, edited or not, is left as it is. ``now`` is UNIX seconds."""
    row = {
        "store_id": store_id,
        "name": store_id,
        "timezone": DEFAULT_TIMEZONE,
        "group_name": None,
        "created_at": now,
        "updated_at": now,
    }
    stmt = upsert(conn, STORES).values(row)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=[STORES.c.store_id]))


def list_stores(
    conn: Connection, store_ids: frozenset[str] | None, limit: int, offset: int
) -> StorePage:
    """Stores among ``store_ids`` (None: all) ordered by id, ``limit`` from ``offset``."""
    c = STORES.c
    where = [] if store_ids is None else [c.store_id.in_(sorted(store_ids))]
    total = conn.execute(select(func.count()).select_from(STORES).where(*where)).scalar_one()
    rows = conn.execute(
        select(STORES).where(*where).order_by(c.store_id).limit(limit).offset(offset)
    ).mappings()
    return StorePage(items=[_out(r) for r in rows], **page_info(total, limit, offset).model_dump())


# built once: every analytics request looks its store up (building the statement cost more
# than running it)
_STORE_BY_ID = select(STORES).where(STORES.c.store_id == bindparam("store_id"))


def get_store(conn: Connection, store_id: str) -> StoreOut | None:
    """The store ``store_id``, or None when the hub does not know it."""
    row = conn.execute(_STORE_BY_ID, {"store_id": store_id}).mappings().first()
    return None if row is None else _out(row)


def put_store(
    conn: Connection, store_id: str, change: StoreUpdate, now: float
) -> tuple[StoreOut, bool]:
    """Set the store's name, time zone and group, creating it if new (an admin may register a
    store before its first device reports). Returns the store and whether it was created."""
    values = {"name": change.name, "timezone": change.timezone, "group_name": change.group}
    c = STORES.c
    done = conn.execute(
        update(STORES).where(c.store_id == store_id).values(**values, updated_at=now)
    )
    created = done.rowcount == 0
    if created:
        conn.execute(
            insert(STORES).values(store_id=store_id, created_at=now, updated_at=now, **values)
        )
    store = get_store(conn, store_id)
    assert store is not None
    return store, created


def visible_stores(conn: Connection, store_ids: frozenset[str] | None) -> list[StoreOut]:
    """Every store among ``store_ids`` (None: all), by id."""
    c = STORES.c
    where = [] if store_ids is None else [c.store_id.in_(sorted(store_ids))]
    rows = conn.execute(select(STORES).where(*where).order_by(c.store_id)).mappings()
    return [_out(r) for r in rows]


def _out(row: RowMapping) -> StoreOut:
    return StoreOut(
        store_id=row["store_id"],
        name=row["name"],
        timezone=row["timezone"],
        group=row["group_name"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
    )
