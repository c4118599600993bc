"""Processing jobs of uploaded clips: created by the API, claimed and run by one job runner.

A job is a row in ``video_jobs``; ``state`` goes queued → running → succeeded | failed. A
runner takes a job with one conditional ``UPDATE ... WHERE state = 'queued'`` (or a running job
whose lease ran out: its runner died) and holds it by renewing ``lease_until``. Jobs of one store
run one at a time, because they all write as the store's one virtual upload device, whose
record seqs must not interleave; the claim checks that no other job of the store holds a live
lease (on PostgreSQL under a lock on the store's row, so two runners cannot both pass the check).
docs/decisions/0011-video-jobs.md says why. Times are UNIX seconds UTC, passed in.
"""

from __future__ import annotations

import hashlib
import logging
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import STORES, VIDEO_JOBS, VIDEO_UPLOADS
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.paging import PageInfo, page_info

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000
VIRTUAL_DEVICE_PREFIX = "upload-"
MAX_DEVICE_ID_CHARS = 64
# Camera keys a request may not set: the hub decides which file the job reads.
RESERVED_CAMERA_KEYS = frozenset({"source", "enabled"})


class JobState(StrEnum):
    """Where a job is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINISHED = (JobState.SUCCEEDED.value, JobState.FAILED.value)


class JobError(ValueError):
    """A job that cannot be created; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CameraIn(BaseModel):
    """The camera whose view the clip shows, as an edge config's ``cameras:`` entry has it
    (``id``, ``fps``, ``lines``, ``zones``, ``queues``, ``alerts``, ``heatmap``, ...: normalised
    coordinates, seconds), without ``source``. The job validates it with ``retail-edge
    check-config``; an invalid one fails the job with the edge's message."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=STORE_ID_PATTERN, description="camera id the results are stored under")

    @model_validator(mode="after")
    def _no_reserved_keys(self) -> CameraIn:
        reserved = sorted(RESERVED_CAMERA_KEYS & set(self.model_extra or {}))
        if reserved:
            raise ValueError(
                f"camera {reserved} may not be set: the job reads the uploaded clip, always"
            )
        return self


class ProcessRequest(BaseModel):
    """Process an uploaded clip as ``camera`` of the clip's store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upload_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="from POST /video/upload")
    camera: CameraIn


class JobOut(BaseModel):
    """A processing job. ``report`` is the edge's report of the clip (``retail-edge process``:
    line counts, zone visits, queue and dwell figures), once processed. Times: UNIX s UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: int
    upload_id: str
    store_id: str
    camera_id: str
    state: JobState
    progress: float = Field(ge=0, le=1)
    error: str | None = Field(description="why it failed, in the edge's words where it spoke")
    attempts: int = Field(description="times a runner took it (more than 1: a runner died)")
    device_id: str | None = Field(description="the store's virtual device the results came from")
    records_appended: int | None = Field(description="records the edge pipeline produced")
    records_delivered: int | None = Field(description="of those, acknowledged by the hub")
    report: dict[str, Any] | None
    created_at: float
    started_at: float | None
    finished_at: float | None


class JobPage(PageInfo):
    """Jobs, newest first."""

    items: list[JobOut]


def virtual_device_id(store_id: str) -> str:
    """The id of the store's virtual device that processes its uploaded clips:
    ``upload-<store>``, or ``upload-<hash>`` when that would be longer than an id may be."""
    name = VIRTUAL_DEVICE_PREFIX + store_id
    if len(name) <= MAX_DEVICE_ID_CHARS:
        return name
    return VIRTUAL_DEVICE_PREFIX + hashlib.sha256(store_id.encode()).hexdigest()[:40]


def _out(r: RowMapping) -> JobOut:
    return JobOut(
        job_id=r["id"],
        upload_id=r["upload_id"],
        store_id=r["store_id"],
        camera_id=r["camera_id"],
        state=JobState(r["state"]),
        progress=r["progress"],
        error=r["error"],
        attempts=r["attempts"],
        device_id=r["device_id"],
        records_appended=r["records_appended"],
        records_delivered=r["records_delivered"],
        report=r["report"],
        created_at=r["created_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
    )


def upload_store(conn: Connection, upload_id: str) -> str | None:
    """The store of an upload; None when there is no such upload."""
    u = VIDEO_UPLOADS.c
    found = conn.execute(select(u.store_id).where(u.id == upload_id)).scalar_one_or_none()
    return None if found is None else str(found)


def create_job(conn: Connection, request: ProcessRequest, *, created_by: str, now: float) -> JobOut:
    """Queue the processing of an upload (the caller checked the store is the caller's).

    Raises:
        JobError: 404 no such upload, 410 its clip was deleted, 409 it already has a job.
    """
    u, j = VIDEO_UPLOADS.c, VIDEO_JOBS.c
    upload = conn.execute(select(VIDEO_UPLOADS).where(u.id == request.upload_id)).mappings().first()
    if upload is None:
        raise JobError(404, f"upload {request.upload_id} not found")
    existing = conn.execute(select(j.id).where(j.upload_id == request.upload_id)).scalar()
    if existing is not None:
        raise JobError(409, f"upload {request.upload_id} is already job {existing}")
    if upload["deleted_at"] is not None:
        raise JobError(410, f"upload {request.upload_id} was deleted (retention); upload it again")
    values = {
        "upload_id": request.upload_id,
        "store_id": upload["store_id"],
        "camera_id": request.camera.id,
        "camera": request.camera.model_dump(mode="json"),
        "state": JobState.QUEUED.value,
        "progress": 0.0,
        "attempts": 0,
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
    }
    job_id = conn.execute(insert(VIDEO_JOBS).values(**values).returning(j.id)).scalar_one()
    log.info(
        "video job %d queued: upload %s, store %s", job_id, request.upload_id, values["store_id"]
    )
    return get_job(conn, int(job_id), None)  # type: ignore[return-value]


def get_job(conn: Connection, job_id: int, store_ids: frozenset[str] | None) -> JobOut | None:
    """The job, if it exists and is of one of ``store_ids`` (None: any store)."""
    row = conn.execute(select(VIDEO_JOBS).where(VIDEO_JOBS.c.id == job_id)).mappings().first()
    if row is None or (store_ids is not None and row["store_id"] not in store_ids):
        return None
    return _out(row)


def list_jobs(
    conn: Connection, store_ids: frozenset[str] | None, limit: int, offset: int
) -> JobPage:
    """Jobs of ``store_ids`` (None: all), newest first."""
    j = VIDEO_JOBS.c
    where = [] if store_ids is None else [j.store_id.in_(sorted(store_ids))]
    total = conn.execute(select(func.count()).select_from(VIDEO_JOBS).where(*where)).scalar_one()
    rows = conn.execute(
        select(VIDEO_JOBS).where(*where).order_by(j.id.desc()).limit(limit).offset(offset)
    ).mappings()
    info = page_info(int(total), limit, offset)
    return JobPage(items=[_out(r) for r in rows], **info.model_dump())


# -- the runner's side ------------------------------------------------------------------------


class ClaimedJob(BaseModel):
    """A job a runner holds: what it needs to run it."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    upload_id: str
    store_id: str
    camera: dict[str, Any]
    container: str
    recorded_at: float
    timezone: str
    attempts: int
    processed: bool = Field(description="the clip is already in the job's outbox (a retry)")


def fail_abandoned(conn: Connection, now: float, max_attempts: int) -> list[int]:
    """Fail the running jobs whose lease ran out after ``max_attempts`` takes; their ids."""
    j = VIDEO_JOBS.c
    dead = [
        int(r.id)
        for r in conn.execute(
            select(j.id).where(
                j.state == JobState.RUNNING.value, j.lease_until < now, j.attempts >= max_attempts
            )
        )
    ]
    for job_id in dead:
        finish_job(
            conn,
            job_id,
            None,
            now,
            error=f"the job runner stopped answering {max_attempts} time(s) while running it "
            "(killed, or out of memory?); see the hub worker's log",
        )
    return dead


def claim_job(
    conn: Connection, runner: str, now: float, lease_s: float, limit: int = 20
) -> ClaimedJob | None:
    """Take the oldest job that is queued, or running with its lease run out, of a store with
    no other job in progress; None when there is none. Commit right after."""
    j, u = VIDEO_JOBS.c, VIDEO_UPLOADS.c
    takeable = or_(
        j.state == JobState.QUEUED.value,
        (j.state == JobState.RUNNING.value) & (j.lease_until < now),
    )
    candidates = conn.execute(
        select(j.id, j.store_id).where(takeable).order_by(j.id).limit(limit)
    ).all()
    for job_id, store_id in candidates:
        if conn.dialect.name == "postgresql":
            # Serialises claims per store; READ COMMITTED then lets the check below see a job
            # another runner took and committed while this one waited for the lock.
            conn.execute(
                select(STORES.c.store_id).where(STORES.c.store_id == store_id).with_for_update()
            )
        busy = select(j.id).where(
            j.store_id == store_id,
            j.id != job_id,
            j.state == JobState.RUNNING.value,
            j.lease_until >= now,
        )
        taken = conn.execute(
            update(VIDEO_JOBS)
            .where(j.id == job_id, takeable, ~busy.exists())
            .values(
                state=JobState.RUNNING.value,
                runner=runner,
                lease_until=now + lease_s,
                attempts=j.attempts + 1,
                started_at=func.coalesce(j.started_at, now),
                device_id=virtual_device_id(store_id),
                updated_at=now,
            )
        )
        if taken.rowcount != 1:
            continue
        row = conn.execute(
            select(
                j.id,
                j.upload_id,
                j.store_id,
                j.camera,
                j.attempts,
                j.processed_at,
                u.container,
                u.recorded_at,
                STORES.c.timezone,
            )
            .join(VIDEO_UPLOADS, u.id == j.upload_id)
            .join(STORES, STORES.c.store_id == j.store_id, isouter=True)
            .where(j.id == job_id)
        ).one()
        return ClaimedJob(
            job_id=row.id,
            upload_id=row.upload_id,
            store_id=row.store_id,
            camera=row.camera,
            container=row.container,
            recorded_at=row.recorded_at,
            timezone=row.timezone or "UTC",
            attempts=row.attempts,
            processed=row.processed_at is not None,
        )
    return None


def renew_lease(
    conn: Connection, job_id: int, runner: str, now: float, lease_s: float, progress: float
) -> bool:
    """Extend the runner's lease and record progress (0-1); False when the runner no longer
    holds the job (its lease ran out and another runner took it)."""
    j = VIDEO_JOBS.c
    done = conn.execute(
        update(VIDEO_JOBS)
        .where(j.id == job_id, j.runner == runner, j.state == JobState.RUNNING.value)
        .values(lease_until=now + lease_s, progress=progress, updated_at=now)
    )
    return done.rowcount == 1


def mark_processed(
    conn: Connection, job_id: int, runner: str, now: float, report: dict[str, Any]
) -> None:
    """The clip is processed into the job's outbox: keep the edge's report."""
    j = VIDEO_JOBS.c
    conn.execute(
        update(VIDEO_JOBS)
        .where(j.id == job_id, j.runner == runner)
        .values(
            processed_at=now,
            report=report,
            records_appended=int(report.get("records_appended", 0)),
            progress=0.9,
            updated_at=now,
        )
    )


def release_job(conn: Connection, job_id: int, runner: str, now: float) -> None:
    """Hand a job back to the queue (its runner is stopping); the take is not counted."""
    j = VIDEO_JOBS.c
    conn.execute(
        update(VIDEO_JOBS)
        .where(j.id == job_id, j.runner == runner, j.state == JobState.RUNNING.value)
        .values(
            state=JobState.QUEUED.value,
            runner=None,
            lease_until=None,
            attempts=func.max(j.attempts - 1, 0)
            if conn.dialect.name == "sqlite"
            else func.greatest(j.attempts - 1, 0),
            updated_at=now,
        )
    )


def finish_job(
    conn: Connection,
    job_id: int,
    runner: str | None,
    now: float,
    *,
    error: str | None = None,
) -> bool:
    """Record the end of a job (``error`` None: succeeded, every record it appended was
    acknowledged by the hub); with ``runner``, only if that runner still holds it. True when
    the row changed."""
    j = VIDEO_JOBS.c
    where = [j.id == job_id, j.state == JobState.RUNNING.value]
    if runner is not None:
        where.append(j.runner == runner)
    values: dict[str, Any] = {
        "state": JobState.FAILED.value if error else JobState.SUCCEEDED.value,
        "error": None if error is None else error[-MAX_ERROR_CHARS:],
        "lease_until": None,
        "finished_at": now,
        "updated_at": now,
    }
    if error is None:
        values["progress"] = 1.0
        values["records_delivered"] = j.records_appended
    done = conn.execute(update(VIDEO_JOBS).where(*where).values(**values))
    return done.rowcount == 1


def job_upload(conn: Connection, job_id: int) -> str | None:
    """The upload id of a job."""
    return conn.execute(
        select(VIDEO_JOBS.c.upload_id).where(VIDEO_JOBS.c.id == job_id)
    ).scalar_one_or_none()


def virtual_device_ids(conn: Connection) -> set[str]:
    """The virtual upload devices jobs have run as."""
    j = VIDEO_JOBS.c
    return {
        str(d)
        for d in conn.execute(
            select(j.device_id).where(j.device_id.is_not(None)).distinct()
        ).scalars()
    }
