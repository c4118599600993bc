"""API keys at rest: create (the key is returned once, only its hash is kept), revoke, list,
and find the caller a presented key belongs to. ``retail-hub admin`` is a thin shell over these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from cloud_hub.core.security import (
    SHOWN_PREFIX_CHARS,
    Caller,
    Role,
    generate_api_key,
    hash_api_key,
)
from cloud_hub.models import API_KEYS

STORE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # as common.telemetry's ids
MAX_NAME_CHARS = 200


class ApiKeyError(ValueError):
    """A key request that cannot be granted as asked (the message says what to change)."""


class ApiKeyInfo(BaseModel):
    """A stored key as ``list-keys`` shows it (never the key itself). Times: UNIX s UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    name: str
    role: Role
    stores: list[str] | None  # None: every store
    key_prefix: str
    created_at: float
    revoked_at: float | None


def check_scope(role: Role, store_ids: Sequence[str], all_stores: bool) -> None:
    """Raise ApiKeyError when ``store_ids`` / ``all_stores`` do not go with ``role``."""
    for s in store_ids:
        if not re.match(STORE_ID_PATTERN, s):
            raise ApiKeyError(f"store id {s!r} is not a valid id (letters, digits, - _ .)")
    if role is Role.HQ_ADMIN and (store_ids or all_stores):
        raise ApiKeyError("hq_admin keys see every store: give no --store or --all-stores")
    if role is Role.STORE_MANAGER and (all_stores or not store_ids):
        raise ApiKeyError("store_manager keys need at least one --store ID (and no --all-stores)")
    if role is Role.INTEGRATOR and bool(store_ids) == all_stores:
        raise ApiKeyError("integrator keys need either --store ID ... or --all-stores")


def create_api_key(
    conn: Connection,
    role: Role,
    store_ids: Sequence[str] = (),
    *,
    all_stores: bool = False,
    name: str | None = None,
    now: float,
) -> tuple[str, ApiKeyInfo]:
    """Create a key; returns the key (the only time it exists outside the caller's hands) and
    what is stored about it. ``now`` is UNIX seconds.

    Raises:
        ApiKeyError: the role and the stores do not go together, or an id or name is invalid.
    """
    check_scope(role, store_ids, all_stores)
    stores = sorted(set(store_ids))
    label = name if name is not None else f"{role.value} {','.join(stores) or 'all stores'}"
    if not label.strip() or len(label) > MAX_NAME_CHARS:
        raise ApiKeyError(f"--name must be 1 to {MAX_NAME_CHARS} characters")
    key = generate_api_key()
    row = {
        "name": label,
        "role": role.value,
        "key_hash": hash_api_key(key),
        "key_prefix": key[:SHOWN_PREFIX_CHARS],
        "all_stores": role is Role.HQ_ADMIN or all_stores,
        "store_ids": [] if role is Role.HQ_ADMIN or all_stores else stores,
        "created_at": now,
        "revoked_at": None,
    }
    new_id = conn.execute(insert(API_KEYS).values(row).returning(API_KEYS.c.id)).scalar_one()
    return key, _info({**row, "id": new_id})


def revoke_api_key(conn: Connection, key_id: int, *, now: float) -> ApiKeyInfo:
    """Revoke key ``key_id`` from ``now`` (UNIX s) on; revoking a revoked key keeps its first
    revocation time.

    Raises:
        ApiKeyError: no key has this id.
    """
    c = API_KEYS.c
    conn.execute(
        update(API_KEYS).where(c.id == key_id, c.revoked_at.is_(None)).values(revoked_at=now)
    )
    row = conn.execute(select(API_KEYS).where(c.id == key_id)).mappings().first()
    if row is None:
        raise ApiKeyError(f"no API key has id {key_id} (see `retail-hub admin list-keys`)")
    return _info(dict(row))


def list_api_keys(conn: Connection) -> list[ApiKeyInfo]:
    """Every key, revoked ones included, by id."""
    rows = conn.execute(select(API_KEYS).order_by(API_KEYS.c.id)).mappings().all()
    return [_info(dict(r)) for r in rows]


def caller_for_key(conn: Connection, key: str) -> Caller | None:
    """The caller holding ``key``; None when the key is unknown or revoked."""
    c = API_KEYS.c
    row = conn.execute(select(API_KEYS).where(c.key_hash == hash_api_key(key))).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    return Caller(
        key_id=int(row["id"]),
        name=str(row["name"]),
        role=Role(row["role"]),
        store_ids=None if row["all_stores"] else frozenset(row["store_ids"]),
    )


def _info(row: Mapping[str, Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        stores=None if row["all_stores"] else list(row["store_ids"]),
        key_prefix=row["key_prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
