"""``retail-hub worker``: the MQTT ingest worker, the device status listener, the periodic
jobs (with the desired-state publisher) and the video job runner in one process, sharing one
database engine, until ``stop`` is set; Prometheus metrics on ``RETAIL_HUB_WORKER_METRICS_PORT``
when set."""

from __future__ import annotations

import logging
import threading

from prometheus_client import start_http_server

from cloud_hub.core.config import HubSettings
from cloud_hub.db import create_hub_engine
from cloud_hub.workers.device_status import DeviceStatusListener
from cloud_hub.workers.jobs import HubJobs
from cloud_hub.workers.mqtt_ingest import MqttIngestWorker
from cloud_hub.workers.video_jobs import VideoJobRunner

log = logging.getLogger(__name__)


def run_hub_worker(settings: HubSettings, stop: threading.Event) -> None:
    """Ingest telemetry (this thread), follow device status and run the jobs (their own
    threads) until ``stop`` is set; then stop all three."""
    engine = create_hub_engine(settings.database_url, pool_size=2)
    status = DeviceStatusListener(settings, engine)
    jobs = HubJobs(engine, settings, broker=True)  # with desired-state publishing
    videos = VideoJobRunner(engine, settings) if settings.video_jobs else None
    metrics = None
    if settings.worker_metrics_port:
        metrics, _ = start_http_server(settings.worker_metrics_port, settings.worker_metrics_addr)
        log.info(
            "metrics at http://%s:%d/metrics",
            settings.worker_metrics_addr,
            settings.worker_metrics_port,
        )
    status.start()
    jobs.start()
    if videos is not None:
        videos.start()
    try:
        MqttIngestWorker(settings, engine).run(stop)
    finally:
        if videos is not None:
            videos.stop()
        jobs.stop()
        status.stop()
        if metrics is not None:
            metrics.shutdown()
        engine.dispose()
