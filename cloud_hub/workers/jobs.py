"""The hub's periodic jobs, each run once per period across every hub process
(``services.jobs``): snapshot retention, the device offline check, store threshold rules,
rollout gates and webhook delivery. ``retail-hub serve`` and ``retail-hub worker`` both run them
(unless ``RETAIL_HUB_RUN_JOBS=false``); a job whose interval is 0 is off. Only the worker, which
has a broker by definition, also publishes the desired states to the devices' retained MQTT
topics (``services.desired_publish``): an HTTP-only deployment has no broker to publish to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
from sqlalchemy import Engine

from cloud_hub.core.config import HubSettings
from cloud_hub.services.alerts import prune_alerts
from cloud_hub.services.config_rollouts import advance_all as advance_config_rollouts
from cloud_hub.services.desired_publish import DesiredPublishJob
from cloud_hub.services.jobs import Job, JobScheduler, prune_job_runs
from cloud_hub.services.offline import check_devices
from cloud_hub.services.rollouts import advance_all
from cloud_hub.services.rollups_hourly import prune_expired_rollups
from cloud_hub.services.snapshots import delete_expired_snapshots
from cloud_hub.services.thresholds import check_thresholds
from cloud_hub.services.webhooks import DeliveryPolicy, deliver_due, prune_deliveries
from cloud_hub.workers.video_jobs import video_retention

log = logging.getLogger(__name__)


def retention(engine: Engine, settings: HubSettings, now: float) -> None:
    """Delete expired snapshots, old ``job_runs`` claims, old finished webhook deliveries and
    long-resolved alerts."""
    with engine.begin() as conn:
        delete_expired_snapshots(conn, settings.snapshot_retention_days * 86400.0, now)
        prune_expired_rollups(conn, settings.rollup_retention_days, now)
        prune_job_runs(conn, now - settings.job_runs_keep_days * 86400.0)
        prune_deliveries(conn, now - settings.webhook_log_keep_days * 86400.0)
        prune_alerts(conn, now - settings.alert_keep_days * 86400.0)


def offline_check(engine: Engine, settings: HubSettings, now: float) -> None:
    """Open and resolve device_offline alerts."""
    with engine.begin() as conn:
        done = check_devices(conn, now, settings.offline_after_s)
    if done.opened or done.resolved:
        log.info("offline check: %d alert(s) opened, %d resolved", done.opened, done.resolved)


def threshold_check(engine: Engine, settings: HubSettings, now: float) -> None:
    """Evaluate the store threshold rules."""
    with engine.begin() as conn:
        done = check_thresholds(conn, now, settings.threshold_lag_s)
    if done.opened or done.resolved:
        log.info("thresholds: %d alert(s) opened, %d resolved", done.opened, done.resolved)


def rollout_gates(engine: Engine, now: float) -> None:
    """Run the gates of every running rollout (waves that passed or timed out move on)."""
    with engine.begin() as conn:
        done = advance_all(conn, now)
    moved = {i: s.value for i, s in done.items() if s.value != "running"}
    if moved:
        log.info("rollout gates: %s", moved)


def config_rollout_gates(engine: Engine, now: float) -> None:
    """Run the gates of every running config rollout (waves that timed out roll back)."""
    with engine.begin() as conn:
        done = advance_config_rollouts(conn, now)
    moved = {i: s.value for i, s in done.items() if s.value != "running"}
    if moved:
        log.info("config rollout gates: %s", moved)


def delivery_policy(settings: HubSettings) -> DeliveryPolicy:
    """The webhook retry policy the settings describe."""
    return DeliveryPolicy(
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        backoff_max_s=settings.webhook_backoff_max_s,
        timeout_s=settings.webhook_timeout_s,
        allow_private=settings.webhook_allow_private,
    )


def webhook_delivery(engine: Engine, settings: HubSettings, client: httpx.Client) -> None:
    """Send the webhook deliveries that are due."""
    assert settings.webhook_key is not None
    done = deliver_due(
        engine, settings.webhook_key.get_secret_value(), delivery_policy(settings), client
    )
    if done.delivered or done.failed or done.retrying:
        log.info(
            "webhooks: %d delivered, %d to retry, %d failed for good",
            done.delivered, done.retrying, done.failed,
        )  # fmt: skip


def hub_jobs(
    engine: Engine, settings: HubSettings, client: httpx.Client, *, broker: bool = False
) -> list[Job]:
    """The jobs these settings turn on. ``client`` sends the webhooks (its owner closes it).
    Without a webhook key this process does not deliver webhooks (it could not sign them);
    a process that has the key claims those periods instead. ``broker``: this process talks
    to the MQTT broker (``retail-hub worker``) and also publishes the desired states."""

    def every(interval_s: float) -> int:
        return max(1, round(interval_s))

    jobs: list[Job] = []

    def add(name: str, interval_s: float, run: Callable[[float], object]) -> None:
        if interval_s > 0:
            jobs.append(Job(name, every(interval_s), run))

    add("retention", settings.retention_interval_s, lambda now: retention(engine, settings, now))
    add(
        "device_offline",
        settings.offline_check_interval_s,
        lambda now: offline_check(engine, settings, now),
    )
    add(
        "store_thresholds",
        settings.threshold_interval_s,
        lambda now: threshold_check(engine, settings, now),
    )
    add(
        "video_retention",
        settings.video_retention_interval_s,
        lambda now: video_retention(engine, settings, now),
    )
    add(
        "rollout_gates",
        settings.rollout_gate_interval_s,
        lambda now: rollout_gates(engine, now),
    )
    add(
        "config_rollout_gates",
        settings.rollout_gate_interval_s,
        lambda now: config_rollout_gates(engine, now),
    )
    if broker:
        add(
            "desired_publish",
            settings.desired_publish_interval_s,
            DesiredPublishJob(engine, settings).run,
        )
    if settings.webhook_key is None:
        log.info("webhook delivery off in this process: RETAIL_HUB_WEBHOOK_KEY is not set")
    else:
        add(
            "webhook_delivery",
            settings.webhook_interval_s,
            lambda _now: webhook_delivery(engine, settings, client),
        )
    return jobs


class HubJobs:
    """The hub's job scheduler with the HTTP client it sends webhooks with: ``start()`` /
    ``stop()``. Does nothing when ``settings.run_jobs`` is off. ``broker``: as ``hub_jobs``."""

    def __init__(
        self,
        engine: Engine,
        settings: HubSettings,
        clock: Callable[[], float] = time.time,
        *,
        broker: bool = False,
    ) -> None:
        self._client = httpx.Client(follow_redirects=False)
        jobs = hub_jobs(engine, settings, self._client, broker=broker) if settings.run_jobs else []
        self.scheduler = JobScheduler(engine, jobs, clock=clock)

    def start(self) -> None:
        """Start the job threads."""
        self.scheduler.start()

    def stop(self) -> None:
        """Stop the job threads and close the HTTP client."""
        self.scheduler.stop()
        self._client.close()
