"""``/api/v1/devices``: enrollment (one-time token in, device secret out), the device list,
revocation, and a device's own sync state."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import AUTH_RESPONSES, ErrorDetail, StoresReader, StoresWriter
from cloud_hub.api.deps import DeviceDep, EngineDep, SettingsDep
from cloud_hub.api.params import DEFAULT_LIMIT, Limit, Offset
from cloud_hub.services.devices import DeviceSyncState, device_sync_state
from cloud_hub.services.enrollment import (
    DeviceConflictError,
    DeviceCredentialsOut,
    DevicePage,
    EnrollmentTokenOut,
    EnrollmentTokenRequest,
    EnrollRequest,
    TokenRejectedError,
    create_enrollment_token,
    enroll_device,
    list_devices,
    revoke_device,
)

router = APIRouter(prefix="/devices", tags=["devices"])


def _read(engine: Engine, device_id: str) -> DeviceSyncState | None:
    with engine.connect() as conn:
        return device_sync_state(conn, device_id)


@router.post(
    "/enrollment-tokens",
    response_model=EnrollmentTokenOut,
    status_code=201,
    responses=AUTH_RESPONSES,
)
async def new_enrollment_token(
    request: EnrollmentTokenRequest, caller: StoresWriter, engine: EngineDep, settings: SettingsDep
) -> EnrollmentTokenOut:
    """A one-time token that enrolls one new box into the store (HQ admins). Shown once."""
    ttl = request.ttl_s if request.ttl_s is not None else settings.enrollment_token_ttl_s

    def write() -> EnrollmentTokenOut:
        with engine.begin() as conn:
            return create_enrollment_token(
                conn, request.store_id, created_by=caller.name, now=time.time(), ttl_s=ttl
            )

    return await run_in_threadpool(write)


@router.post(
    "/enroll",
    response_model=DeviceCredentialsOut,
    status_code=201,
    responses={
        401: {"model": ErrorDetail, "description": "token unknown, already used or expired"},
        409: {"model": ErrorDetail, "description": "the device id belongs to another store"},
    },
)
async def enroll(request: EnrollRequest, engine: EngineDep) -> DeviceCredentialsOut:
    """Trade a one-time enrollment token for this device's own secret (shown once)."""

    def write() -> DeviceCredentialsOut:
        with engine.begin() as conn:
            return enroll_device(conn, request, now=time.time())

    try:
        return await run_in_threadpool(write)
    except TokenRejectedError as exc:
        raise HTTPException(401, str(exc)) from exc
    except DeviceConflictError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.get("", response_model=DevicePage, responses=AUTH_RESPONSES)
async def devices(
    caller: StoresReader, engine: EngineDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> DevicePage:
    """The devices of the key's stores: enrollment, last seen and sync totals."""

    def read() -> DevicePage:
        with engine.connect() as conn:
            return list_devices(conn, caller.store_ids, limit, offset)

    return await run_in_threadpool(read)


@router.post(
    "/{device_id}/revoke",
    status_code=204,
    responses={**AUTH_RESPONSES, 404: {"model": ErrorDetail, "description": "never enrolled"}},
)
async def revoke(device_id: str, caller: StoresWriter, engine: EngineDep) -> Response:
    """Revoke the device's secret (HQ admins): its next call gets 401; it must enroll again."""

    def write() -> bool:
        with engine.begin() as conn:
            return revoke_device(conn, device_id, now=time.time())

    if not await run_in_threadpool(write):
        raise HTTPException(404, f"device {device_id!r} was never enrolled")
    return Response(status_code=204)


@router.get(
    "/{device_id}/sync",
    response_model=DeviceSyncState,
    responses={
        401: {"model": ErrorDetail, "description": "no device secret, or an unknown one"},
        403: {"model": ErrorDetail, "description": "the secret belongs to another device"},
        404: {"description": "the hub has never received a batch from this device"},
    },
)
async def device_sync(device_id: str, engine: EngineDep, caller: DeviceDep) -> DeviceSyncState:
    """The device's ``max_seq`` and record totals (an edge that lost its outbox resumes above
    ``max_seq``). 404 when the hub has no batch from it yet. Only the device itself may ask."""
    if caller is not None and caller.device_id != device_id:
        raise HTTPException(403, f"device {caller.device_id} may not read {device_id}")
    state = await run_in_threadpool(_read, engine, device_id)
    if state is None:
        raise HTTPException(404, f"the hub has received nothing from device {device_id!r}")
    return state
