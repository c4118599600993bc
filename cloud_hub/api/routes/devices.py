"""``GET /api/v1/devices/{device_id}/sync``: what the hub holds of a device's records."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.deps import DeviceDep, EngineDep
from cloud_hub.services.devices import DeviceSyncState, device_sync_state

router = APIRouter(prefix="/devices", tags=["devices"])


def _read(engine: Engine, device_id: str) -> DeviceSyncState | None:
    with engine.connect() as conn:
        return device_sync_state(conn, device_id)


@router.get(
    "/{device_id}/sync",
    response_model=DeviceSyncState,
    responses={404: {"description": "the hub has never received a batch from this device"}},
)
async def device_sync(device_id: str, engine: EngineDep, caller: DeviceDep) -> DeviceSyncState:
    """The device's ``max_seq`` and record totals (an edge that lost its outbox resumes above
    ``max_seq``). 404 when the hub has no batch from it yet."""
    if caller is not None and caller.device_id != device_id:
        raise HTTPException(403, f"device {caller.device_id} may not read {device_id}")
    state = await run_in_threadpool(_read, engine, device_id)
    if state is None:
        raise HTTPException(404, f"the hub has received nothing from device {device_id!r}")
    return state
