"""Who is calling, and what they may see: API keys (``Authorization: Bearer KEY``) and roles.

401: no key, or an unknown or revoked one. 403: the key's role lacks the route's permission
(that says nothing about any store). 404: a store the key may not see answers exactly like a
store that does not exist, so a key never learns which other stores exist.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.deps import EngineDep
from cloud_hub.core.security import Caller, Permission
from cloud_hub.services.api_keys import caller_for_key
from cloud_hub.services.jwt_auth import JwtVerifier, looks_like_jwt
from cloud_hub.services.stores import StoreOut, get_store

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `retail-hub admin create-key`, or a JWT from the company's "
    "identity provider where the hub is configured for it, sent as `Authorization: Bearer`.",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class ErrorDetail(BaseModel):
    """An error the client can act on."""

    detail: str


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "no API key, or an unknown or revoked one"},
    403: {"model": ErrorDetail, "description": "the key's role may not use this route"},
}
STORE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"model": ErrorDetail, "description": "no such store, or not one of the key's stores"},
}


def _lookup(engine: Engine, key: str) -> Caller | None:
    with engine.connect() as conn:
        return caller_for_key(conn, key)


async def current_caller(
    request: Request,
    engine: EngineDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller whose API key (or identity-provider JWT, where configured) came with the
    request; 401 without a valid one."""
    if credentials is None:
        raise HTTPException(401, "an API key is required: Authorization: Bearer KEY", _CHALLENGE)
    verifier: JwtVerifier | None = request.app.state.jwt
    if verifier is not None and looks_like_jwt(credentials.credentials):
        jwt_caller = verifier.caller(credentials.credentials)
        if jwt_caller is None:
            raise HTTPException(
                401, "JWT not accepted (signature, issuer, audience, expiry or scope)", _CHALLENGE
            )
        return jwt_caller
    caller = await run_in_threadpool(_lookup, engine, credentials.credentials)
    if caller is None:
        log.info("request refused: unknown or revoked API key")  # never the key itself
        raise HTTPException(401, "unknown or revoked API key", _CHALLENGE)
    return caller


def require(permission: Permission) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the caller, if their role grants ``permission`` (403 otherwise)."""

    async def permitted(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if not caller.may(permission):
            raise HTTPException(403, f"role {caller.role.value} lacks {permission.value}")
        return caller

    return permitted


def visible_store(conn: Connection, caller: Caller, store_id: str) -> StoreOut:
    """The store, if it exists and the caller may see it; 404 otherwise (the same answer for
    both, so a key never learns of stores outside its scope)."""
    store = get_store(conn, store_id) if caller.sees(store_id) else None
    if store is None:
        raise HTTPException(404, f"store {store_id!r} not found")
    return store


StoresReader = Annotated[Caller, Depends(require(Permission.STORES_READ))]
StoresWriter = Annotated[Caller, Depends(require(Permission.STORES_WRITE))]
AnalyticsReader = Annotated[Caller, Depends(require(Permission.ANALYTICS_READ))]
InventoryReader = Annotated[Caller, Depends(require(Permission.INVENTORY_READ))]
