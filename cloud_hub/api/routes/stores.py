"""``/api/v1/stores``: the stores a key may see; an HQ admin sets name, time zone and group."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import (
    AUTH_RESPONSES,
    STORE_RESPONSES,
    ErrorDetail,
    StoresReader,
    StoresWriter,
    visible_store,
)
from cloud_hub.api.deps import EngineDep
from cloud_hub.api.params import DEFAULT_LIMIT, Limit, Offset, StoreIdPath
from cloud_hub.services.stores import StoreOut, StorePage, StoreUpdate, list_stores, put_store

router = APIRouter(prefix="/stores", tags=["stores"])


@router.get("", response_model=StorePage, responses=AUTH_RESPONSES)
async def stores(
    caller: StoresReader, engine: EngineDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> StorePage:
    """The stores the key may see, by id."""

    def read() -> StorePage:
        with engine.connect() as conn:
            return list_stores(conn, caller.store_ids, limit, offset)

    return await run_in_threadpool(read)


@router.get("/{store_id}", response_model=StoreOut, responses=STORE_RESPONSES)
async def store(store_id: StoreIdPath, caller: StoresReader, engine: EngineDep) -> StoreOut:
    """One store (404 when it does not exist or is not one of the key's stores)."""

    def read() -> StoreOut:
        with engine.connect() as conn:
            return visible_store(conn, caller, store_id)

    return await run_in_threadpool(read)


@router.put(
    "/{store_id}",
    response_model=StoreOut,
    responses={
        **AUTH_RESPONSES,
        201: {"model": StoreOut, "description": "store created"},
        400: {"model": ErrorDetail, "description": "the body is not JSON"},
    },
)
async def set_store(
    store_id: StoreIdPath,
    change: StoreUpdate,
    caller: StoresWriter,
    engine: EngineDep,
    response: Response,
) -> StoreOut:
    """Set a store's name, IANA time zone and group (HQ admins). Creates the store when the hub
    has not heard of it yet (201), so it can be set up before its first device reports."""

    def write() -> tuple[StoreOut, bool]:
        with engine.begin() as conn:
            return put_store(conn, store_id, change, time.time())

    saved, created = await run_in_threadpool(write)
    if created:
        response.status_code = 201
    return saved
