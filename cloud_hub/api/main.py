"""All API routes under one router (mounted at ``/api/v1``)."""

from __future__ import annotations

from fastapi import APIRouter

from cloud_hub.api.auth import ErrorDetail
from cloud_hub.api.routes import (
    alerts,
    analytics,
    configs,
    devices,
    health,
    ingest,
    inventory,
    models,
    rollouts,
    snapshots,
    stores,
    video,
    webhooks,
)

# A body that is not JSON at all (bytes that do not decode) is answered 400 by FastAPI before
# any route runs, on every route that takes a body: documented once here, for all of them (a
# route's own 400, e.g. ingest's BatchRejected, takes precedence).
api_router = APIRouter(
    responses={400: {"model": ErrorDetail, "description": "the body could not be parsed"}}
)
api_router.include_router(health.router)
api_router.include_router(ingest.router)
api_router.include_router(devices.router)
api_router.include_router(snapshots.router)
api_router.include_router(stores.router)
api_router.include_router(analytics.router)
api_router.include_router(inventory.router)
api_router.include_router(alerts.router)
api_router.include_router(webhooks.router)
api_router.include_router(models.router)
api_router.include_router(rollouts.router)
api_router.include_router(rollouts.device_router)
api_router.include_router(configs.store_router)
api_router.include_router(configs.router)
api_router.include_router(configs.device_router)
api_router.include_router(video.router)
