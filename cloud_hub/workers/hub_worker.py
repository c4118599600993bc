"""``retail-hub worker``: the MQTT ingest worker, the device status listener and the periodic
jobs in one process, sharing one database engine, until ``stop`` is set."""

from __future__ import annotations

import logging
import threading

from cloud_hub.core.config import HubSettings
from cloud_hub.db import create_hub_engine
from cloud_hub.workers.device_status import DeviceStatusListener
from cloud_hub.workers.jobs import HubJobs
from cloud_hub.workers.mqtt_ingest import MqttIngestWorker

log = logging.getLogger(__name__)


def run_hub_worker(settings: HubSettings, stop: threading.Event) -> None:
    """Ingest telemetry (this thread), follow device status and run the jobs (their own
    threads) until ``stop`` is set; then stop all three."""
    engine = create_hub_engine(settings.database_url, pool_size=2)
    status = DeviceStatusListener(settings, engine)
    jobs = HubJobs(engine, settings)
    status.start()
    jobs.start()
    try:
        MqttIngestWorker(settings, engine).run(stop)
    finally:
        jobs.stop()
        status.stop()
        engine.dispose()
