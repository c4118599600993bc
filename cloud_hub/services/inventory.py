"""Shelf inventory status per store, shelf and slot.

The response schema exists now so the API and its clients are stable; the shelf-monitoring
issue fills it from the edges' shelf zones. Until then every store has no slots.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from cloud_hub.services.paging import PageInfo, page_info

SlotState = Literal["stocked", "low", "empty", "unknown"]


class SlotStatus(BaseModel):
    """The latest known state of one shelf slot."""

    model_config = ConfigDict(extra="forbid")

    store_id: str
    camera_id: str
    shelf_id: str = Field(description="the shelf zone's id")
    slot_id: str
    state: SlotState = Field(description="stocked, low, empty, or unknown (view blocked)")
    product: str | None = Field(description="product id the slot is planned for, if known")
    empty_since: datetime | None = Field(description="when the slot was first seen empty")
    updated_at: datetime = Field(description="when the state was last observed")


class InventoryPage(PageInfo):
    """Slots by ``(store_id, camera_id, shelf_id, slot_id)``."""

    items: list[SlotStatus]


def inventory_status(
    conn: Connection, store_ids: frozenset[str] | None, limit: int, offset: int
) -> InventoryPage:
    """Slot states of the stores ``store_ids`` (None: all): none yet, until shelf monitoring
    reports them (``conn`` is where they will be read from)."""
    items: list[SlotStatus] = []
    return InventoryPage(items=items, **page_info(len(items), limit, offset).model_dump())
