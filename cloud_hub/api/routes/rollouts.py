"""``/api/v1/rollouts`` (HQ admins: create, list, read with the audit trail, pause, resume,
abort) and the device twin routes ``/api/v1/devices/{id}/desired`` and ``/reported`` (the
device itself, with its secret)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import AUTH_RESPONSES, ErrorDetail, require
from cloud_hub.api.deps import DeviceDep, EngineDep
from cloud_hub.core.security import Caller, Permission
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.rollout_gates import PlanError
from cloud_hub.services.rollouts import (
    RolloutConflict,
    RolloutCreate,
    RolloutDetail,
    RolloutList,
    RolloutNotFound,
    RolloutState,
    abort_rollout,
    create_rollout,
    desired_state,
    get_rollout,
    list_rollouts,
    pause_rollout,
    record_report,
    resume_rollout,
)
from common.topics import DeviceTopics
from common.twin import DesiredState, ReportedState

router = APIRouter(prefix="/rollouts", tags=["rollouts"])
device_router = APIRouter(prefix="/devices", tags=["devices"])

RolloutsAdmin = Annotated[Caller, Depends(require(Permission.MODELS_ADMIN))]
RolloutPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the rollout's id")]
DevicePath = Annotated[str, Path(pattern=STORE_ID_PATTERN, description="the device's id")]
ROLLOUT_RESPONSES = {
    **AUTH_RESPONSES,
    404: {"model": ErrorDetail, "description": "no such rollout"},
    409: {"model": ErrorDetail, "description": "not in a state this change applies to"},
}


class AbortRequest(BaseModel):
    """Why a rollout is aborted (for the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000)


def _http(exc: Exception) -> HTTPException:
    if isinstance(exc, RolloutNotFound):
        return HTTPException(404, str(exc))
    if isinstance(exc, RolloutConflict):
        return HTTPException(409, str(exc))
    return HTTPException(400, str(exc))


@router.post(
    "",
    response_model=RolloutDetail,
    status_code=201,
    responses={
        **ROLLOUT_RESPONSES,
        400: {"model": ErrorDetail, "description": "targets or waves that cannot be planned"},
        404: {"model": ErrorDetail, "description": "no such model in the registry"},
        409: {"model": ErrorDetail, "description": "a target device is in another rollout"},
    },
)
async def create(request: RolloutCreate, caller: RolloutsAdmin, engine: EngineDep) -> RolloutDetail:
    """Start rolling a registry model out: the first wave's devices get it as desired state
    at once; each later wave starts when the one before passes its gates."""

    def write() -> RolloutDetail:
        with engine.begin() as conn:
            return create_rollout(conn, request, actor=caller.name, now=time.time())

    try:
        return await run_in_threadpool(write)
    except (RolloutNotFound, RolloutConflict, PlanError) as exc:
        raise _http(exc) from None


@router.get("", response_model=RolloutList, responses=AUTH_RESPONSES)
async def rollouts(
    caller: RolloutsAdmin, engine: EngineDep, state: RolloutState | None = None
) -> RolloutList:
    """Rollouts, newest first."""

    def read() -> RolloutList:
        with engine.connect() as conn:
            return list_rollouts(conn, state)

    return await run_in_threadpool(read)


@router.get("/{rollout_id}", response_model=RolloutDetail, responses=ROLLOUT_RESPONSES)
async def rollout(
    rollout_id: RolloutPath, caller: RolloutsAdmin, engine: EngineDep
) -> RolloutDetail:
    """A rollout with every device's step and the audit trail (who did what, when)."""

    def read() -> RolloutDetail:
        with engine.connect() as conn:
            return get_rollout(conn, rollout_id)

    try:
        return await run_in_threadpool(read)
    except RolloutNotFound as exc:
        raise _http(exc) from None


async def _change(engine: EngineDep, action: object) -> RolloutDetail:
    def write() -> RolloutDetail:
        with engine.begin() as conn:
            return action(conn)  # type: ignore[operator]

    try:
        return await run_in_threadpool(write)
    except (RolloutNotFound, RolloutConflict) as exc:
        raise _http(exc) from None


@router.post("/{rollout_id}/pause", response_model=RolloutDetail, responses=ROLLOUT_RESPONSES)
async def pause(rollout_id: RolloutPath, caller: RolloutsAdmin, engine: EngineDep) -> RolloutDetail:
    """Stop advancing waves; devices keep their desired state."""
    return await _change(
        engine, lambda conn: pause_rollout(conn, rollout_id, actor=caller.name, now=time.time())
    )


@router.post("/{rollout_id}/resume", response_model=RolloutDetail, responses=ROLLOUT_RESPONSES)
async def resume(
    rollout_id: RolloutPath, caller: RolloutsAdmin, engine: EngineDep
) -> RolloutDetail:
    """Go on from the current wave (its timeout counts afresh)."""
    return await _change(
        engine, lambda conn: resume_rollout(conn, rollout_id, actor=caller.name, now=time.time())
    )


@router.post("/{rollout_id}/abort", response_model=RolloutDetail, responses=ROLLOUT_RESPONSES)
async def abort(
    rollout_id: RolloutPath,
    caller: RolloutsAdmin,
    engine: EngineDep,
    body: AbortRequest | None = None,
) -> RolloutDetail:
    """Halt; every device the rollout reached gets its previous model back."""
    reason = body.reason if body is not None else None
    return await _change(
        engine,
        lambda conn: abort_rollout(
            conn, rollout_id, actor=caller.name, now=time.time(), reason=reason
        ),
    )


# -- device twin ---------------------------------------------------------------------------------

DEVICE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "no device secret, or an unknown one"},
    403: {"model": ErrorDetail, "description": "the secret belongs to another device"},
}


def the_device(caller: DeviceTopics | None, device_id: str) -> DeviceTopics:
    """The calling device, when it is ``device_id`` itself (401 without a device secret, 403
    for another device)."""
    if caller is None:
        raise HTTPException(401, "the device twin needs the device's secret (retail-edge enroll)")
    if caller.device_id != device_id:
        raise HTTPException(403, f"device {caller.device_id} may not use {device_id}'s twin")
    return caller


@device_router.get("/{device_id}/desired", response_model=DesiredState, responses=DEVICE_RESPONSES)
async def desired(device_id: DevicePath, caller: DeviceDep, engine: EngineDep) -> DesiredState:
    """What the hub wants this device to run (model null: its own config's)."""
    me = the_device(caller, device_id)

    def read() -> DesiredState:
        with engine.connect() as conn:
            return desired_state(conn, me.device_id, me.store_id)

    return await run_in_threadpool(read)


@device_router.post(
    "/{device_id}/reported", status_code=204, responses=DEVICE_RESPONSES, response_model=None
)
async def reported(
    device_id: DevicePath, report: ReportedState, caller: DeviceDep, engine: EngineDep
) -> None:
    """One step of this device towards its desired model (downloaded, verified, loaded,
    smoke_passed with the smoke test's numbers, switched, or failed with a reason); the
    rollout's gate runs at once."""
    me = the_device(caller, device_id)

    def write() -> None:
        with engine.begin() as conn:
            record_report(conn, me.device_id, me.store_id, report, time.time())

    await run_in_threadpool(write)
