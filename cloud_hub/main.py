"""The hub's FastAPI application.

``create_app(settings)`` builds it; its lifespan creates the database engine and disposes of it
at shutdown, and runs the hub's periodic jobs (``workers.jobs``: retention, device offline
check, store thresholds, webhook delivery; each once per period across every hub process)
unless ``RETAIL_HUB_RUN_JOBS`` is off. Tables are never created here: run ``retail-hub
migrate`` first. At start the app refuses a reachable database whose schema is not at the
migrations' head, and starts (health answering 503) when the database is unreachable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.limits import RequestLimits
from cloud_hub.api.main import api_router
from cloud_hub.api.reads import KnownKeys
from cloud_hub.core.config import HubSettings, configure_logging
from cloud_hub.core.metrics import RequestTimer
from cloud_hub.dashboard.router import router as dashboard_router
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import SchemaOutOfDateError, check_schema_current
from cloud_hub.services.jwt_auth import JwtVerifier
from cloud_hub.workers.jobs import HubJobs
from cloud_hub.workers.video_jobs import VideoJobRunner

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def _metrics() -> Response:
    """Prometheus metrics (ingest, API latency), text exposition format: of this process, or
    added up over every worker of ``retail-hub serve --workers N`` (which sets
    ``PROMETHEUS_MULTIPROC_DIR`` for them)."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def create_app_from_env() -> FastAPI:
    """``create_app`` with settings from the environment: what each worker process of
    ``retail-hub serve --workers N`` runs (logging configured as the command does)."""
    settings = HubSettings()
    configure_logging(settings.log_level)
    return create_app(settings)


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
        jobs = HubJobs(engine, settings)
        jobs.start()
        videos = VideoJobRunner(engine, settings) if settings.video_jobs_in_serve else None
        if videos is not None:
            videos.start()
        try:
            yield
        finally:
            if videos is not None:
                await run_in_threadpool(videos.stop)
            await run_in_threadpool(jobs.stop)
            engine.dispose()

    app = FastAPI(
        title="Retail CV hub",
        description="HQ hub: telemetry ingest from store edge agents, and the HQ read API "
        "(stores, analytics, inventory, alerts, webhooks) behind API keys; see docs/api.md.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    configured = settings.jwt_public_key_file is not None or settings.jwt_secret is not None
    app.state.jwt = JwtVerifier(settings) if configured else None
    app.state.known_keys = KnownKeys()  # API keys seen valid (api/reads.py)
    app.include_router(api_router, prefix=API_PREFIX)
    app.add_api_route("/metrics", _metrics, include_in_schema=False, methods=["GET"])
    app.include_router(dashboard_router)  # the dashboard's static pages at /dashboard/
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
    app.add_middleware(
        RequestTimer, prefix=API_PREFIX
    )  # added last, so outermost: times 429s and 413s too
    return app
