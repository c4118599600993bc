"""Store layouts: ``/api/v1/stores/{id}/configs`` (versions: HQ admins create, store-scoped
reads), ``/api/v1/config-rollouts`` (HQ admins start and abort; store-scoped reads) and the
device's ``POST /api/v1/devices/{id}/reported/config`` (the device itself, with its secret)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import AUTH_RESPONSES, STORE_RESPONSES, ErrorDetail, require, visible_store
from cloud_hub.api.deps import DeviceDep, EngineDep
from cloud_hub.api.params import DEFAULT_LIMIT, Limit, Offset, StoreIdPath
from cloud_hub.api.routes.rollouts import DEVICE_RESPONSES, AbortRequest, DevicePath, the_device
from cloud_hub.core.security import Caller, Permission
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.config_rollout_reads import (
    ConfigRolloutConflict,
    ConfigRolloutDetail,
    ConfigRolloutList,
    ConfigRolloutNotFound,
    ConfigRolloutState,
    get_config_rollout,
    list_config_rollouts,
)
from cloud_hub.services.config_rollouts import (
    ConfigRolloutCreate,
    abort_config_rollout,
    create_config_rollout,
    record_config_report,
)
from cloud_hub.services.store_configs import (
    LayoutRejected,
    StoreConfigCreate,
    StoreConfigOut,
    StoreConfigPage,
    StoreNotFound,
    create_config,
    get_config,
    list_configs,
)
from common.twin import ConfigReport

store_router = APIRouter(prefix="/stores", tags=["configs"])
router = APIRouter(prefix="/config-rollouts", tags=["configs"])
device_router = APIRouter(prefix="/devices", tags=["devices"])

ConfigsReader = Annotated[Caller, Depends(require(Permission.CONFIGS_READ))]
ConfigsWriter = Annotated[Caller, Depends(require(Permission.CONFIGS_WRITE))]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the layout version")]
RolloutPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the config rollout's id")]
ROLLOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"model": ErrorDetail, "description": "no such config rollout (or not of the key's)"},
}


# -- layout versions -----------------------------------------------------------------------------


@store_router.post(
    "/{store_id}/configs",
    response_model=StoreConfigOut,
    status_code=201,
    responses={
        **AUTH_RESPONSES,
        404: {"model": ErrorDetail, "description": "the hub does not know the store"},
    },
)
async def create_version(
    store_id: StoreIdPath, request: StoreConfigCreate, caller: ConfigsWriter, engine: EngineDep
) -> StoreConfigOut:
    """Store a layout as the store's next version (1, 2, 3...; never changed afterwards). A
    layout the hub refuses is a 422 naming the field under ``body.layout``."""

    def write() -> StoreConfigOut:
        with engine.begin() as conn:
            return create_config(conn, store_id, request, actor=caller.name, now=time.time())

    try:
        return await run_in_threadpool(write)
    except StoreNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except LayoutRejected as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", *exc.loc), "msg": exc.message, "input": None}]
        ) from None


@store_router.get("/{store_id}/configs", response_model=StoreConfigPage, responses=STORE_RESPONSES)
async def versions(
    store_id: StoreIdPath,
    caller: ConfigsReader,
    engine: EngineDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> StoreConfigPage:
    """The store's layout versions, newest first."""

    def read() -> StoreConfigPage:
        with engine.connect() as conn:
            visible_store(conn, caller, store_id)
            return list_configs(conn, store_id, limit, offset)

    return await run_in_threadpool(read)


@store_router.get(
    "/{store_id}/configs/{version}",
    response_model=StoreConfigOut,
    responses={
        **AUTH_RESPONSES,
        404: {"model": ErrorDetail, "description": "no such store (or not the key's) or version"},
    },
)
async def version(
    store_id: StoreIdPath, version: VersionPath, caller: ConfigsReader, engine: EngineDep
) -> StoreConfigOut:
    """One layout version of the store."""

    def read() -> StoreConfigOut | None:
        with engine.connect() as conn:
            visible_store(conn, caller, store_id)
            return get_config(conn, store_id, version)

    found = await run_in_threadpool(read)
    if found is None:
        raise HTTPException(404, f"store {store_id!r} has no layout version {version}")
    return found


# -- config rollouts -----------------------------------------------------------------------------


@router.post(
    "",
    response_model=ConfigRolloutDetail,
    status_code=201,
    responses={
        **AUTH_RESPONSES,
        404: {"model": ErrorDetail, "description": "no such layout version of the store"},
        409: {
            "model": ErrorDetail,
            "description": "a config rollout runs in the store already, or it has no device",
        },
    },
)
async def create_rollout(
    request: ConfigRolloutCreate, caller: ConfigsWriter, engine: EngineDep
) -> ConfigRolloutDetail:
    """Roll a layout version out to its store's devices: the canary (the store's first
    enrolled device) gets it as desired layout at once, the others once the canary applied it.
    A device's ``failed`` report, or a wave not applied within ``wave_timeout_s``, gives every
    device reached its previous layout back (``rolled_back``)."""

    def write() -> ConfigRolloutDetail:
        with engine.begin() as conn:
            return create_config_rollout(conn, request, actor=caller.name, now=time.time())

    try:
        return await run_in_threadpool(write)
    except ConfigRolloutNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except ConfigRolloutConflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("", response_model=ConfigRolloutList, responses=AUTH_RESPONSES)
async def rollouts(
    caller: ConfigsReader,
    engine: EngineDep,
    store_id: Annotated[
        str | None, Query(pattern=STORE_ID_PATTERN, description="only this store")
    ] = None,
    state: ConfigRolloutState | None = None,
) -> ConfigRolloutList:
    """Config rollouts of the key's stores, newest first (optionally of one store, one state)."""

    def read() -> ConfigRolloutList:
        with engine.connect() as conn:
            return list_config_rollouts(conn, caller.store_ids, store_id, state)

    return await run_in_threadpool(read)


def _visible_rollout(engine: EngineDep, caller: Caller, rollout_id: int) -> ConfigRolloutDetail:
    with engine.connect() as conn:
        found = get_config_rollout(conn, rollout_id)
    if not caller.sees(found.store_id):
        raise ConfigRolloutNotFound(f"config rollout {rollout_id} not found")
    return found


@router.get("/{rollout_id}", response_model=ConfigRolloutDetail, responses=ROLLOUT_RESPONSES)
async def rollout(
    rollout_id: RolloutPath, caller: ConfigsReader, engine: EngineDep
) -> ConfigRolloutDetail:
    """A config rollout with every device's step and the audit trail (who did what, when)."""
    try:
        return await run_in_threadpool(_visible_rollout, engine, caller, rollout_id)
    except ConfigRolloutNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post(
    "/{rollout_id}/abort",
    response_model=ConfigRolloutDetail,
    responses={
        **ROLLOUT_RESPONSES,
        409: {"model": ErrorDetail, "description": "the rollout has finished already"},
    },
)
async def abort(
    rollout_id: RolloutPath,
    caller: ConfigsWriter,
    engine: EngineDep,
    body: AbortRequest | None = None,
) -> ConfigRolloutDetail:
    """Halt; every device the rollout reached gets its previous layout back."""
    reason = body.reason if body is not None else None

    def write() -> ConfigRolloutDetail:
        with engine.begin() as conn:
            return abort_config_rollout(
                conn, rollout_id, actor=caller.name, now=time.time(), reason=reason
            )

    try:
        return await run_in_threadpool(write)
    except ConfigRolloutNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except ConfigRolloutConflict as exc:
        raise HTTPException(409, str(exc)) from None


# -- the device ----------------------------------------------------------------------------------


@device_router.post(
    "/{device_id}/reported/config", status_code=204, responses=DEVICE_RESPONSES, response_model=None
)
async def reported_config(
    device_id: DevicePath, report: ConfigReport, caller: DeviceDep, engine: EngineDep
) -> None:
    """One step of this device towards (or away from) its desired layout: ``validated``,
    ``applied`` (it runs with it and stayed healthy through its trial) or ``failed`` (with a
    reason; its previous layout runs again). The config rollout's gate runs at once."""
    me = the_device(caller, device_id)

    def write() -> None:
        with engine.begin() as conn:
            record_config_report(conn, me.device_id, me.store_id, report, time.time())

    await run_in_threadpool(write)
