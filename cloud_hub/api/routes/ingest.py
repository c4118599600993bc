"""``POST /api/v1/ingest/telemetry``: one telemetry batch in, its ack out once committed.

Body: the bytes of ``common.sync.encode_batch`` (``Content-Encoding: gzip``) or plain JSON.
Needs the device's secret from enrollment as ``Authorization: Bearer`` (401 without it, unless
the hub runs with ``device_auth`` open); a batch naming another device or store is refused.
200 → ``BatchAck``; 400 → ``BatchRejected`` (kept as a dead letter); 413 → ``BatchRejected``
(too large, nothing kept: split the batch); 415 → unknown ``Content-Encoding``; 503 with
``Retry-After`` → the database is unreachable, nothing was acknowledged, send again later.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import ErrorDetail
from cloud_hub.api.deps import DeviceDep, EngineDep, SettingsDep
from cloud_hub.services.payloads import ingest_payload
from common.sync import BatchAck, BatchRejected

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ingest", tags=["ingest"])

RETRY_AFTER_S = 5


def _answer(status: int, body: BatchAck | BatchRejected, retry_after: bool = False) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if retry_after else None
    return Response(
        body.model_dump_json(), status_code=status, media_type="application/json", headers=headers
    )


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` bytes (the rest is never read)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


@router.post(
    "/telemetry",
    response_model=BatchAck,
    responses={
        400: {"model": BatchRejected, "description": "not a readable batch (dead-lettered)"},
        401: {
            "model": ErrorDetail,
            "description": "no device secret, or an unknown or revoked one",
        },
        413: {"model": BatchRejected, "description": "body larger than the hub accepts"},
        415: {"model": BatchRejected, "description": "Content-Encoding other than gzip"},
        503: {"model": BatchRejected, "description": "database unreachable; retry later"},
    },
)
async def ingest_telemetry(
    request: Request, engine: EngineDep, settings: SettingsDep, caller: DeviceDep
) -> Response:
    """Ingest one batch; the ``BatchAck`` is sent only after the database commit."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("gzip", "identity"):
        reason = f"Content-Encoding {encoding!r} is not supported; send gzip or identity"
        return _answer(415, BatchRejected(reason=reason))
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _answer(413, BatchRejected(reason=f"body of {declared} bytes exceeds {limit}"))
    body = await _read_capped(request, limit)
    if body is None:
        return _answer(413, BatchRejected(reason=f"body exceeds {limit} bytes"))
    try:
        result = await run_in_threadpool(
            ingest_payload,
            engine,
            body,
            time.time(),
            source=caller,
            max_batch_bytes=settings.max_batch_bytes,
        )
    except OperationalError as exc:
        log.warning("ingest: database unreachable, answering 503: %s", exc.orig)
        reason = f"database unreachable, nothing acknowledged; retry in {RETRY_AFTER_S} s"
        return _answer(503, BatchRejected(reason=reason), retry_after=True)
    if isinstance(result, BatchRejected):
        return _answer(400, result)
    return _answer(200, result)
