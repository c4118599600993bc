"""Property: however batches are split, repeated, overlapped and interleaved, the hub ends up with
the totals of ingesting every record exactly once (real SQLite files, migrated once and copied).

Values are multiples of 1/4 so float sums are exact in any order.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import Engine, select

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.models import DEVICES, EVENTS, HEATMAPS, ROLLUPS, ROLLUPS_HOURLY
from cloud_hub.services.payloads import ingest_payload
from common.sync import BatchAck, SyncRecord, TelemetryBatch, encode_batch
from tests.cloud_hub.batches import T0, batch, counter, crossing, heatmap, numbered, samples

EDGES = [1.0, 2.0]
quarter = st.integers(0, 16).map(lambda n: n / 4)
bucket = st.sampled_from([T0, T0 + 60])

body = st.one_of(
    st.builds(lambda n, b, t: counter(n, bucket_start=b, target=t), st.integers(0, 5), bucket,
              st.sampled_from(["door", "exit"])),
    st.builds(lambda v, b: samples(v, EDGES, bucket_start=b), st.lists(quarter, min_size=1,
              max_size=4), bucket),
    st.builds(lambda c, b: heatmap(c, bucket_start=b), st.lists(quarter, min_size=4, max_size=4),
              bucket),
    st.builds(lambda k, t: crossing(k, T0 + t), st.integers(1, 50), quarter),
)  # fmt: skip


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[list[SyncRecord]], list[TelemetryBatch]]:
    """Per device the records (each once), and the batches as delivered: a split of every
    device's records, plus overlapping re-sends and exact repeats, in any order."""
    devices = []
    sent: list[TelemetryBatch] = []
    for dev in ("d1", "d2"):
        bodies: list[BaseModel] = draw(st.lists(body, min_size=1, max_size=10))
        recs = numbered(bodies, first_seq=draw(st.integers(1, 1000)))
        devices.append(recs)
        cuts = (
            sorted(draw(st.sets(st.integers(1, len(recs) - 1), max_size=3)))
            if len(recs) > 1
            else []
        )
        bounds = [0, *cuts, len(recs)]
        sent += [batch(recs[a:b], device_id=dev) for a, b in itertools.pairwise(bounds)]
        for _ in range(draw(st.integers(0, 2))):  # overlapping re-sends
            a = draw(st.integers(0, len(recs) - 1))
            b = draw(st.integers(a + 1, len(recs)))
            sent.append(batch(recs[a:b], device_id=dev))
    repeats = draw(st.lists(st.sampled_from(sent), max_size=4))
    return devices, draw(st.permutations(sent + repeats))


def _state(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:

        def rows(table: Any, skip: tuple[str, ...]) -> list[dict[str, Any]]:
            out = [
                {k: v for k, v in r.items() if k not in skip}
                for r in conn.execute(select(table)).mappings()
            ]
            return sorted(out, key=repr)

        return {
            "rollups": rows(ROLLUPS, ("updated_at",)),
            "rollups_hourly": rows(ROLLUPS_HOURLY, ()),  # their sums, kept by ingest
            "heatmaps": rows(HEATMAPS, ("updated_at",)),
            "events": rows(EVENTS, ()),
            "devices": rows(
                DEVICES, ("first_seen", "last_seen", "last_batch_at", "duplicates_received")
            ),
        }


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each example copies."""
    path = tmp_path_factory.mktemp("hub-template") / "hub.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def _ingest_all(
    template: Path, folder: str, name: str, batches: list[TelemetryBatch]
) -> dict[str, Any]:
    path = Path(folder) / name
    shutil.copy(template, path)
    engine = create_hub_engine(f"sqlite:///{path}")
    try:
        for b in batches:
            assert isinstance(ingest_payload(engine, encode_batch(b), float(T0 + 120)), BatchAck)
        return _state(engine)
    finally:
        engine.dispose()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(deliveries())
def test_any_delivery_order_gives_the_totals_of_each_record_once(
    template_db: Path, case: tuple[list[list[SyncRecord]], list[TelemetryBatch]]
) -> None:
    per_device, delivered = case
    once = [
        batch(recs, device_id=recs_dev)
        for recs, recs_dev in zip(per_device, ("d1", "d2"), strict=True)
    ]
    with tempfile.TemporaryDirectory() as folder:
        want = _ingest_all(template_db, folder, "once.db", once)
        got = _ingest_all(template_db, folder, "delivered.db", delivered)
    assert got == want
    assert [d["records_received"] for d in got["devices"]] == [len(r) for r in per_device]
