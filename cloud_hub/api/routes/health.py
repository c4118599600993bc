"""``GET /api/v1/health``: 200 when the database answers, 503 when it does not."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.deps import EngineDep
from cloud_hub.db import ping

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={503: {"description": "the database is unreachable"}},
)
async def health(engine: EngineDep) -> JSONResponse:
    """``{"status": "ok"}`` when the database answers ``SELECT 1``; 503 otherwise."""
    try:
        await run_in_threadpool(ping, engine)
    except OperationalError as exc:
        log.warning("health: database unreachable: %s", exc.orig)
        return JSONResponse(
            {"status": "unavailable", "reason": f"database unreachable: {exc.orig}"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "database": engine.dialect.name})
