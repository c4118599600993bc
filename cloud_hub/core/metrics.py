"""Prometheus metrics of a hub process: ingest rate, outcomes and lag, and API latency.

``retail-hub serve`` exposes them at ``GET /metrics``; ``retail-hub worker`` on
``RETAIL_HUB_WORKER_METRICS_PORT`` when set. Each process counts its own work: Prometheus sums
the replicas. Label values are bounded (route templates, never raw paths or ids).
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.sync import BatchAck, TelemetryBatch

INGEST_RECORDS = Counter(
    "retail_hub_ingest_records_total",
    "Records ingested, by outcome (new, duplicate, dead_letter)",
    ["outcome"],
)
INGEST_BATCHES = Counter(
    "retail_hub_ingest_batches_total", "Payloads ingested, by result (acked, rejected)", ["result"]
)
INGEST_LAG = Histogram(
    "retail_hub_ingest_lag_seconds",
    "Age of a batch's oldest record when the hub committed it (edge clock to hub clock)",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600),
)
API_LATENCY = Histogram(
    "retail_hub_http_request_duration_seconds",
    "API request duration, by method, route template and status class",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


def observe_ack(batch: TelemetryBatch, ack: BatchAck, received_at: float) -> None:
    """Count a committed batch: its new, duplicate and dead-lettered records, and its lag."""
    INGEST_BATCHES.labels("acked").inc()
    held = sum(b - a + 1 for a, b in ack.committed)
    INGEST_RECORDS.labels("new").inc(max(0, held - ack.duplicates))
    INGEST_RECORDS.labels("duplicate").inc(ack.duplicates)
    INGEST_RECORDS.labels("dead_letter").inc(len(ack.dead_lettered))
    if batch.records:
        INGEST_LAG.observe(max(0.0, received_at - min(r.created_at for r in batch.records)))


def observe_rejected() -> None:
    """Count a payload refused whole (kept as a dead letter)."""
    INGEST_BATCHES.labels("rejected").inc()


class RequestTimer:
    """ASGI middleware timing every ``/api/`` request under its route template."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix  # the API router's mount prefix: route templates come without it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            template = "unmatched" if path is None else self.prefix + str(path)
            API_LATENCY.labels(scope["method"], template, f"{status[0] // 100}xx").observe(
                time.perf_counter() - start
            )
