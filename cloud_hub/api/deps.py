"""FastAPI dependencies: the database engine, the settings and who the caller is."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cloud_hub.core.config import HubSettings
from cloud_hub.services.enrollment import device_for_secret
from common.topics import DeviceTopics

log = logging.getLogger(__name__)


# async (no await inside): FastAPI would run a plain ``def`` dependency in the thread pool, a
# thread hop per request for an attribute read.
async def get_engine(request: Request) -> Engine:
    """The engine the app's lifespan created."""
    engine = request.app.state.engine
    assert isinstance(engine, Engine)
    return engine


async def get_settings(request: Request) -> HubSettings:
    """The settings the app was created with."""
    settings = request.app.state.settings
    assert isinstance(settings, HubSettings)
    return settings


device_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="DeviceSecret",
    description="A device's own secret from enrollment (`retail-edge enroll`), sent as "
    "`Authorization: Bearer SECRET`.",
)


def _device_for(engine: Engine, secret: str) -> DeviceTopics | None:
    with engine.connect() as conn:
        return device_for_secret(conn, secret)


async def authenticated_device(
    engine: Annotated[Engine, Depends(get_engine)],
    settings: Annotated[HubSettings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(device_bearer)],
) -> DeviceTopics | None:
    """The device whose secret came with the request (store and device from enrollment).

    401 without a valid secret, unless ``device_auth`` is ``open``: then a request without one
    gets None (the hub trusts the store and device a batch names), while a secret that is sent
    is still checked. Ingest passes the device on as the payload's ``source``, so a batch naming
    another device or store is refused.
    """
    if credentials is None:
        if settings.device_auth == "open":
            return None
        raise HTTPException(
            401,
            "a device secret is required: Authorization: Bearer SECRET (from `retail-edge enroll`)",
            {"WWW-Authenticate": "Bearer"},
        )
    device = await run_in_threadpool(_device_for, engine, credentials.credentials)
    if device is None:
        log.info("device request refused: unknown or revoked device secret")  # never the secret
        raise HTTPException(401, "unknown or revoked device secret", {"WWW-Authenticate": "Bearer"})
    return device


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[HubSettings, Depends(get_settings)]
DeviceDep = Annotated[DeviceTopics | None, Depends(authenticated_device)]
