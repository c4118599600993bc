"""All API routes under one router (mounted at ``/api/v1``)."""

from __future__ import annotations

from fastapi import APIRouter

from cloud_hub.api.routes import devices, health, ingest

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(ingest.router)
api_router.include_router(devices.router)
