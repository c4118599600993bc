"""Scale-out: two hub API processes and two ingest workers on one PostgreSQL and one broker.

100 simulated stores send for a while, half over MQTT (split between the workers by the shared
subscription) and half over HTTP (alternating between the two APIs, each store with its own
enrolled secret); one worker is SIGKILLed mid-run and comes back under the same name, as a
service manager would restart it. Every record lands exactly once and every store's totals are
exact; the periodic jobs, run by all four processes, were claimed once for every period, with
the work spread over more than one process.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from common.sync import BatchAck, encode_batch
from common.topics import DeviceTopics
from tests.cloud_hub.batches import batch, counter, numbered
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.cloud_hub.mqtt_clients import EdgeClient, WorkerProcess
from tests.services import MosquittoProcess, wait_for

STORES = [f"st{i:03d}" for i in range(100)]
ROUNDS = 4
RECORDS = 10  # per batch
JOB_PERIOD_S = 3
JOBS_ENV = {
    "RETAIL_HUB_OFFLINE_CHECK_INTERVAL_S": str(JOB_PERIOD_S),
    "RETAIL_HUB_THRESHOLD_INTERVAL_S": str(JOB_PERIOD_S),
}


def _batch(store: str, round_: int) -> Any:
    bodies = [
        counter(1, bucket_start=1_789_999_980 + 60 * (round_ * RECORDS + k), store_id=store)
        for k in range(RECORDS)
    ]
    return batch(numbered(bodies, first_seq=1 + round_ * RECORDS), f"{store}-box", store)


@pytest.mark.slow
def test_two_apis_and_two_workers_on_one_database_lose_and_repeat_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    broker = MosquittoProcess(tmp_path / "broker")
    broker.start()
    upgrade_database(pg_url)
    apis = [HubProcess(tmp_path / f"api-{i}") for i in range(2)]
    workers = [WorkerProcess(tmp_path, broker.port, pg_url, name) for name in ("w1", "w2")]
    edge: EdgeClient | None = None
    engine = create_hub_engine(pg_url)
    try:
        for api in apis:
            api.start(pg_url, env=JOBS_ENV)
        for w in workers:
            w.env.update(JOBS_ENV)
            w.start()
        mqtt_stores, http_stores = STORES[:50], STORES[50:]
        secrets = {s: apis[i % 2].enroll(s, f"{s}-box") for i, s in enumerate(http_stores)}
        edge = EdgeClient(broker.port)
        http = httpx.Client(timeout=60)
        turn = itertools.cycle(apis)

        def send_round(round_: int) -> None:
            assert edge is not None
            for s in mqtt_stores:
                b = _batch(s, round_)
                edge.publish(DeviceTopics(s, b.device_id).telemetry, encode_batch(b))
            for s in http_stores:
                r = http.post(
                    next(turn).url + "/api/v1/ingest/telemetry",
                    content=encode_batch(_batch(s, round_)),
                    headers={"Content-Encoding": "gzip", "Authorization": f"Bearer {secrets[s]}"},
                )
                assert r.status_code == 200, r.text

        send_round(0)
        edge.wait_answers(len(mqtt_stores), timeout_s=120)
        workers[0].stop(kill=True)  # mid-run: its share of later batches waits at the broker
        for round_ in range(1, ROUNDS):
            send_round(round_)
        workers[0].start()  # restarted under the same name, it takes what waited for it
        total = len(STORES) * ROUNDS * RECORDS

        def held() -> int:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM received_records")).scalar_one())

        wait_for(lambda: held() >= total, 180, f"{total} records at the hub")

        def job_periods() -> int:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        text("SELECT count(*) FROM job_runs WHERE job = 'device_offline'")
                    ).scalar_one()
                )

        # Let the four processes share a few more job periods (the data may land in seconds).
        wait_for(lambda: job_periods() >= 5, 120, "5 periods of the device offline job")
        http.close()
        with engine.connect() as conn:
            assert held() == total
            per_store = dict(
                conn.execute(
                    text("SELECT store_id, sum(count) FROM rollups GROUP BY store_id")
                ).all()
            )
            dead = conn.execute(text("SELECT count(*) FROM dead_letters")).scalar_one()
            runs = conn.execute(
                text("SELECT job, period_start, runner FROM job_runs WHERE job = 'device_offline'")
            ).all()
        assert dead == 0
        assert per_store == {s: ROUNDS * RECORDS for s in STORES}
        acks = [a for a in edge.answers if isinstance(a, BatchAck)]
        assert sum(a.duplicates for a in acks) == 0  # nothing was applied twice
        # Jobs: one claim per period (the key), no period skipped while the hub ran, and more
        # than one of the four processes did the work.
        periods = sorted(p for _, p, _ in runs)
        assert len(periods) == len(set(periods)) >= 5
        assert periods == list(range(periods[0], periods[-1] + JOB_PERIOD_S, JOB_PERIOD_S))
        assert len({runner for _, _, runner in runs}) >= 2
    finally:
        if edge is not None:
            edge.close()
        engine.dispose()
        for w in workers:
            if w.proc is not None:
                w.stop()
        for api in apis:
            if api.proc is not None:
                assert api.stop() in CLEAN_EXIT, api.log()
        broker.stop()
