"""``GET /api/v1/health``: 200 when the database answers, 503 when it does not (liveness);
``GET /api/v1/health/ready``: every configured dependency checked (readiness)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.deps import EngineDep, SettingsDep
from cloud_hub.db import ping
from cloud_hub.services.readiness import Readiness, readiness

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


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a check failed (see checks)"}},
)
async def ready(engine: EngineDep, settings: SettingsDep) -> JSONResponse:
    """Readiness for a load balancer or orchestrator: the database is reachable and migrated,
    and the MQTT broker accepts the hub where ``RETAIL_HUB_READY_CHECKS`` includes it."""
    state = await run_in_threadpool(readiness, engine, settings)
    if not state.ready:
        log.warning("not ready: %s", {k: c.detail for k, c in state.checks.items() if not c.ok})
    return JSONResponse(
        state.model_dump(),
        status_code=200 if state.ready else 503,
        headers=None if state.ready else {"Retry-After": "5"},
    )
