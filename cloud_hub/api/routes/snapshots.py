"""Snapshots: gated images from the stores (alert snapshots, heatmap images).

``GET /api/v1/snapshots`` lists them (newest first, paged); ``GET /api/v1/snapshots/{device_id}/
{seq}/image`` serves one image as the edge's privacy gate released it.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.deps import EngineDep
from cloud_hub.services.snapshots import (
    SnapshotImage,
    SnapshotPage,
    list_snapshots,
    read_snapshot,
)

router = APIRouter(prefix="/snapshots", tags=["snapshots"])


@router.get("", response_model=SnapshotPage)
async def snapshots(
    engine: EngineDep,
    store_id: str | None = None,
    camera_id: str | None = None,
    purpose: Literal["alert_snapshot", "heatmap"] | None = None,
    start: float | None = Query(None, description="UNIX seconds, inclusive"),
    end: float | None = Query(None, description="UNIX seconds, exclusive"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> SnapshotPage:
    """Snapshots newest first, filtered by store, camera, purpose and time."""

    def read(e: Engine) -> SnapshotPage:
        with e.connect() as conn:
            return list_snapshots(
                conn,
                store_ids=None if store_id is None else [store_id],
                camera_id=camera_id,
                purpose=purpose,
                start=start,
                end=end,
                limit=limit,
                offset=offset,
            )

    return await run_in_threadpool(read, engine)


@router.get(
    "/{device_id}/{seq}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "the image"},
        404: {"description": "no such snapshot (or deleted by retention)"},
    },
)
async def snapshot_image(device_id: str, seq: int, engine: EngineDep) -> Response:
    """One snapshot's image bytes, with its sha256 as the ETag."""

    def read(e: Engine) -> tuple[str, SnapshotImage] | None:
        with e.connect() as conn:
            return read_snapshot(conn, device_id, seq)

    found = await run_in_threadpool(read, engine)
    if found is None:
        raise HTTPException(404, f"no snapshot {device_id}/{seq}")
    image = found[1]
    return Response(
        content=image.data,
        media_type=image.media_type,
        headers={"ETag": f'"{image.sha256}"', "Cache-Control": "private, max-age=3600"},
    )
