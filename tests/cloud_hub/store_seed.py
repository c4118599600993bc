"""Three stores in three time zones, seeded through the real ingest path, and the expected
answers computed from what was seeded with ``datetime``/``zoneinfo`` (never with the hub's
calendar code).

Data lies in four 3-day windows around the 2026 DST changes: the US spring change (8 March),
the EU spring change (29 March), the EU autumn change (25 October) and the US autumn change
(1 November). Asia/Kolkata (UTC+5:30, no DST) puts hour buckets at half past the UTC hour.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import Engine

from cloud_hub.services.payloads import ingest_payload
from common.sync import MAX_BATCH_RECORDS, BatchAck, encode_batch
from common.telemetry import HeatmapRollup, Rollup
from tests.cloud_hub.batches import batch, numbered

STORE_ZONES = {"paris": "Europe/Paris", "nyc": "America/New_York", "pune": "Asia/Kolkata"}
WINDOWS = [date(2026, 3, 7), date(2026, 3, 28), date(2026, 10, 24), date(2026, 10, 31)]
WINDOW_DAYS = 3
LINES = [("entrance", "door"), ("side", "side-door")]
DWELL_ZONE = ("entrance", "display")
QUEUE_ZONE = ("side", "checkout")
GRID = (4, 3)


def zone(store: str) -> ZoneInfo:
    """The store's time zone."""
    return ZoneInfo(STORE_ZONES[store])


def _minutes(step: int) -> Iterable[int]:
    for first in WINDOWS:
        t0 = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
        yield from range(t0, t0 + WINDOW_DAYS * 86_400, step * 60)


def _counter(store: str, camera: str, target: str, metric: str, ts: int, n: int) -> Rollup:
    return Rollup(
        store_id=store, camera_id=camera, target_id=target, metric=metric, bucket_start=ts,
        interval_s=60, kind="counter", count=n,
    )  # fmt: skip


def _samples(store: str, camera: str, target: str, metric: str, ts: int, v: list[float]) -> Rollup:
    return Rollup(
        store_id=store, camera_id=camera, target_id=target, metric=metric, bucket_start=ts,
        interval_s=60, kind="samples", count=len(v), sum=sum(v), min=min(v), max=max(v),
    )  # fmt: skip


def store_rollups(store: str) -> list[Rollup]:
    """What the store's edge reports: line counters every 23 minutes, zone and queue metrics
    every 59 minutes, people in view every 59 minutes; counts and samples pseudo-random."""
    rng = random.Random(store)
    out: list[Rollup] = []
    for ts in _minutes(23):
        for camera, line in LINES:
            out.append(_counter(store, camera, line, "line_in", ts, rng.randint(0, 9)))
            out.append(_counter(store, camera, line, "line_out", ts, rng.randint(0, 9)))
    for ts in _minutes(59):
        cam, z = DWELL_ZONE
        out.append(_counter(store, cam, z, "visits", ts, rng.randint(0, 5)))
        out.append(_counter(store, cam, z, "engaged", ts, rng.randint(0, 2)))
        out.append(_counter(store, cam, z, "pass_bys", ts, rng.randint(0, 6)))
        dwell = [round(rng.uniform(2, 120), 2) for _ in range(rng.randint(1, 4))]
        out.append(_samples(store, cam, z, "dwell_s", ts, dwell))
        occ = [float(rng.randint(0, 7)) for _ in range(rng.randint(1, 5))]
        out.append(_samples(store, cam, z, "occupancy", ts, occ))
        cam, q = QUEUE_ZONE
        length = [float(rng.randint(0, 6)) for _ in range(rng.randint(1, 5))]
        out.append(_samples(store, cam, q, "queue_length", ts, length))
        out.append(_counter(store, cam, q, "served", ts, rng.randint(0, 4)))
        wait = [round(rng.uniform(0, 300), 1) for _ in range(rng.randint(1, 3))]
        out.append(_samples(store, cam, q, "queue_wait_s", ts, wait))
        people = [float(rng.randint(0, 9)) for _ in range(rng.randint(1, 3))]
        out.append(_samples(store, "side", "side", "people", ts, people))
    return out


def store_heatmaps(store: str) -> list[HeatmapRollup]:
    """Heatmaps of camera entrance every 3 hours (grid 4 x 3)."""
    rng = random.Random(f"heat-{store}")
    w, h = GRID
    return [
        HeatmapRollup(
            store_id=store,
            camera_id="entrance",
            bucket_start=ts,
            interval_s=60,
            grid_w=w,
            grid_h=h,
            person_seconds=[round(rng.uniform(0, 30), 1) for _ in range(w * h)],
        )
        for ts in _minutes(180)
    ]


def seed(engine: Engine) -> dict[str, list[Rollup]]:
    """Ingest every store's rollups and heatmaps through ``ingest_payload`` (gzip batches of
    one device per store); the rollups by store."""
    seeded: dict[str, list[Rollup]] = {}
    for store in STORE_ZONES:
        rollups = store_rollups(store)
        bodies: list[BaseModel] = [*rollups, *store_heatmaps(store)]
        records = numbered(bodies)
        for i in range(0, len(records), MAX_BATCH_RECORDS):
            chunk = records[i : i + MAX_BATCH_RECORDS]
            b = batch(chunk, device_id=f"{store}-box", store_id=store)
            ack = ingest_payload(engine, encode_batch(b), 1_800_000_000.0)
            assert isinstance(ack, BatchAck) and not ack.dead_lettered, ack
        seeded[store] = rollups
    return seeded


@dataclass(frozen=True)
class Sums:
    """Expected aggregate of a group of seeded rollups."""

    count: int
    sum: float
    max: float | None

    @property
    def mean(self) -> float | None:
        """sum / count over every sample."""
        return self.sum / self.count if self.count else None


def expect(
    rollups: Iterable[Rollup], key: Callable[[Rollup], Hashable], metric: str
) -> dict[Hashable, Sums]:
    """Seeded ``metric`` rollups grouped by ``key`` (counts, sums and max added up)."""
    groups: dict[Hashable, list[Rollup]] = defaultdict(list)
    for r in rollups:
        if r.metric == metric:
            groups[key(r)].append(r)
    return {
        k: Sums(
            count=sum(r.count for r in rs),
            sum=sum(r.sum or 0.0 for r in rs),
            max=max((r.max for r in rs if r.max is not None), default=None),
        )
        for k, rs in groups.items()
    }


def local(ts: int, store: str) -> datetime:
    """The store's local time at UNIX second ``ts``."""
    return datetime.fromtimestamp(ts, zone(store))


def local_day(store: str) -> Callable[[Rollup], date]:
    """Key: the rollup's local date."""
    return lambda r: local(r.bucket_start, store).date()


def local_week(store: str) -> Callable[[Rollup], date]:
    """Key: the Monday of the rollup's local week."""

    def key(r: Rollup) -> date:
        d = local(r.bucket_start, store).date()
        return d - timedelta(days=d.weekday())

    return key


def local_hour(store: str) -> Callable[[Rollup], int]:
    """Key: the UNIX second at which the rollup's local hour starts (the repeated hour of an
    autumn change is two distinct hours)."""
    return lambda r: int(local(r.bucket_start, store).replace(minute=0, second=0).timestamp())
