"""``GET /api/v1/inventory/status``: shelf slot states of the key's stores."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import STORE_RESPONSES, InventoryReader, visible_store
from cloud_hub.api.deps import EngineDep
from cloud_hub.api.params import DEFAULT_LIMIT, Limit, Offset
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.inventory import InventoryPage, inventory_status

router = APIRouter(prefix="/inventory", tags=["inventory"])


@router.get("/status", response_model=InventoryPage, responses=STORE_RESPONSES)
async def status(
    caller: InventoryReader,
    engine: EngineDep,
    store_id: str | None = Query(None, pattern=STORE_ID_PATTERN, description="only this store"),
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> InventoryPage:
    """Slot states (stocked, empty, unknown) per store, shelf and slot: the newest each edge
    reported (its shelf zones' ``ShelfStatus`` records), with the product seen there."""

    def read() -> InventoryPage:
        with engine.connect() as conn:
            scope = caller.store_ids
            if store_id is not None:
                scope = frozenset({visible_store(conn, caller, store_id).store_id})
            return inventory_status(conn, scope, limit, offset)

    return await run_in_threadpool(read)
