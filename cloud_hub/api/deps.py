"""FastAPI dependencies: the database engine, the settings and who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from cloud_hub.core.config import HubSettings
from common.topics import DeviceTopics


def get_engine(request: Request) -> Engine:
    """The engine the app's lifespan created."""
    engine = request.app.state.engine
    assert isinstance(engine, Engine)
    return engine


def get_settings(request: Request) -> HubSettings:
    """The settings the app was created with."""
    settings = request.app.state.settings
    assert isinstance(settings, HubSettings)
    return settings


def authenticated_device() -> DeviceTopics | None:
    """The device whose credentials came with the request; None = not authenticated.

    The single seam for device authentication (issue 5). For now it returns None: the hub
    trusts the ``store_id``/``device_id`` a batch names. Once devices hold credentials this
    returns the device they belong to (401 without them), ingest passes it as the payload's
    ``source`` so a batch naming another device is refused, and ``/devices/{id}/sync`` answers
    only for the caller itself.
    """
    return None


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[HubSettings, Depends(get_settings)]
DeviceDep = Annotated[DeviceTopics | None, Depends(authenticated_device)]
