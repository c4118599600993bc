"""``/api/v1/alerts``: list, read, acknowledge and resolve alerts; store threshold rules.

Scoping as everywhere: a key sees the alerts of its stores only, and an alert of another store
answers 404 exactly like one that does not exist. Store managers acknowledge and resolve their
stores' alerts; integrators only read; HQ admins also set the threshold rules.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import (
    AUTH_RESPONSES,
    STORE_RESPONSES,
    ErrorDetail,
    require,
    visible_store,
)
from cloud_hub.api.deps import EngineDep
from cloud_hub.api.params import DEFAULT_LIMIT, CameraQuery, Limit, Offset, invalid_range
from cloud_hub.core.security import Caller, Permission
from cloud_hub.services.alerts import (
    AlertConflictError,
    AlertFilter,
    AlertKind,
    AlertOut,
    AlertPage,
    AlertState,
    acknowledge_alert,
    get_alert,
    list_alerts,
    resolve_alert,
)
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.calendar import RangeError
from cloud_hub.services.thresholds import (
    ThresholdIn,
    ThresholdOut,
    ThresholdPage,
    delete_threshold,
    list_thresholds,
    put_threshold,
)

router = APIRouter(prefix="/alerts", tags=["alerts"])

AlertsReader = Annotated[Caller, Depends(require(Permission.ALERTS_READ))]
AlertsWriter = Annotated[Caller, Depends(require(Permission.ALERTS_WRITE))]
RulesWriter = Annotated[Caller, Depends(require(Permission.ALERT_RULES_WRITE))]

AlertIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the alert's id")]
StorePath = Annotated[str, Path(pattern=STORE_ID_PATTERN, description="the store's id")]
RulePath = Annotated[str, Path(pattern=STORE_ID_PATTERN, description="the rule's id")]
StoreFilter = Annotated[str | None, Query(pattern=STORE_ID_PATTERN, description="only this store")]
ALERT_RESPONSES = {
    **AUTH_RESPONSES,
    404: {"model": ErrorDetail, "description": "no such alert, or one of another store"},
}


def _instant(name: str, value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise invalid_range(RangeError(name, f"{name} needs a UTC offset (Z or +01:00)"))
    return value.timestamp()


def _not_found(alert_id: int) -> HTTPException:
    return HTTPException(404, f"alert {alert_id} not found")


# -- threshold rules (before /{alert_id}, which would take "rules" for an id) ----------------


@router.get("/rules", response_model=ThresholdPage, responses=STORE_RESPONSES)
async def rules(
    caller: AlertsReader,
    engine: EngineDep,
    store_id: StoreFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> ThresholdPage:
    """Store threshold rules of the key's stores, by store and rule id."""

    def read() -> ThresholdPage:
        with engine.connect() as conn:
            scope = None if caller.store_ids is None else sorted(caller.store_ids)
            if store_id is not None:
                scope = [visible_store(conn, caller, store_id).store_id]
            return list_thresholds(conn, scope, limit, offset)

    return await run_in_threadpool(read)


@router.put(
    "/rules/{store_id}/{rule_id}",
    response_model=ThresholdOut,
    responses={
        **AUTH_RESPONSES,
        201: {"model": ThresholdOut, "description": "rule created"},
        400: {"model": ErrorDetail, "description": "the body is not JSON"},
        404: {"model": ErrorDetail, "description": "no such store (PUT /stores/{id} first)"},
    },
)
async def set_rule(
    store_id: StorePath,
    rule_id: RulePath,
    rule: ThresholdIn,
    caller: RulesWriter,
    engine: EngineDep,
    response: Response,
) -> ThresholdOut:
    """Create or replace a store threshold rule (HQ admins) of a store the hub knows (one that
    has reported, or was set up with ``PUT /stores/{id}``: a mistyped id fails here rather
    than never firing). A replaced rule starts afresh: its live alert resolves."""

    def write() -> tuple[ThresholdOut, bool]:
        with engine.begin() as conn:
            visible_store(conn, caller, store_id)
            return put_threshold(conn, store_id, rule_id, rule, time.time())

    saved, created = await run_in_threadpool(write)
    if created:
        response.status_code = 201
    return saved


@router.delete(
    "/rules/{store_id}/{rule_id}",
    status_code=204,
    response_class=Response,
    responses={
        **AUTH_RESPONSES,
        204: {"description": "deleted"},
        404: {"model": ErrorDetail, "description": "no such rule"},
    },
)
async def remove_rule(
    store_id: StorePath, rule_id: RulePath, caller: RulesWriter, engine: EngineDep
) -> Response:
    """Delete a store threshold rule (HQ admins); its live alert resolves."""

    def write() -> bool:
        with engine.begin() as conn:
            return delete_threshold(conn, store_id, rule_id, time.time())

    if not await run_in_threadpool(write):
        raise HTTPException(404, f"no rule {rule_id!r} for store {store_id!r}")
    return Response(status_code=204)


# -- alerts ------------------------------------------------------------------------------------


@router.get("", response_model=AlertPage, responses=STORE_RESPONSES)
async def alerts(
    caller: AlertsReader,
    engine: EngineDep,
    store_id: StoreFilter = None,
    camera_id: CameraQuery = None,
    kind: AlertKind | None = None,
    rule_id: Annotated[
        str | None, Query(pattern=STORE_ID_PATTERN, description="only this rule")
    ] = None,
    state: AlertState | None = None,
    start: Annotated[
        datetime | None,
        Query(description="raised at or after: ISO 8601 with a UTC offset"),
    ] = None,
    end: Annotated[datetime | None, Query(description="raised before (exclusive)")] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> AlertPage:
    """Alerts of the key's stores, newest raise first, filtered by store, camera, kind, rule,
    state and raise time."""
    t0, t1 = _instant("start", start), _instant("end", end)

    def read() -> AlertPage:
        with engine.connect() as conn:
            scope = None if caller.store_ids is None else sorted(caller.store_ids)
            if store_id is not None:
                scope = [visible_store(conn, caller, store_id).store_id]
            f = AlertFilter(scope, camera_id, kind, rule_id, state, t0, t1)
            return list_alerts(conn, f, limit, offset)

    return await run_in_threadpool(read)


@router.get("/{alert_id}", response_model=AlertOut, responses=ALERT_RESPONSES)
async def alert(alert_id: AlertIdPath, caller: AlertsReader, engine: EngineDep) -> AlertOut:
    """One alert."""

    def read() -> AlertOut | None:
        with engine.connect() as conn:
            return get_alert(conn, alert_id)

    found = await run_in_threadpool(read)
    if found is None or not caller.sees(found.store_id):
        raise _not_found(alert_id)
    return found


@router.post(
    "/{alert_id}/ack",
    response_model=AlertOut,
    responses={
        **ALERT_RESPONSES,
        409: {"model": ErrorDetail, "description": "the alert is resolved already"},
    },
)
async def ack(alert_id: AlertIdPath, caller: AlertsWriter, engine: EngineDep) -> AlertOut:
    """Acknowledge an open alert: someone is on it. Records the key's name and id and the
    time; acknowledging it again changes nothing."""

    def write() -> AlertOut | None:
        with engine.begin() as conn:
            found = get_alert(conn, alert_id)
            if found is None or not caller.sees(found.store_id):
                return None
            return acknowledge_alert(conn, alert_id, caller.name, caller.key_id, time.time())

    try:
        done = await run_in_threadpool(write)
    except AlertConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    if done is None:
        raise _not_found(alert_id)
    return done


@router.post("/{alert_id}/resolve", response_model=AlertOut, responses=ALERT_RESPONSES)
async def resolve(alert_id: AlertIdPath, caller: AlertsWriter, engine: EngineDep) -> AlertOut:
    """Resolve an alert (open or acknowledged). Records the key's name and id and the time;
    resolving it again changes nothing."""

    def write() -> AlertOut | None:
        with engine.begin() as conn:
            found = get_alert(conn, alert_id)
            if found is None or not caller.sees(found.store_id):
                return None
            return resolve_alert(conn, alert_id, caller.name, caller.key_id, time.time())

    done = await run_in_threadpool(write)
    if done is None:
        raise _not_found(alert_id)
    return done
