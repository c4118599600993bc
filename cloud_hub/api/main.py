"""All API routes under one router (mounted at ``/api/v1``)."""

from __future__ import annotations

from fastapi import APIRouter

from cloud_hub.api.routes import (
    alerts,
    analytics,
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

api_router = APIRouter()
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
api_router.include_router(video.router)
