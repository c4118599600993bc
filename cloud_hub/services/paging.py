"""Paging of list responses: ``limit``/``offset`` over a stable order, with the total.

Every list the HQ API returns is small and bounded (stores, the buckets of one bounded time
range, the cameras of a store), so offset paging is exact and cheap; a cursor would add state
for nothing. Each list names the order it is stable in.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


class PageInfo(BaseModel):
    """Where a page sits in its list: ``total`` items in all; the next page starts at
    ``next_offset`` (null on the last page)."""

    model_config = ConfigDict(extra="forbid")

    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
    next_offset: int | None


def page_info(total: int, limit: int, offset: int) -> PageInfo:
    """The paging fields of items ``[offset, offset + limit)`` of ``total``."""
    nxt = offset + limit
    return PageInfo(
        total=total, limit=limit, offset=offset, next_offset=nxt if nxt < total else None
    )
