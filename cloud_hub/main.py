"""The hub's FastAPI application.

``create_app(settings)`` builds it; its lifespan creates the database engine and disposes of it
at shutdown. Tables are never created here: run ``retail-hub migrate`` first. At start the app
refuses a reachable database whose schema is not at the migrations' head, and starts (health
answering 503) when the database is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.limits import RequestLimits
from cloud_hub.api.main import api_router
from cloud_hub.core.config import HubSettings
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import SchemaOutOfDateError, check_schema_current
from cloud_hub.services.snapshots import delete_expired_snapshots

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


async def _retention_loop(engine: Engine, settings: HubSettings) -> None:
    """Delete expired snapshots now and every ``retention_interval_s``; a failure is logged and
    retried next time (several API replicas running it is harmless: a delete is idempotent)."""

    def once() -> None:
        with engine.begin() as conn:
            delete_expired_snapshots(conn, settings.snapshot_retention_days * 86400.0, time.time())

    while True:
        try:
            await run_in_threadpool(once)
        except SQLAlchemyError as exc:
            log.warning(
                "retention job failed (retried in %.0f s): %s", settings.retention_interval_s, exc
            )
        await asyncio.sleep(settings.retention_interval_s)


def create_app(settings: HubSettings) -> FastAPI:
    """The hub API for ``settings`` (routes under ``/api/v1``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_hub_engine(settings.database_url)
        try:
            check_schema_current(engine)
        except OperationalError as exc:
            log.warning("database unreachable at start (health will say so): %s", exc.orig)
        except SchemaOutOfDateError:
            engine.dispose()
            raise
        app.state.engine = engine
        log.info("hub API up on %s", engine.url.render_as_string(hide_password=True))
        if settings.device_auth == "open":
            log.warning(
                "device_auth is open: ingest trusts the store and device a batch names; "
                "set RETAIL_HUB_DEVICE_AUTH=required outside development"
            )
        retention = None
        if settings.retention_interval_s > 0:
            retention = asyncio.create_task(_retention_loop(engine, settings))
        try:
            yield
        finally:
            if retention is not None:
                retention.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retention
            engine.dispose()

    app = FastAPI(
        title="Retail CV hub",
        description="HQ hub: telemetry ingest from store edge agents, and the HQ read API "
        "(stores, analytics, inventory) behind API keys; see docs/api.md.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(api_router, prefix=API_PREFIX)
    app.add_middleware(
        RequestLimits,
        max_request_bytes=settings.max_request_bytes,
        rate_limit_per_minute=settings.rate_limit_per_minute,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
