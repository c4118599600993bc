"""Query and path parameters shared by the HQ read routes, and the 422 for a bad time range."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query
from fastapi.exceptions import RequestValidationError

from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.calendar import RangeError
from cloud_hub.services.paging import DEFAULT_LIMIT, MAX_LIMIT

MAX_OFFSET = 2**31

StoreIdPath = Annotated[str, Path(pattern=STORE_ID_PATTERN, description="the store's id")]
StoreIdQuery = Annotated[str, Query(pattern=STORE_ID_PATTERN, description="the store's id")]
CameraQuery = Annotated[str | None, Query(pattern=STORE_ID_PATTERN, description="only this camera")]
LineQuery = Annotated[str | None, Query(pattern=STORE_ID_PATTERN, description="only this line")]
ZoneQuery = Annotated[str | None, Query(pattern=STORE_ID_PATTERN, description="only this zone")]
TargetQuery = Annotated[
    str | None,
    Query(pattern=STORE_ID_PATTERN, description="only this zone (or camera, for people)"),
]
Start = Annotated[
    datetime,
    Query(
        description="range start, inclusive: ISO 8601 with a UTC offset "
        "(2026-03-29T00:00:00+01:00; write + as %2B in a URL)"
    ),
]
End = Annotated[datetime, Query(description="range end, exclusive: ISO 8601 with a UTC offset")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]

__all__ = [
    "DEFAULT_LIMIT",
    "CameraQuery",
    "End",
    "Limit",
    "LineQuery",
    "Offset",
    "Start",
    "StoreIdPath",
    "StoreIdQuery",
    "TargetQuery",
    "ZoneQuery",
    "invalid_query",
    "invalid_range",
]


def invalid_query(field: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own validation errors (so it matches their documented
    schema), naming the query parameter ``field``."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "input": None}]
    )


def invalid_range(exc: RangeError) -> RequestValidationError:
    """A 422 naming the query parameter of a bad time range."""
    return invalid_query(exc.field, exc.message)
