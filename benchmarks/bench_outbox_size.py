"""Outbox size for 7 days of a 4-camera store, and what an append costs at each durability.

Records are the real ``CameraAnalytics`` output: each camera has 2 counting lines, 2 dwell
zones and 1 queue zone, and is run for 60 simulated minutes of shoppers random-walking
(3 fps) plus 10 minutes of an empty store; those buckets are then tiled over the days with
their times shifted. Per camera per minute the outbox gets that minute's rollups and its
32x18 heatmap, and during opening hours (08:00-20:00) 5 events (line crossings and visits).
The fill is done twice: with the outbox's deflate + preset-dictionary codec and with plain
JSON bodies (the peer), so the ratio shows what the codec buys. Then append latency is
measured with ``synchronous=FULL`` and ``NORMAL`` on this disk: a one-event append (what a
frame with a crossing writes) and a one-minute append (rollups + heatmap).

    python benchmarks/bench_outbox_size.py [--days 7] [--cameras 4] [--no-append]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from common.telemetry import AnalyticsEvent, EventKind, HeatmapRollup, Rollup, VisitPayload
from edge_agent.analytics import CameraAnalytics, CameraAnalyticsConfig
from edge_agent.outbox import Outbox, OutboxLimits
from edge_agent.outbox.records import Codec, OutboxBody
from edge_agent.track.tracks import Tracks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_section

W, H, FPS = 1280, 720, 3.0
EPOCH = 1_700_006_400  # a UNIX midnight (UTC)
OPEN_H, CLOSE_H = 8, 20
EVENTS_PER_MIN = 5

CAMERA_CONFIG = {
    "lines": [
        {"id": "door", "points": [[0.05, 0.85], [0.95, 0.85]], "inside": [0.5, 0.3]},
        {"id": "aisle-2", "points": [[0.5, 0.1], [0.5, 0.8]], "inside": [0.2, 0.5]},
    ],
    "zones": [
        {"id": "promo", "polygon": [[0.1, 0.2], [0.4, 0.2], [0.4, 0.6], [0.1, 0.6]]},
        {"id": "wine", "polygon": [[0.6, 0.2], [0.9, 0.2], [0.9, 0.5], [0.6, 0.5]]},
        {
            "id": "till-1",
            "kind": "queue",
            "polygon": [[0.6, 0.55], [0.95, 0.55], [0.95, 0.8], [0.6, 0.8]],
        },
    ],
}


@dataclass
class CameraSample:
    """Real analytics output of one camera: per-minute rollups and heatmaps, and events."""

    day: list[tuple[list[Rollup], HeatmapRollup]]
    night: list[tuple[list[Rollup], HeatmapRollup]]
    events: list[AnalyticsEvent]


def simulate(camera_id: str, people: int, minutes: int, seed: int) -> CameraSample:
    """Run CameraAnalytics on ``people`` random walkers for ``minutes``, then an empty store."""
    rng = np.random.default_rng(seed)
    cam = CameraAnalytics(
        CameraAnalyticsConfig.model_validate(CAMERA_CONFIG),
        store_id="store-0042",
        camera_id=camera_id,
        epoch_start_s=float(EPOCH),
    )
    pos = rng.random((people, 2))
    vel = (rng.random((people, 2)) - 0.5) * 0.05
    ids = np.arange(people, dtype=np.int64)
    hits = np.full(people, 10, np.int32)
    next_id = people
    rollups: dict[int, list[Rollup]] = {}
    heat: dict[int, HeatmapRollup] = {}
    events: list[AnalyticsEvent] = []
    day_frames = int(minutes * 60 * FPS)
    for k in range(day_frames + int(11 * 60 * FPS)):
        t = k / FPS
        n = people if k < day_frames else 0
        if n:
            pos += vel
            vel += (rng.random((people, 2)) - 0.5) * 0.01
            gone = np.flatnonzero(((pos < 0) | (pos > 1)).any(axis=1))
            for i in gone:
                pos[i], vel[i] = rng.random(2), (rng.random(2) - 0.5) * 0.05
                ids[i], hits[i], next_id = next_id, 0, next_id + 1
            hits += 1
        px = pos[:n] * [W, H]
        xyxy = np.column_stack([px[:, 0] - 20, px[:, 1] - 120, px[:, 0] + 20, px[:, 1]])
        tracks = Tracks(
            xyxy.astype(np.float32),
            np.full(n, 0.9, np.float32),
            np.zeros(n, np.int32),
            ids[:n].copy(),
            hits[:n].copy(),
        )
        out = cam.update(tracks, t, W, H)
        events += out.events
        for r in out.rollups:
            rollups.setdefault(r.bucket_start, []).append(r)
        for h in out.heatmaps:
            heat[h.bucket_start] = h
    buckets = sorted(set(rollups) & set(heat))
    pairs = [(rollups[b], heat[b]) for b in buckets]
    day_n = minutes - 1  # the bucket straddling day and night is left out
    return CameraSample(day=pairs[:day_n], night=pairs[day_n + 2 :], events=events)


def shifted(body: OutboxBody, dt: int) -> OutboxBody:
    """``body`` moved ``dt`` seconds later (bucket, event and visit-entry times)."""
    if isinstance(body, Rollup | HeatmapRollup):
        return body.model_copy(update={"bucket_start": body.bucket_start + dt})
    assert isinstance(body, AnalyticsEvent)
    payload = body.payload
    if isinstance(payload, VisitPayload):
        payload = payload.model_copy(update={"entered_at": payload.entered_at + dt})
    return body.model_copy(update={"occurred_at": body.occurred_at + dt, "payload": payload})


def store_minutes(
    samples: list[CameraSample], days: int, seed: int
) -> list[tuple[float, list[OutboxBody]]]:
    """(UNIX time, records) of every camera-minute of ``days``, in time order."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, list[OutboxBody]]] = []
    for m in range(days * 1440):
        minute_start = EPOCH + 60 * m
        is_open = OPEN_H * 60 <= m % 1440 < CLOSE_H * 60
        for s in samples:
            pool = s.day if is_open else s.night
            rollups, heatmap = pool[m % len(pool)]
            dt = minute_start - heatmap.bucket_start
            records: list[OutboxBody] = [shifted(r, dt) for r in rollups]
            records.append(shifted(heatmap, dt))
            if is_open:
                raw = [e for e in s.events if e.kind in (EventKind.LINE_CROSSING, EventKind.VISIT)]
                for i in rng.choice(len(raw), EVENTS_PER_MIN, replace=False):
                    ev = raw[int(i)]
                    records.append(shifted(ev, int(minute_start - (ev.occurred_at // 60) * 60)))
            out.append((float(minute_start + 60), records))
    return out


def fill(path: Path, minutes: list[tuple[float, list[OutboxBody]]], codec: Codec) -> dict[str, Any]:
    """Append every camera-minute; returns counts and sizes."""
    limits = OutboxLimits(max_bytes=2**40, max_age_s=30 * 86400.0)
    t0 = time.perf_counter()
    with Outbox.open(path, "edge-1", "store-0042", limits, "normal", 0, codec) as ob:
        for now, records in minutes:
            ob.append(records, now)
        stats = ob.stats(minutes[-1][0])
    seconds = time.perf_counter() - t0  # closing checkpointed and removed the WAL
    kinds: dict[str, int] = {}
    for _, records in minutes:
        for r in records:
            name = type(r).__name__
            kinds[name] = kinds.get(name, 0) + 1
    return {
        "records": stats.pending_count,
        "file_bytes": path.stat().st_size,
        "pending_bytes": stats.pending_bytes,
        "seconds": seconds,
        "kinds": kinds,
    }


def latency(
    path: Path, synchronous: Literal["full", "normal"], batches: list[list[OutboxBody]], n: int
) -> list[float]:
    """Milliseconds per append of each batch in turn, ``n`` appends."""
    ms: list[float] = []
    with Outbox.open(path, "edge-1", "store-0042", None, synchronous, 0) as ob:
        for i in range(n):
            t0 = time.perf_counter()
            ob.append(batches[i % len(batches)], 1.8e9 + i)
            ms.append((time.perf_counter() - t0) * 1000)
    return ms


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0-1) of ``values``."""
    return float(np.quantile(values, q))


def main() -> None:
    """Fill, measure, print the table (and append it to BENCHMARKS.md)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--appends", type=int, default=300, help="appends per latency case")
    ap.add_argument("--dir", type=Path, default=None, help="where the outbox files go")
    ap.add_argument("--no-append", action="store_true", help="print only, leave BENCHMARKS.md")
    args = ap.parse_args()

    t0 = time.perf_counter()
    samples = [simulate(f"cam-{i + 1}", 4 + 3 * i, 60, seed=i) for i in range(args.cameras)]
    minutes = store_minutes(samples, args.days, seed=7)
    sim_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ours = fill(Path(tmp) / "deflate.sqlite3", minutes, Codec.DEFLATE_DICT_V1)
        peer = fill(Path(tmp) / "json.sqlite3", minutes, Codec.JSON)
        day = [recs for _, recs in minutes if any(isinstance(r, AnalyticsEvent) for r in recs)]
        cases: dict[str, list[list[OutboxBody]]] = {
            "1 event": [[r] for recs in day[:100] for r in recs if isinstance(r, AnalyticsEvent)],
            "1 minute": [
                [r for r in recs if not isinstance(r, AnalyticsEvent)] for recs in day[:50]
            ],
        }
        syncs: tuple[Literal["full", "normal"], ...] = ("full", "normal")
        lat = {
            (sync, what): latency(Path(tmp) / f"lat-{sync}-{i}.sqlite3", sync, b, args.appends)
            for sync in syncs
            for i, (what, b) in enumerate(cases.items())
        }

    mb = 1024 * 1024
    rows = [
        "| codec | records | file MB | bytes/record | counted MB (max_bytes basis) | fill s |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in (("deflate + dictionary (outbox default)", ours), ("plain JSON (peer)", peer)):
        rows.append(
            f"| {name} | {r['records']} | {r['file_bytes'] / mb:.1f} | "
            f"{r['file_bytes'] / r['records']:.1f} | {r['pending_bytes'] / mb:.1f} | "
            f"{r['seconds']:.0f} |"
        )
    rows.append("")
    rows.append(
        f"Per kind: {ours['kinds']}; plain JSON / deflate file size = "
        f"{peer['file_bytes'] / ours['file_bytes']:.2f}x; counted / file bytes = "
        f"{ours['pending_bytes'] / ours['file_bytes']:.2f} (deflate), "
        f"{peer['pending_bytes'] / peer['file_bytes']:.2f} (JSON)."
    )
    rows.append("")
    rows.append("| synchronous | append | p50 ms | p99 ms | mean ms |")
    rows.append("|---|---|---|---|---|")
    for (sync, what), ms in lat.items():
        rows.append(
            f"| {sync.upper()} | {what} | {pct(ms, 0.5):.2f} | {pct(ms, 0.99):.2f} | "
            f"{statistics.fmean(ms):.2f} |"
        )
    body = (
        f"{args.cameras} cameras x {args.days} days (2 lines, 2 dwell zones, 1 queue zone, "
        f"32x18 heatmap per camera per minute; {EVENTS_PER_MIN} events per camera-minute "
        f"{OPEN_H:02d}:00-{CLOSE_H:02d}:00), simulation {sim_s:.0f} s.\n\n" + "\n".join(rows)
    )
    if args.no_append:
        print(body)
    else:
        append_section("Outbox size (7 days, 4 cameras) and append latency", body)


if __name__ == "__main__":
    main()
