"""``/api/v1/video/upload`` and ``/api/v1/inference/...``: upload a recorded clip, have a job
worker run the edge pipeline on it, poll the job.

HQ admins upload and start jobs; store managers read their stores' jobs. A job of a store the
key may not see answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import AUTH_RESPONSES, STORE_RESPONSES, ErrorDetail, require, visible_store
from cloud_hub.api.deps import EngineDep, SettingsDep
from cloud_hub.api.params import DEFAULT_LIMIT, Limit, Offset, StoreIdQuery, invalid_query
from cloud_hub.core.security import Caller, Permission
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.video_jobs import (
    JobError,
    JobOut,
    JobPage,
    ProcessRequest,
    create_job,
    get_job,
    list_jobs,
    upload_store,
)
from cloud_hub.services.video_uploads import (
    UploadOut,
    UploadRejectedError,
    receive_clip,
    record_upload,
)

router = APIRouter(tags=["video"])

VideoReader = Annotated[Caller, Depends(require(Permission.VIDEO_READ))]
VideoProcessor = Annotated[Caller, Depends(require(Permission.VIDEO_PROCESS))]
StoreFilter = Annotated[str | None, Query(pattern=STORE_ID_PATTERN, description="only this store")]
JobIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the job's id")]
RecordedAt = Annotated[
    datetime,
    Query(
        description="when the clip's first frame was recorded: ISO 8601 with a UTC offset "
        "(2026-11-24T09:00:00+01:00; + as %2B in a URL) or UNIX seconds. Events and rollups "
        "land in the time buckets this gives"
    ),
]
JOB_RESPONSES = {
    **AUTH_RESPONSES,
    404: {"model": ErrorDetail, "description": "no such job, or one of another store"},
}


@router.post(
    "/video/upload",
    response_model=UploadOut,
    status_code=201,
    responses={
        **STORE_RESPONSES,
        413: {"model": ErrorDetail, "description": "larger than RETAIL_HUB_VIDEO_MAX_UPLOAD_BYTES"},
        415: {"model": ErrorDetail, "description": "not MP4, AVI or Matroska/WebM by content"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the clip's bytes, as they are (not multipart)",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_clip(
    request: Request,
    caller: VideoProcessor,
    engine: EngineDep,
    settings: SettingsDep,
    store_id: StoreIdQuery,
    recorded_at: RecordedAt,
) -> UploadOut:
    """Upload a recorded clip of ``store_id`` as the raw request body (``curl --data-binary
    @clip.mp4``). The type is checked on the bytes, the size while they stream; the clip is
    stored under a random name and deleted when its job ends, or after
    RETAIL_HUB_VIDEO_UPLOAD_RETENTION_S if no job takes it. Then ``POST /inference/process``."""
    if recorded_at.tzinfo is None or recorded_at.utcoffset() is None:
        raise invalid_query(
            "recorded_at", "recorded_at needs a UTC offset (Z or +01:00) or UNIX seconds"
        )

    def check_store() -> None:
        with engine.connect() as conn:
            visible_store(conn, caller, store_id)

    await run_in_threadpool(check_store)
    limit = settings.video_max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"clip larger than {limit} bytes")
    try:
        clip = await receive_clip(request.stream(), settings.video_data_dir.resolve(), limit)
    except UploadRejectedError as exc:
        raise HTTPException(exc.status, str(exc)) from None

    def write() -> UploadOut:
        with engine.begin() as conn:
            return record_upload(
                conn, clip, store_id=store_id, recorded_at=recorded_at.timestamp(),
                created_by=caller.name, now=time.time(),
                retention_s=settings.video_upload_retention_s,
            )  # fmt: skip

    try:
        return await run_in_threadpool(write)
    except BaseException:
        clip.path.unlink(missing_ok=True)
        raise


@router.post(
    "/inference/process",
    response_model=JobOut,
    status_code=202,
    responses={
        **AUTH_RESPONSES,
        404: {"model": ErrorDetail, "description": "no such upload, or one of another store"},
        409: {"model": ErrorDetail, "description": "the upload already has a job"},
        410: {"model": ErrorDetail, "description": "the upload's clip was deleted (retention)"},
    },
)
async def process_clip(
    request: ProcessRequest, caller: VideoProcessor, engine: EngineDep
) -> JobOut:
    """Queue a job that runs the edge pipeline on the uploaded clip as ``camera`` (its lines and
    zones as an edge config has them), as the store's virtual upload device; its results land
    in the store's analytics like a store box's. Poll ``GET /inference/jobs/{job_id}``."""

    def write() -> JobOut:
        with engine.begin() as conn:
            store_id = upload_store(conn, request.upload_id)
            if store_id is None or not caller.sees(store_id):
                raise JobError(404, f"upload {request.upload_id} not found")
            return create_job(conn, request, created_by=caller.name, now=time.time())

    try:
        return await run_in_threadpool(write)
    except JobError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/inference/jobs", response_model=JobPage, responses=STORE_RESPONSES)
async def jobs(
    caller: VideoReader,
    engine: EngineDep,
    store_id: StoreFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> JobPage:
    """Processing jobs of the key's stores (or of ``store_id``), newest first."""

    def read() -> JobPage:
        with engine.connect() as conn:
            scope = caller.store_ids
            if store_id is not None:
                scope = frozenset({visible_store(conn, caller, store_id).store_id})
            return list_jobs(conn, scope, limit, offset)

    return await run_in_threadpool(read)


@router.get("/inference/jobs/{job_id}", response_model=JobOut, responses=JOB_RESPONSES)
async def job(job_id: JobIdPath, caller: VideoReader, engine: EngineDep) -> JobOut:
    """A processing job: state (queued, running, succeeded, failed), progress 0-1, the error
    in the edge's words, records appended and delivered, and the edge's report."""

    def read() -> JobOut | None:
        with engine.connect() as conn:
            return get_job(conn, job_id, caller.store_ids)

    found = await run_in_threadpool(read)
    if found is None:
        raise HTTPException(404, f"job {job_id} not found")
    return found
