"""The analytics routes' reads: the API key is checked in the same thread-pool call and on the
same database connection as the read it authorises.

Per request, ``auth.current_caller`` costs a thread-pool hop and a connection of its own (pool
check-out and ping, ``BEGIN``, the key lookup, ``ROLLBACK``) before the route takes a second
hop and connection for its data. For the analytics series, whose own SQL takes about a
millisecond, that was most of the request (BENCHMARKS.md, "Hub analytics API"). Here:

* A key this process has already seen valid (``KnownKeys``: hash -> caller, bounded) passes
  the dependency without a database call; the read re-checks it (one indexed lookup) before
  anything else on its own connection, so a revoked key is refused (401) by the same request
  that first presents it after the revocation, exactly as before. A key's role and stores never
  change (only ``revoked_at`` does), so the cached caller is the one the lookup would return.
* An unseen key is looked up in the dependency as ``current_caller`` does, so answers and their
  order are unchanged: 401 (no, unknown or revoked key) before 403 (role) before 422
  (parameters) before 404 (store). The one difference: a key revoked while this process holds
  it, sent with invalid parameters, gets the 422 before the 401 of its next valid request.
* The read runs in autocommit on PostgreSQL (``db.read_connection``): each statement sees the
  data committed when it starts, as under READ COMMITTED before, without the ``BEGIN`` and
  ``ROLLBACK`` round trips.

JWT callers are verified in the dependency (no database call) as before.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import Engine, bindparam, select
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import bearer, current_caller
from cloud_hub.api.deps import EngineDep
from cloud_hub.core.security import Caller, Permission, hash_api_key
from cloud_hub.db import read_connection
from cloud_hub.models import API_KEYS
from cloud_hub.services.jwt_auth import looks_like_jwt

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_KNOWN_KEYS = 10_000  # least recently used keys are forgotten beyond this (looked up again)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class KnownKeys:
    """API keys this process has found valid: sha256 hex -> caller, least recently used first
    out. Thread-safe (the thread pool forgets revoked keys)."""

    def __init__(self, max_keys: int = MAX_KNOWN_KEYS) -> None:
        self.max_keys = max_keys
        self._callers: OrderedDict[str, Caller] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Caller | None:
        """The caller of a key seen valid before, or None."""
        with self._lock:
            caller = self._callers.get(key_hash)
            if caller is not None:
                self._callers.move_to_end(key_hash)
            return caller

    def put(self, key_hash: str, caller: Caller) -> None:
        """Remember a key just found valid."""
        with self._lock:
            self._callers[key_hash] = caller
            self._callers.move_to_end(key_hash)
            while len(self._callers) > self.max_keys:
                self._callers.popitem(last=False)

    def forget(self, key_hash: str) -> None:
        """Drop a key found revoked."""
        with self._lock:
            self._callers.pop(key_hash, None)


@dataclass(frozen=True)
class ReadCaller:
    """The caller of an analytics read, and the hash of its API key when the read must still
    confirm the key is unrevoked (it came from ``KnownKeys``)."""

    caller: Caller
    recheck: str | None
    known: KnownKeys


async def reading_caller(
    request: Request,
    engine: EngineDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ReadCaller:
    """The caller, for a read that re-checks a known key itself (see the module docstring);
    401 without a valid credential."""
    known: KnownKeys = request.app.state.known_keys
    if credentials is not None and not (
        request.app.state.jwt is not None and looks_like_jwt(credentials.credentials)
    ):
        key_hash = hash_api_key(credentials.credentials)
        caller = known.get(key_hash)
        if caller is not None:
            return ReadCaller(caller, key_hash, known)
        caller = await current_caller(request, engine, credentials)
        known.put(key_hash, caller)
        return ReadCaller(caller, None, known)
    return ReadCaller(await current_caller(request, engine, credentials), None, known)


def require_read(permission: Permission) -> Callable[..., Awaitable[ReadCaller]]:
    """A dependency: the reading caller, if their role grants ``permission`` (403 otherwise)."""

    async def permitted(reader: Annotated[ReadCaller, Depends(reading_caller)]) -> ReadCaller:
        if not reader.caller.may(permission):
            raise HTTPException(403, f"role {reader.caller.role.value} lacks {permission.value}")
        return reader

    return permitted


_REVOKED_AT = select(API_KEYS.c.revoked_at).where(API_KEYS.c.key_hash == bindparam("key_hash"))


def _still_valid(conn: Connection, key_hash: str) -> bool:
    found = conn.execute(_REVOKED_AT, {"key_hash": key_hash}).first()
    return found is not None and found[0] is None


async def run_read(
    engine: Engine, reader: ReadCaller, read: Callable[[Connection, Caller], T]
) -> T:
    """``read(conn, caller)`` in one thread-pool call on one read connection, after re-checking
    a known key there (401 if it was revoked since)."""

    def call() -> T:
        with read_connection(engine) as conn:
            if reader.recheck is not None and not _still_valid(conn, reader.recheck):
                reader.known.forget(reader.recheck)
                log.info("request refused: revoked API key")  # never the key itself
                raise HTTPException(401, "unknown or revoked API key", _CHALLENGE)
            return read(conn, reader.caller)

    return await run_in_threadpool(call)


AnalyticsRead = Annotated[ReadCaller, Depends(require_read(Permission.ANALYTICS_READ))]
