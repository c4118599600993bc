"""Uploaded clips: the container checked by content, the file streamed to disk under a random
name, the row that records it, and the deletion of clips whose time is up.

A clip is ``{data_dir}/uploads/{id}{ext}``: the id is random (never the client's file name) and
the extension comes from the bytes, not from anything the client said. While it streams it is a
``.partial-*`` file, renamed into place once complete, so a crash never leaves something that
looks like a finished clip. Whether the clip *decodes* is for the edge pipeline to find out (the
hub does not ship OpenCV): a corrupt clip fails its job with the edge's message.
Times are UNIX seconds UTC, passed in.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from cloud_hub.models import VIDEO_JOBS, VIDEO_UPLOADS

log = logging.getLogger(__name__)

UPLOADS = "uploads"
PARTIAL_PREFIX = ".partial-"
SNIFF_BYTES = 12  # the longest signature checked: RIFF....AVI_


class VideoContainer(StrEnum):
    """The containers the edge reads, as recognised by their first bytes."""

    MP4 = "mp4"  # ISO base media (MP4, MOV): a box of type ``ftyp`` first
    AVI = "avi"  # ``RIFF`` + size + ``AVI ``
    MATROSKA = "matroska"  # Matroska and WebM: the EBML magic 1A 45 DF A3

    @property
    def extension(self) -> str:
        """The file extension the clip is stored with."""
        return {"mp4": ".mp4", "avi": ".avi", "matroska": ".mkv"}[self.value]


def sniff_container(head: bytes) -> VideoContainer | None:
    """The container ``head`` (the file's first bytes, at least ``SNIFF_BYTES``) starts like;
    None for anything else (text, images, a renamed file)."""
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return VideoContainer.MP4
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return VideoContainer.AVI
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return VideoContainer.MATROSKA
    return None


class UploadRejectedError(ValueError):
    """A clip refused while it streamed; ``status`` is the HTTP answer (413 or 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReceivedClip:
    """A clip on disk under its final name. ``size`` in bytes."""

    upload_id: str
    path: Path
    container: VideoContainer
    size: int
    sha256: str


def uploads_dir(data_dir: Path) -> Path:
    """The folder clips wait in."""
    return data_dir / UPLOADS


def clip_path(data_dir: Path, upload_id: str, container: str) -> Path:
    """Where the clip of ``upload_id`` is kept."""
    return uploads_dir(data_dir) / (upload_id + VideoContainer(container).extension)


async def receive_clip(
    chunks: AsyncIterator[bytes], data_dir: Path, max_bytes: int
) -> ReceivedClip:
    """Stream ``chunks`` to a new clip file, checking the container on the first bytes and the
    size on every chunk; nothing is left on disk when it is refused.

    Raises:
        UploadRejectedError: 415 when the bytes are not MP4, AVI or Matroska/WebM (or there are
            none), 413 as soon as more than ``max_bytes`` arrived.
    """
    folder = uploads_dir(data_dir)
    await run_in_threadpool(folder.mkdir, parents=True, exist_ok=True)
    upload_id = secrets.token_hex(16)
    partial = folder / f"{PARTIAL_PREFIX}{upload_id}"
    digest = hashlib.sha256()
    head = b""
    container: VideoContainer | None = None
    size = 0
    f = await run_in_threadpool(partial.open, "xb")
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > max_bytes:
                raise UploadRejectedError(413, f"clip larger than {max_bytes} bytes")
            if container is None:
                head = (head + chunk)[:SNIFF_BYTES]
                if len(head) >= SNIFF_BYTES:
                    container = _container_or_415(head)
            digest.update(chunk)
            await run_in_threadpool(f.write, chunk)
        if container is None:
            container = _container_or_415(head)
        await run_in_threadpool(_flush, f)
    except BaseException:
        f.close()
        partial.unlink(missing_ok=True)
        raise
    f.close()
    final = folder / (upload_id + container.extension)
    os.replace(partial, final)
    return ReceivedClip(upload_id, final, container, size, digest.hexdigest())


def _container_or_415(head: bytes) -> VideoContainer:
    container = sniff_container(head)
    if container is None:
        what = "an empty body" if not head else f"a file starting {head[:8]!r}"
        raise UploadRejectedError(
            415,
            f"not a video the edge reads: got {what}; send MP4 (ftyp box), AVI (RIFF...AVI) or "
            "Matroska/WebM (EBML) bytes (the type is checked by content, not by name)",
        )
    return container


def _flush(f: object) -> None:
    f.flush()  # type: ignore[attr-defined]
    os.fsync(f.fileno())  # type: ignore[attr-defined]


class UploadOut(BaseModel):
    """An uploaded clip waiting for ``POST /api/v1/inference/process``. Times: UNIX s UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upload_id: str
    store_id: str
    container: VideoContainer
    size: int = Field(description="bytes")
    sha256: str
    recorded_at: float = Field(description="when the clip's first frame was recorded")
    created_at: float
    expires_at: float = Field(description="deleted then if no job has taken it")


def record_upload(
    conn: Connection,
    clip: ReceivedClip,
    *,
    store_id: str,
    recorded_at: float,
    created_by: str,
    now: float,
    retention_s: float,
) -> UploadOut:
    """Insert the row of a received clip."""
    conn.execute(
        insert(VIDEO_UPLOADS).values(
            id=clip.upload_id,
            store_id=store_id,
            container=clip.container.value,
            size=clip.size,
            sha256=clip.sha256,
            recorded_at=recorded_at,
            created_by=created_by,
            created_at=now,
        )
    )
    return UploadOut(
        upload_id=clip.upload_id,
        store_id=store_id,
        container=clip.container,
        size=clip.size,
        sha256=clip.sha256,
        recorded_at=recorded_at,
        created_at=now,
        expires_at=now + retention_s,
    )


def delete_clip(conn: Connection, data_dir: Path, upload_id: str, now: float) -> bool:
    """Delete the clip's file and mark its row; True when there was a file to delete."""
    row = conn.execute(
        select(VIDEO_UPLOADS.c.container).where(VIDEO_UPLOADS.c.id == upload_id)
    ).first()
    if row is None:
        return False
    path = clip_path(data_dir, upload_id, row.container)
    existed = path.exists()
    path.unlink(missing_ok=True)
    u = VIDEO_UPLOADS.c
    conn.execute(
        update(VIDEO_UPLOADS)
        .where(u.id == upload_id, u.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    return existed


def delete_expired_clips(conn: Connection, data_dir: Path, now: float, retention_s: float) -> int:
    """Delete the clips no job took within ``retention_s``, the clips of finished jobs a crash
    left behind, and ``.partial-*`` files older than ``retention_s``; how many files went."""
    u, j = VIDEO_UPLOADS.c, VIDEO_JOBS.c
    untaken = select(u.id).where(
        u.deleted_at.is_(None),
        u.created_at < now - retention_s,
        ~select(j.id).where(j.upload_id == u.id).exists(),
    )
    finished = (
        select(u.id)
        .join(VIDEO_JOBS, j.upload_id == u.id)
        .where(u.deleted_at.is_(None), j.state.in_(("succeeded", "failed")))
    )
    ids = [r.id for r in conn.execute(untaken.union(finished).subquery().select())]
    deleted = sum(delete_clip(conn, data_dir, i, now) for i in ids)
    folder = uploads_dir(data_dir)
    if folder.is_dir():
        for partial in folder.glob(PARTIAL_PREFIX + "*"):
            try:
                if partial.stat().st_mtime < now - retention_s:
                    partial.unlink(missing_ok=True)
                    deleted += 1
            except FileNotFoundError:
                continue
    if deleted:
        log.info("video retention: %d clip file(s) deleted", deleted)
    return deleted
