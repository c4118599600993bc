"""Snapshots: gated images from the stores (alert snapshots, heatmap images).

``GET /api/v1/snapshots`` lists them (newest first, paged); ``GET /api/v1/snapshots/{device_id}/
{seq}/image`` serves one image as the edge's privacy gate released it.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import STORE_RESPONSES, AnalyticsReader
from cloud_hub.api.deps import EngineDep
from cloud_hub.services.snapshots import (
    SnapshotImage,
    SnapshotPage,
    list_snapshots,
    read_snapshot,
)

router = APIRouter(prefix="/snapshots", tags=["snapshots"])


@router.get("", response_model=SnapshotPage, responses=STORE_RESPONSES)
async def snapshots(
    caller: AnalyticsReader,
    engine: EngineDep,
    store_id: str | None = None,
    camera_id: str | None = None,
    purpose: Literal["alert_snapshot", "heatmap"] | None = None,
    start: float | None = Query(None, description="UNIX seconds, inclusive"),
    end: float | None = Query(None, description="UNIX seconds, exclusive"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> SnapshotPage:
    """Snapshots of the key's stores, newest first, filtered by store, camera, purpose and
    time (404 for a store outside the key's scope)."""
    if store_id is not None and not caller.sees(store_id):
        raise HTTPException(404, f"store {store_id!r} not found")
    if store_id is not None:
        scope: list[str] | None = [store_id]
    else:
        scope = None if caller.store_ids is None else sorted(caller.store_ids)

    def read(e: Engine) -> SnapshotPage:
        with e.connect() as conn:
            return list_snapshots(
                conn,
                store_ids=scope,
                camera_id=camera_id,
                purpose=purpose,
                start=start,
                end=end,
                limit=limit,
                offset=offset,
            )

    return await run_in_threadpool(read, engine)


@router.get(
    "/heatmaps/latest",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "the image"},
        **STORE_RESPONSES,
    },
)
async def latest_heatmap(
    caller: AnalyticsReader,
    engine: EngineDep,
    store_id: str = Query(description="the store"),
    camera_id: str = Query(description="one of its cameras"),
) -> Response:
    """The camera's newest heatmap image, as the edge drew it and its privacy gate released it
    (the hub draws no images; the numbers behind it are at ``/analytics/heatmap``). 404 when the
    store is not the key's or the camera has sent none."""
    if not caller.sees(store_id):
        raise HTTPException(404, f"store {store_id!r} not found")

    def read(e: Engine) -> tuple[str, SnapshotImage] | None:
        with e.connect() as conn:
            page = list_snapshots(
                conn, store_ids=[store_id], camera_id=camera_id, purpose="heatmap", limit=1
            )
            if not page.items:
                return None
            return read_snapshot(conn, page.items[0].device_id, page.items[0].seq)

    found = await run_in_threadpool(read, engine)
    if found is None:
        raise HTTPException(404, f"no heatmap image from store {store_id!r} camera {camera_id!r}")
    image = found[1]
    return Response(
        content=image.data,
        media_type=image.media_type,
        headers={"ETag": f'"{image.sha256}"', "Cache-Control": "private, max-age=60"},
    )


@router.get(
    "/{device_id}/{seq}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "the image"},
        **{k: v for k, v in STORE_RESPONSES.items() if k != 404},
        404: {"description": "no such snapshot (deleted by retention, or another store's)"},
    },
)
async def snapshot_image(
    device_id: str, seq: int, caller: AnalyticsReader, engine: EngineDep
) -> Response:
    """One snapshot's image bytes, with its sha256 as the ETag."""

    def read(e: Engine) -> tuple[str, SnapshotImage] | None:
        with e.connect() as conn:
            return read_snapshot(conn, device_id, seq)

    found = await run_in_threadpool(read, engine)
    if found is None or not caller.sees(found[0]):
        raise HTTPException(404, f"no snapshot {device_id}/{seq}")
    image = found[1]
    return Response(
        content=image.data,
        media_type=image.media_type,
        headers={"ETag": f'"{image.sha256}"', "Cache-Control": "private, max-age=3600"},
    )
