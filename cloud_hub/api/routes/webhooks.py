"""``/api/v1/webhooks``: outgoing webhooks for alert events (HQ admins only).

``POST`` registers one and answers its signing secret, once; ``GET`` lists and reads them;
``DELETE`` removes one (its pending deliveries are cancelled); ``GET /{id}/deliveries`` is the
delivery log with every attempt.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import AUTH_RESPONSES, ErrorDetail, require, visible_store
from cloud_hub.api.deps import EngineDep, SettingsDep
from cloud_hub.api.params import DEFAULT_LIMIT, Limit, Offset
from cloud_hub.core.security import Caller, Permission
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.webhook_destinations import DestinationRefused, check_literal
from cloud_hub.services.webhooks import (
    DeliveryPage,
    DeliveryState,
    WebhookCreate,
    WebhookCreated,
    WebhookKeyError,
    WebhookOut,
    WebhookPage,
    create_webhook,
    delete_webhook,
    get_webhook,
    list_deliveries,
    list_webhooks,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

WebhooksAdmin = Annotated[Caller, Depends(require(Permission.WEBHOOKS_ADMIN))]
WebhookIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the webhook's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "no such webhook (or deleted)"}
}


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={
        **AUTH_RESPONSES,
        400: {"model": ErrorDetail, "description": "the body is not JSON"},
        404: {"model": ErrorDetail, "description": "no such store (PUT /stores/{id} first)"},
        409: {
            "model": ErrorDetail,
            "description": "the hub has no webhook key (RETAIL_HUB_WEBHOOK_KEY) to make secrets",
        },
    },
)
async def register(
    spec: WebhookCreate, caller: WebhooksAdmin, engine: EngineDep, settings: SettingsDep
) -> WebhookCreated:
    """Register a webhook for one store's alerts (``store_id``, a store the hub knows) or every
    store's (null). The answer holds the signing secret: it is shown this once."""
    hub_key = settings.webhook_key.get_secret_value() if settings.webhook_key else None
    if not settings.webhook_allow_private:
        try:
            check_literal(str(spec.url))
        except DestinationRefused as exc:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("body", "url"), "msg": str(exc), "input": None}]
            ) from None

    def write() -> WebhookCreated:
        with engine.begin() as conn:
            if spec.store_id is not None:
                visible_store(conn, caller, spec.store_id)
            return create_webhook(conn, spec, hub_key, caller.name, time.time())

    try:
        return await run_in_threadpool(write)
    except WebhookKeyError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("", response_model=WebhookPage, responses=AUTH_RESPONSES)
async def webhooks(
    caller: WebhooksAdmin,
    engine: EngineDep,
    store_id: Annotated[
        str | None,
        Query(pattern=STORE_ID_PATTERN, description="webhooks this store's alerts go to"),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> WebhookPage:
    """Registered webhooks by id (never their secrets)."""

    def read() -> WebhookPage:
        with engine.connect() as conn:
            return list_webhooks(conn, store_id, limit, offset)

    return await run_in_threadpool(read)


@router.get("/{webhook_id}", response_model=WebhookOut, responses={**AUTH_RESPONSES, **NOT_FOUND})
async def webhook(
    webhook_id: WebhookIdPath, caller: WebhooksAdmin, engine: EngineDep
) -> WebhookOut:
    """One webhook."""

    def read() -> WebhookOut | None:
        with engine.connect() as conn:
            return get_webhook(conn, webhook_id)

    found = await run_in_threadpool(read)
    if found is None:
        raise HTTPException(404, f"webhook {webhook_id} not found")
    return found


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_RESPONSES, 204: {"description": "deleted"}, **NOT_FOUND},
)
async def remove(webhook_id: WebhookIdPath, caller: WebhooksAdmin, engine: EngineDep) -> Response:
    """Delete a webhook; its pending deliveries are cancelled (its log stays in the database)."""

    def write() -> bool:
        with engine.begin() as conn:
            return delete_webhook(conn, webhook_id, time.time())

    if not await run_in_threadpool(write):
        raise HTTPException(404, f"webhook {webhook_id} not found")
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def deliveries(
    webhook_id: WebhookIdPath,
    caller: WebhooksAdmin,
    engine: EngineDep,
    state: Annotated[DeliveryState | None, Query(description="only this state")] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> DeliveryPage:
    """The webhook's delivery log, newest first: each event's state, attempts, last status
    and error, and every attempt (time, status code, error, duration)."""

    def read() -> DeliveryPage | None:
        with engine.connect() as conn:
            if get_webhook(conn, webhook_id) is None:
                return None
            return list_deliveries(conn, webhook_id, state, limit, offset)

    found = await run_in_threadpool(read)
    if found is None:
        raise HTTPException(404, f"webhook {webhook_id} not found")
    return found
