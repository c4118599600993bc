"""The hub's Prometheus metrics, scraped from a real hub process: ingest outcomes and lag
count what was actually sent, API latency is labelled by route template (never by raw path)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.sync import encode_batch
from tests.cloud_hub.batches import batch, counter, numbered
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^([^{\s]+)(?:\{(.*)\})?\s+(\S+)$", line)
        if m is None or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if got == labels:
            return float(m.group(3))
    return 0.0


def test_metrics_count_ingest_outcomes_and_time_routes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        key, _ = create_api_key(conn, Role.HQ_ADMIN, now=time.time())
    engine.dispose()
    hub = HubProcess(tmp_path / "hub")
    hub.start(url, env={"RETAIL_HUB_RUN_JOBS": "false"})
    try:
        secret = hub.enroll("s1", "m-box")
        headers = {"Authorization": f"Bearer {secret}", "Content-Encoding": "gzip"}
        first = encode_batch(
            batch(numbered([counter(1), counter(2, target="b")]), device_id="m-box")
        )
        for body in (first, first):  # the second send is all duplicates
            r = httpx.post(hub.url + "/api/v1/ingest/telemetry", content=body, headers=headers)
            assert r.status_code == 200, r.text
        garbage = httpx.post(
            hub.url + "/api/v1/ingest/telemetry",
            content=b"{not json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert garbage.status_code == 400
        for store in ("s1", "nope"):
            httpx.get(
                f"{hub.url}/api/v1/stores/{store}", headers={"Authorization": f"Bearer {key}"}
            )
        text = httpx.get(hub.url + "/metrics").text
        assert _sample(text, "retail_hub_ingest_records_total", outcome="new") == 2
        assert _sample(text, "retail_hub_ingest_records_total", outcome="duplicate") == 2
        assert _sample(text, "retail_hub_ingest_batches_total", result="acked") == 2
        assert _sample(text, "retail_hub_ingest_batches_total", result="rejected") == 1
        assert _sample(text, "retail_hub_ingest_lag_seconds_count") == 2
        # The batches' records were made at T0 (2026): the lag is their age at commit.
        assert _sample(text, "retail_hub_ingest_lag_seconds_bucket", le="60.0") == 0
        route = {"method": "GET", "route": "/api/v1/stores/{store_id}"}
        assert (
            _sample(text, "retail_hub_http_request_duration_seconds_count", **route, status="2xx")
            == 1
        )
        assert (
            _sample(text, "retail_hub_http_request_duration_seconds_count", **route, status="4xx")
            == 1
        )
        assert "nope" not in text and secret not in text
    finally:
        assert hub.stop() in CLEAN_EXIT, hub.log()
